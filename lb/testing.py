"""Backends and object builders for the balancer's tests and benchmark (not used by the balancer).

Backends are uvloop-friendly Protocols: `echo` (echoes; answers EOF with EOF), `http` (a keep-alive
HTTP/1.1 server answering every request with its name; honours "Connection: close"), `reply-at-eof`
(reads until the client half-closes, then answers how many bytes it got and closes), `source`
(sends the number of bytes asked for in its first line, then closes).

`python -m lb.testing --kind http --address 127.0.50.10 --port 0 --name b1` serves one in its own
process and prints "listening PORT".
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import uvloop


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def eof_received(self) -> bool:
        # False: the transport flushes what is buffered, then closes, which sends our EOF. Returning
        # True after write_eof() left a half-closed transport that nothing referenced or closed; the
        # garbage collector then freed it while its shutdown request was pending, and uvloop's
        # shutdown callback ran on freed memory (a double free that crashed the test process).
        return False


class ReplyAtEof(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.n = 0

    def data_received(self, data: bytes) -> None:
        self.n += len(data)

    def eof_received(self) -> bool:
        self.transport.write(f"got {self.n}\n".encode())
        self.transport.close()
        return True


class Source(asyncio.Protocol):
    """First line: a byte count; answers with that many bytes (written under backpressure)."""

    CHUNK = b"x" * (256 * 1024)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buf = b""
        self.left = 0
        self.paused = False

    def data_received(self, data: bytes) -> None:
        if self.left or b"\n" in self.buf:
            return
        self.buf += data
        if b"\n" in self.buf:
            self.left = int(self.buf.split(b"\n", 1)[0])
            self._pump()

    def _pump(self) -> None:
        while self.left > 0 and not self.paused:
            chunk = self.CHUNK if self.left >= len(self.CHUNK) else self.CHUNK[: self.left]
            self.left -= len(chunk)
            self.transport.write(chunk)
        if self.left <= 0:
            self.transport.close()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._pump()


class Http(asyncio.Protocol):
    """Keep-alive HTTP/1.1: one fixed response per request head; closes after "Connection: close"."""

    def __init__(self, name: str) -> None:
        body = f"{name}\n".encode()
        self.response = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (
            len(body),
            body,
        )
        self.close_response = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body)
        )
        self.pending = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.pending:
            data = self.pending + data
        n = data.count(b"\r\n\r\n")
        if n == 0:
            self.pending = data
            return
        tail = data.rsplit(b"\r\n\r\n", 1)[1]
        self.pending = tail
        if b"onnection: close" in data or b"onnection: Close" in data:
            self.transport.write(self.response * (n - 1) + self.close_response)
            self.transport.close()
            return
        self.transport.write(self.response if n == 1 else self.response * n)

    def eof_received(self) -> bool:
        return False


def factory(kind: str, name: str = "backend") -> Any:
    if kind == "echo":
        return Echo
    if kind == "reply-at-eof":
        return ReplyAtEof
    if kind == "source":
        return Source
    if kind == "http":
        return lambda: Http(name)
    raise ValueError(kind)


async def start_backend(
    kind: str, host: str, port: int = 0, name: str = "backend"
) -> tuple[asyncio.Server, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory(kind, name), host, port, reuse_address=True, backlog=4096)
    return server, int(server.sockets[0].getsockname()[1])


# ---------------------------------------------------------------- object builders


def service(
    name: str,
    port: int,
    *,
    cluster_ip: str = "",
    node_port: int = 0,
    type: str = "ClusterIP",
    port_name: str = "",
    namespace: str = "default",
    affinity: float | None = None,
) -> dict[str, Any]:
    sp: dict[str, Any] = {"port": port, "protocol": "TCP", "targetPort": port}
    if port_name:
        sp["name"] = port_name
    if node_port:
        sp["nodePort"] = node_port
    spec: dict[str, Any] = {"type": type, "ports": [sp], "selector": {"app": name}}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    if affinity is not None:
        spec["sessionAffinity"] = "ClientIP"
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": int(affinity)}}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def endpoints(
    name: str,
    ready: list[tuple[str, int]],
    *,
    not_ready: list[tuple[str, int]] = (),  # type: ignore[assignment]
    terminating: list[tuple[str, int]] = (),  # type: ignore[assignment]
    port_name: str = "",
    namespace: str = "default",
) -> dict[str, Any]:
    """One subset per address, as Skiff's endpoints controller writes them (one per pod)."""
    subsets = []
    for i, (ip, port) in enumerate(ready):
        subsets.append(
            {
                "addresses": [
                    {"ip": ip, "targetRef": {"kind": "Pod", "name": f"{name}-{i}", "namespace": namespace}}
                ],
                "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
            }
        )
    for ip, port in not_ready:
        subsets.append({"notReadyAddresses": [{"ip": ip}], "ports": [{"name": port_name, "port": port}]})
    for ip, port in terminating:
        subsets.append(
            {
                "notReadyAddresses": [{"ip": ip, "terminating": True}],
                "ports": [{"name": port_name, "port": port}],
            }
        )
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": name, "namespace": namespace},
        "subsets": subsets,
    }


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m lb.testing")
    p.add_argument("--kind", default="http")
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--name", default="backend")
    args = p.parse_args()

    async def serve() -> None:
        server, port = await start_backend(args.kind, args.address, args.port, args.name)
        print(f"listening {port}", flush=True)
        await server.serve_forever()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        try:
            runner.run(serve())
        except KeyboardInterrupt:
            pass
    sys.exit(0)


if __name__ == "__main__":
    main()
