"""The `skiff` command line (see main.py)."""

import os

# Before anything imports grpc, which reads it once: gRPC core would log every failed TLS handshake
# at INFO on stderr, beside the one-line error that already says what failed.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
