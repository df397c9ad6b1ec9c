"""The proxy data path on uvloop with real loopback sockets (127.0.50.0/24, port 0)."""

from __future__ import annotations

import asyncio
import dataclasses
import resource
import socket
import struct

import pytest
import uvloop

from lb.balancer import Endpoint
from lb.proxy import WRITE_HIGH, Proxy
from lb.routes import Backend, Listener, RoutingTable, compute_table
from lb.testing import endpoints, service, start_backend

pytestmark = [
    pytest.mark.timeout(60),
    # uvloop for these tests; the suite-wide way is a pytest_asyncio_loop_factories hook in conftest.
    pytest.mark.filterwarnings('ignore:Overriding the "event_loop_policy" fixture'),
]


@pytest.fixture
def event_loop_policy() -> uvloop.EventLoopPolicy:
    return uvloop.EventLoopPolicy()


@pytest.fixture
async def cleanup():
    """Collects servers and proxies; closes them also when the test fails."""
    things: list = []
    yield things
    for t in reversed(things):
        if isinstance(t, Proxy):
            await t.close(0.5)
        else:
            t.close()


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


async def tcp_table(proxy: Proxy, listen: str, backend: str, eps: list[Endpoint]) -> int:
    table = RoutingTable(
        listeners={(listen, 0): Listener(listen, 0, backend)},
        backends={backend: Backend(backend, tuple(eps))},
    )
    await proxy.apply_table(table)
    return proxy.bound_port((listen, 0))


async def backend(cleanup: list, kind: str, host: str, name: str = "backend") -> Endpoint:
    server, port = await start_backend(kind, host, 0, name)
    cleanup.append(server)
    return Endpoint(host, port, name)


async def test_bytes_both_ways_and_nodelay(cleanup: list) -> None:
    ep = await backend(cleanup, "echo", "127.0.50.2")
    proxy = Proxy()
    cleanup.append(proxy)
    port = await tcp_table(proxy, "127.0.50.1", "b", [ep])
    reader, writer = await asyncio.open_connection("127.0.50.1", port)
    payload = bytes(range(256)) * 4096  # 1 MiB
    writer.write(payload)
    got = await reader.readexactly(len(payload))
    assert got == payload
    (conn,) = proxy.conns
    assert conn.up is not None  # connected upstream: the bytes went through
    for tr in (conn.transport, conn.up):
        sock = tr.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    writer.write_eof()
    assert await reader.read() == b""  # echo answered EOF with EOF: both directions done
    writer.close()
    for _ in range(100):
        if not proxy.conns:
            break
        await asyncio.sleep(0.01)
    assert not proxy.conns
    text = proxy.metrics_text()
    assert 'skiff_lb_bytes_in_total{backend="b"} 1048576' in text
    assert 'skiff_lb_bytes_out_total{backend="b"} 1048576' in text
    assert 'skiff_lb_connections_active{backend="b"} 0' in text


async def test_early_bytes_before_upstream_connects(cleanup: list) -> None:
    """The client's first bytes (sent with the connect) reach the backend (uvloop ignores
    pause_reading in connection_made, so the proxy buffers them)."""
    ep = await backend(cleanup, "reply-at-eof", "127.0.50.2")
    proxy = Proxy()
    cleanup.append(proxy)
    port = await tcp_table(proxy, "127.0.50.1", "b", [ep])
    with socket.create_connection(("127.0.50.1", port)) as s:
        s.sendall(b"a" * 500_000)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(10)
        data = b""
        while chunk := await asyncio.to_thread(s.recv, 65536):
            data += chunk
    assert data == b"got 500000\n"


async def test_half_close_client_still_gets_response(cleanup: list) -> None:
    ep = await backend(cleanup, "reply-at-eof", "127.0.50.2")
    proxy = Proxy()
    cleanup.append(proxy)
    port = await tcp_table(proxy, "127.0.50.1", "b", [ep])
    reader, writer = await asyncio.open_connection("127.0.50.1", port)
    await asyncio.sleep(0.05)  # connected upstream first this time
    writer.write(b"hello world")
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 5) == b"got 11\n"
    writer.close()


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def test_backpressure_slow_reader_bounded_memory(cleanup: list) -> None:
    """100 MB from a fast source to a client that stalls: the proxy holds at most its high-water mark."""
    total = 100 * 1024 * 1024
    ep = await backend(cleanup, "source", "127.0.50.2")
    proxy = Proxy()
    cleanup.append(proxy)
    port = await tcp_table(proxy, "127.0.50.1", "b", [ep])
    before = rss_kib()
    reader, writer = await asyncio.open_connection("127.0.50.1", port, limit=64 * 1024)
    writer.write(f"{total}\n".encode())
    # Stall: the source keeps pushing, the proxy must stop reading it.
    await asyncio.sleep(1.0)
    (conn,) = proxy.conns
    assert conn.up is not None
    held = conn.transport.get_write_buffer_size() + conn.up.get_write_buffer_size()
    assert held <= 2 * WRITE_HIGH + 512 * 1024, held
    assert (rss_kib() - before) < 40 * 1024
    got = 0
    peak = 0
    while got < total:
        chunk = await asyncio.wait_for(reader.read(1 << 20), 10)
        if not chunk:
            break
        got += len(chunk)
        if got % (16 << 20) < len(chunk):
            await asyncio.sleep(0.05)  # read slowly now and then
            peak = max(peak, conn.transport.get_write_buffer_size())
    assert got == total
    assert peak <= WRITE_HIGH + 512 * 1024
    assert (rss_kib() - before) < 60 * 1024, "RSS grew by more than 60 MiB"
    writer.close()


def unresponsive_endpoint(host: str) -> tuple[Endpoint, list[socket.socket]]:
    """An endpoint whose connects hang: a listener with a full accept queue (backlog 0, one queued
    connection never accepted) drops further SYNs, as an overloaded or partitioned host does."""
    listener = socket.socket()
    listener.bind((host, 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname())
    return Endpoint(host, listener.getsockname()[1], "hung"), [listener, filler]


@pytest.mark.parametrize("failure", ["refused", "timed out"])
async def test_failed_connect_retries_elsewhere_and_ejects(cleanup: list, failure: str) -> None:
    good = await backend(cleanup, "echo", "127.0.50.3")
    if failure == "refused":
        bad = Endpoint("127.0.50.2", free_port("127.0.50.2"))  # nothing listens
    else:
        bad, socks = unresponsive_endpoint("127.0.50.4")
        cleanup.extend(socks)
    proxy = Proxy(eject_seconds=30, connect_timeout=0.2)
    cleanup.append(proxy)
    port = await tcp_table(proxy, "127.0.50.1", "b", [bad, good])
    for i in range(10):
        reader, writer = await asyncio.open_connection("127.0.50.1", port)
        writer.write(b"ping %d" % i)
        assert await asyncio.wait_for(reader.readexactly(6), 5) == b"ping %d" % i
        writer.close()
    stats = proxy.stats["b"]
    assert stats.connect_errors == 1, "the bad endpoint got a connection after its connect failed"
    assert stats.retries == 1
    assert proxy.ejections.ejected(proxy.loop.time()) == [bad.key]


async def test_client_gone_while_connecting_cancels_the_connect(cleanup: list) -> None:
    hung, socks = unresponsive_endpoint("127.0.50.4")
    cleanup.extend(socks)
    proxy = Proxy(connect_timeout=30)
    cleanup.append(proxy)
    port = await tcp_table(proxy, "127.0.50.1", "b", [hung])
    _, writer = await asyncio.open_connection("127.0.50.1", port)
    for _ in range(100):
        if proxy.conns and next(iter(proxy.conns)).connecting is not None:
            break
        await asyncio.sleep(0.01)
    (conn,) = proxy.conns
    task = conn.connecting
    assert task is not None
    # A reset (SO_LINGER 0): a plain close is a FIN, which the proxy takes as a half-close that still
    # wants the reply.
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
    for _ in range(100):
        if task.done() and not proxy.conns:
            break
        await asyncio.sleep(0.01)
    assert task.cancelled()
    assert not proxy.conns and proxy.stats["b"].active == 0
    assert proxy.stats["b"].connect_errors == 0, "a client leaving is not the endpoint's failure"
    assert not proxy.ejections


async def test_no_usable_endpoint_closes_client(cleanup: list) -> None:
    dead = Endpoint("127.0.50.2", free_port("127.0.50.2"))
    proxy = Proxy()
    cleanup.append(proxy)
    port = await tcp_table(proxy, "127.0.50.1", "b", [dead])
    reader, writer = await asyncio.open_connection("127.0.50.1", port)
    try:
        assert await asyncio.wait_for(reader.read(), 5) == b""
    except ConnectionResetError:
        pass
    writer.close()
    assert proxy.stats["b"].no_endpoint == 1


async def test_draining_endpoint_gets_no_new_connections_and_old_ones_close_at_deadline(
    cleanup: list,
) -> None:
    a = await backend(cleanup, "echo", "127.0.50.2")
    b = await backend(cleanup, "echo", "127.0.50.3")
    proxy = Proxy(drain_seconds=0.5)
    cleanup.append(proxy)
    port = await tcp_table(proxy, "127.0.50.1", "svc", [a, b])
    r1, w1 = await asyncio.open_connection("127.0.50.1", port)  # round-robin: a
    w1.write(b"x")
    await r1.readexactly(1)
    (conn,) = proxy.conns
    assert conn.endpoint == a.key
    # a leaves the set (e.g. its pod is terminating).
    await tcp_table(proxy, "127.0.50.1", "svc", [b])
    for _ in range(4):
        r, w = await asyncio.open_connection("127.0.50.1", port)
        w.write(b"y")
        await r.readexactly(1)
        assert {c.endpoint for c in proxy.conns if c.transport.get_extra_info("peername")} >= {b.key}
        w.close()
    assert all(c.endpoint != a.key for c in proxy.conns if c is not conn)
    # The open connection still works before the deadline...
    w1.write(b"z")
    assert await r1.readexactly(1) == b"z"
    # ...and is closed after it.
    await asyncio.sleep(0.8)
    try:
        assert await asyncio.wait_for(r1.read(), 2) == b""
    except ConnectionResetError:
        pass
    w1.close()


async def http_get(port: int, host: str, path: str, addr: str = "127.0.50.1") -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(addr, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


async def test_ingress_routes_by_host_and_path(cleanup: list) -> None:
    web = await backend(cleanup, "http", "127.0.50.2", "web")
    api = await backend(cleanup, "http", "127.0.50.3", "api")
    services = [service("web", 80), service("api", 80), service("empty", 80)]
    eps = [
        endpoints("web", [(web.ip, web.port)]),
        endpoints("api", [(api.ip, api.port)]),
        endpoints("empty", []),
    ]

    def path(p: str, svc: str) -> dict:
        return {
            "path": p,
            "pathType": "Prefix",
            "backend": {"service": {"name": svc, "port": {"number": 80}}},
        }

    ing = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "i", "namespace": "default"},
        "spec": {
            "rules": [
                {
                    "host": "demo.local",
                    "http": {"paths": [path("/", "web"), path("/api", "api"), path("/empty", "empty")]},
                },
            ]
        },
    }
    table = compute_table(services, eps, [ing], address="127.0.50.1", http_port=None)
    table = dataclasses.replace(table, listeners={("127.0.50.1", 0): Listener("127.0.50.1", 0, None)})
    proxy = Proxy(head_timeout=0.5)
    cleanup.append(proxy)
    await proxy.apply_table(table)
    port = proxy.bound_port(("127.0.50.1", 0))
    assert await http_get(port, "demo.local", "/") == (200, b"web\n")
    assert await http_get(port, "demo.local:8080", "/api/x?y") == (200, b"api\n")
    assert await http_get(port, "demo.local", "/apiary") == (200, b"web\n")
    assert (await http_get(port, "other.local", "/"))[0] == 404
    assert (await http_get(port, "demo.local", "/empty"))[0] == 503
    # Per connection: after the first request the connection is L4 to the chosen backend.
    reader, writer = await asyncio.open_connection("127.0.50.1", port)
    for p in ("/api", "/", "/api"):
        writer.write(f"GET {p} HTTP/1.1\r\nHost: demo.local\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        assert await reader.readexactly(4) == b"api\n"
    writer.close()
    # A head that never completes: 408 after the head timeout.
    reader, writer = await asyncio.open_connection("127.0.50.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: demo")
    data = await asyncio.wait_for(reader.read(), 5)
    assert data.startswith(b"HTTP/1.1 408")
    writer.close()


async def test_listeners_follow_the_table(cleanup: list) -> None:
    ep = await backend(cleanup, "echo", "127.0.50.2")
    proxy = Proxy()
    cleanup.append(proxy)
    port = await tcp_table(proxy, "127.0.50.1", "b", [ep])
    await proxy.apply_table(RoutingTable())
    assert not proxy.servers
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.50.1", port)


async def test_close_drains_then_aborts(cleanup: list) -> None:
    ep = await backend(cleanup, "echo", "127.0.50.2")
    proxy = Proxy()
    port = await tcp_table(proxy, "127.0.50.1", "b", [ep])
    reader, writer = await asyncio.open_connection("127.0.50.1", port)
    writer.write(b"x")
    await reader.readexactly(1)
    t0 = asyncio.get_running_loop().time()
    await proxy.close(0.3)
    assert 0.25 < asyncio.get_running_loop().time() - t0 < 2
    assert not proxy.conns
    writer.close()
    assert resource.getrlimit(resource.RLIMIT_NOFILE)  # keep the import used
