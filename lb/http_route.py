"""The HTTP entry port's first step: parse the first request's head to pick an Ingress backend.

Pure. The proxy buffers a connection's first bytes until `head_end` finds the blank line (or the head
passes MAX_HEAD, or a timeout fires), `parse_head` extracts the Host and the path, the routing table
names the backend, and from then on the connection is plain L4 (the buffered bytes are sent first):
routing is per connection, like the design says, not per request.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_HEAD = 16 * 1024


class HeadError(ValueError):
    """A request head that is not HTTP/1.x."""


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    target: str
    path: str  # without query string or fragment
    host: str  # lower case, without port; "" when absent


def head_end(buf: bytes | bytearray) -> int:
    """The index just past the head's blank line, or -1 while it is incomplete."""
    i = buf.find(b"\r\n\r\n")
    if i >= 0:
        return i + 4
    i = buf.find(b"\n\n")  # tolerate bare LF, as most servers do
    return i + 2 if i >= 0 else -1


def _strip_port(host: str) -> str:
    if host.startswith("["):  # [v6]:port
        end = host.find("]")
        return host[: end + 1] if end >= 0 else host
    return host.rsplit(":", 1)[0] if ":" in host else host


def parse_head(head: bytes | bytearray) -> RequestHead:
    """Method, target, path and Host of a complete request head. Raises HeadError."""
    try:
        text = bytes(head).decode("latin-1")
    except Exception as e:  # pragma: no cover - latin-1 decodes everything
        raise HeadError(str(e)) from None
    lines = text.replace("\r\n", "\n").split("\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[0].isalpha():
        raise HeadError(f"bad request line {lines[0][:80]!r}")
    method, target, _ = parts
    host = ""
    for line in lines[1:]:
        if not line:
            break
        name, sep, value = line.partition(":")
        if not sep:
            raise HeadError(f"bad header line {line[:80]!r}")
        if name.strip().lower() == "host":
            host = value.strip()
            break
    path = target
    if "://" in target:  # absolute-form: http://host/path
        rest = target.split("://", 1)[1]
        slash = rest.find("/")
        authority = rest if slash < 0 else rest[:slash]
        path = "/" if slash < 0 else rest[slash:]
        host = host or authority
    for sep in ("?", "#"):
        path = path.split(sep, 1)[0]
    if not path.startswith("/"):
        path = "/" + path if path != "*" else "/"
    return RequestHead(method, target, path, _strip_port(host).lower())


def response(status: int, reason: str, body: str) -> bytes:
    """A complete HTTP/1.1 response that closes the connection."""
    data = body.encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(data)}\r\nconnection: close\r\n\r\n"
    ).encode() + data
