"""The gRPC edge of a master: the API servicer (clients) and the node gateway (agents).

Both are thin: they authenticate, convert bytes to dicts, write through `store.writer.Writer`, read
from the local replica, and map errors to status codes in `api.status`.
"""
