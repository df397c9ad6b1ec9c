"""TLS on every gRPC link: servers present a certificate of the cluster CA, clients verify it.

Every Skiff process that opens or dials a gRPC port (a master, an agent, the balancer, the CLI)
takes the same three flags: `--tls-cert-file` and `--tls-key-file` for the certificate it serves,
`--ca-file` for the CA it verifies its peers against. Plaintext needs `--insecure`, on both ends:
a process without certificates and without `--insecure` refuses to start, so nothing falls back to
plaintext by accident.

A client verifies the server's certificate against the address it dials: gRPC matches an IP
target against the certificate's IP SANs, so a master dialled at 127.0.1.1 must name 127.0.1.1
(`certs.ensure_cluster_pki` and `skiff certs` issue such certificates).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

Options = Sequence[tuple[str, Any]]

# The largest message a Skiff server accepts: one 3 MiB object (Kubernetes' limit) and its envelope.
# gRPC itself refuses a larger one with RESOURCE_EXHAUSTED before anything reads it.
MAX_MESSAGE = 3 * 1024 * 1024 + 64 * 1024

# Phrases of gRPC's handshake failures (BoringSSL's and gRPC's own), and what each means to a user.
_TLS_FAILURES = (
    ("CERTIFICATE_VERIFY_FAILED", "the server's certificate is not signed by the CA in {ca}"),
    ("Hostname Verification Check failed", "the server's certificate does not name the address dialled"),
    ("WRONG_VERSION_NUMBER", "the server does not speak TLS (is it running with --insecure?)"),
    ("handshake failed", "the TLS handshake failed"),
)


def add_flags(p: argparse.ArgumentParser, *, serves: str = "") -> None:
    """The TLS flags of a process; `serves` names what its certificate is for (empty: a pure client)."""
    if serves:
        p.add_argument("--tls-cert-file", default="", help=f"certificate (PEM) of {serves}")
        p.add_argument("--tls-key-file", default="", help=f"private key (PEM) of {serves}")
    p.add_argument(
        "--ca-file", default="", help="CA certificate (PEM) that peers' certificates are checked against"
    )
    p.add_argument("--insecure", action="store_true", help="plaintext gRPC, no TLS (both ends must say so)")


@dataclass(frozen=True)
class ServerTLS:
    """The certificate and key a server presents."""

    cert: bytes
    key: bytes

    @classmethod
    def from_files(cls, cert_file: str, key_file: str) -> ServerTLS:
        return cls(_read(cert_file, "--tls-cert-file"), _read(key_file, "--tls-key-file"))

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.key, self.cert)])


@dataclass(frozen=True)
class ClientTLS:
    """How a client dials: TLS verified against `ca` (PEM), or plaintext when `ca` is None."""

    ca: bytes | None
    ca_file: str = ""
    _creds: list[grpc.ChannelCredentials] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def insecure(cls) -> ClientTLS:
        return cls(None)

    @classmethod
    def from_file(cls, ca_file: str) -> ClientTLS:
        return cls(_read(ca_file, "--ca-file"), ca_file)

    @property
    def plaintext(self) -> bool:
        return self.ca is None

    @property
    def scheme(self) -> str:
        return "plaintext" if self.ca is None else "TLS"

    def channel(self, address: str, options: Options = ()) -> grpc.aio.Channel:
        if self.ca is None:
            return grpc.aio.insecure_channel(address, options=options)
        if not self._creds:  # one credentials object per client: gRPC then shares its TLS session cache
            self._creds.append(grpc.ssl_channel_credentials(root_certificates=self.ca))
        return grpc.aio.secure_channel(address, self._creds[0], options=options)

    def explain(self, details: str) -> str | None:
        """A one-line reason when a failed call's `details` show a failed TLS handshake, else None."""
        if self.ca is None:
            return None
        for phrase, meaning in _TLS_FAILURES:
            if phrase.lower() in details.lower():
                return f"TLS: {meaning.format(ca=self.ca_file or 'the given CA')}"
        return None


def server_tls(args: argparse.Namespace) -> ServerTLS | None:
    """The server certificate the flags name; None with --insecure. Raises ValueError (one line)."""
    if args.insecure:
        return None
    if not (args.tls_cert_file and args.tls_key_file):
        raise ValueError("--tls-cert-file and --tls-key-file are required (or --insecure for plaintext gRPC)")
    return ServerTLS.from_files(args.tls_cert_file, args.tls_key_file)


def client_tls(args: argparse.Namespace) -> ClientTLS:
    """The CA the flags name; plaintext with --insecure. Raises ValueError (one line)."""
    if args.insecure:
        return ClientTLS.insecure()
    if not args.ca_file:
        raise ValueError("--ca-file is required (or --insecure for plaintext gRPC)")
    return ClientTLS.from_file(args.ca_file)


# HTTP/2 keepalive of the agents' streams, on both ends (agents.agent, orchestrator.master): an open
# stream is a node's liveness, so a peer that stopped answering is found within two of these.
KEEPALIVE_MS = 1000
# Connect metadata: how many masters in a row ended or refused the agent's stream (a Raft leader takes
# an agent's stream only when that counts every other master, see orchestrator.api.gateway).
FAILED_MASTERS = "skiff-failed-masters"


def server(options: Options = ()) -> grpc.aio.Server:
    """A gRPC server that accepts messages of at most MAX_MESSAGE bytes (`options` may add more)."""
    return grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE), *options])


def from_flags(p: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[ServerTLS | None, ClientTLS]:
    """`server_tls` and `client_tls` of a process's flags; a missing or unreadable file is the
    parser's error (one line, exit status 2)."""
    try:
        return server_tls(args), client_tls(args)
    except ValueError as e:
        p.error(str(e))


def add_port(server: grpc.aio.Server, address: str, tls: ServerTLS | None) -> int:
    """Bind `address` with TLS (or plaintext when `tls` is None); returns the port, raises OSError."""
    if tls is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, tls.credentials())
    if port == 0:
        raise OSError(f"cannot bind {address}")
    return port


def _read(path: str, flag: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ValueError(f"{flag} {path}: {e.strerror or e}") from None
    if b"-----BEGIN" not in data:
        raise ValueError(f"{flag} {path}: not a PEM file")
    return data


async def health(address: str, tls: ClientTLS, timeout: float = 1.0) -> str:
    """The gRPC health status of the server at `address` ("SERVING", ...), or why there is none:
    the status code's name, or the TLS reason when the handshake failed."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        async with tls.channel(address) as ch:
            reply = await health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout
            )
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    except grpc.aio.AioRpcError as e:
        return tls.explain(e.details() or "") or e.code().name
