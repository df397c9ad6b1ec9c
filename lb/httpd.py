"""A minimal HTTP/1.0 GET server and client for the metrics endpoints (control plane only)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Handler = Callable[[], Awaitable[str]]


async def serve(host: str, port: int, routes: dict[str, Handler]) -> asyncio.Server:
    """Serve GET `path` -> text/plain from `routes[path]()`; 404 for anything else."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                head = await reader.readuntil(b"\r\n\r\n")
            parts = head.split(b"\r\n", 1)[0].split(b" ")
            path = parts[1].decode("latin-1").split("?", 1)[0] if len(parts) >= 2 else ""
            handler = routes.get(path)
            if parts[0] != b"GET" or handler is None:
                status, body = "404 Not Found", "not found\n"
            else:
                status, body = "200 OK", await handler()
            data = body.encode()
            writer.write(
                f"HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4; charset=utf-8\r\n"
                f"content-length: {len(data)}\r\nconnection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except Exception:
            log.exception("metrics request failed")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    return await asyncio.start_server(handle, host, port, reuse_address=True)


async def fetch(host: str, port: int, path: str = "/metrics", timeout: float = 2.0) -> str:
    """The body of GET http://host:port/path (raises OSError/TimeoutError/ValueError)."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(f"GET {path} HTTP/1.0\r\nhost: {host}\r\n\r\n".encode())
            data = await reader.read()
        finally:
            writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise ValueError(f"GET {path}: {head[:40]!r}")
    return body.decode()
