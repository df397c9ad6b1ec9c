"""The demo image's program: a tiny, fast HTTP/1.1 server that answers every request with its hostname.

It stands in for jweissig/alpine-k8s-pod-lb-demo: `GET /` -> `<h1>Hello from <hostname></h1>` with an
`X-Hostname` header, so requests sent through a Service show which pod answered. It listens on
`$POD_IP` (else `$HOST_IP`, else 0.0.0.0) at `$PORT` (else 8080), speaks keep-alive, and exits 0 on
SIGTERM. Built on an asyncio Protocol (uvloop when available) because it is benchmarked with wrk.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys


def hostname() -> str:
    # In a UTS namespace the agent sets the hostname to the pod name; without one, HOSTNAME is set.
    name = socket.gethostname()
    env = os.environ.get("HOSTNAME", "")
    if env and os.environ.get("SKIFF_ISOLATION_UTS") != "1":
        return env
    return name or env


def responses(name: str) -> tuple[bytes, bytes]:
    body = (
        f"<!DOCTYPE html>\n<html><head><title>Hello from {name}</title></head>\n"
        f"<body><h1>Hello from {name}</h1></body></html>\n"
    ).encode()
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"X-Hostname: {name}\r\nContent-Length: {len(body)}\r\n"
    ).encode()
    keep = head + b"\r\n" + body
    close = head + b"Connection: close\r\n\r\n" + body
    return keep, close


class HttpProtocol(asyncio.Protocol):
    """One connection: answers each complete request in order; honours Connection: close and HTTP/1.0."""

    keep_alive_reply = b""
    close_reply = b""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        out = []
        close = False
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end]
            rest = end + 4
            lower = head.lower()
            length = 0
            i = lower.find(b"\r\ncontent-length:")
            if i >= 0:
                j = lower.find(b"\r\n", i + 2)
                length = int(lower[i + 17 : j if j >= 0 else len(lower)].strip() or 0)
            if len(buf) < rest + length:
                break
            buf = buf[rest + length :]
            first = head.split(b"\r\n", 1)[0]
            close = b"connection: close" in lower or (
                first.endswith(b"HTTP/1.0") and b"connection: keep-alive" not in lower
            )
            out.append(self.close_reply if close else self.keep_alive_reply)
            if close:
                break
        self.buf = b"" if close else buf
        if len(self.buf) > 65536:
            close = True
        if out and self.transport is not None:
            self.transport.write(b"".join(out))
        if close and self.transport is not None:
            self.transport.close()


async def serve() -> None:
    host = os.environ.get("POD_IP") or os.environ.get("HOST_IP") or "0.0.0.0"
    port = int(os.environ.get("PORT") or 8080)
    HttpProtocol.keep_alive_reply, HttpProtocol.close_reply = responses(hostname())
    loop = asyncio.get_running_loop()
    server = await loop.create_server(HttpProtocol, host, port, reuse_address=True, backlog=1024)
    print(f"demo: listening on {host}:{port} as {hostname()}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    print("demo: stopping", flush=True)


def main() -> None:
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(serve())
    sys.exit(0)


if __name__ == "__main__":
    main()
