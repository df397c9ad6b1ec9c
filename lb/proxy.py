"""The data path: an L4 TCP proxy of asyncio Protocols on uvloop.

Each accepted connection is a `ClientSide` protocol; once an endpoint is chosen and connected, an
`UpstreamSide` protocol carries the other leg. `data_received` on either leg writes straight to the
other; when a leg's write buffer passes its high-water mark, its `pause_writing` pauses reading on the
source, and `resume_writing` resumes it. An EOF is passed on with `write_eof` (half-close) and the
connection ends when both directions are done or either leg is lost. The upstream's EOF reaches the
client one loop turn late: a client that closes on the response (HTTP `Connection: close`) has then
usually closed already, and both legs just close, without a shutdown() per connection.

uvloop traps handled here: `pause_reading()` inside `connection_made()` is ignored, so the client's
early bytes are buffered until the upstream connects (reading is paused from `data_received` when that
buffer grows); `write_eof()` raises on a closed transport, so it is guarded; the per-connection connect
task is held by its `ClientSide` (the loop keeps only weak references to tasks). uvloop sets
TCP_NODELAY on every TCP transport it creates (both legs).

The proxy reads only `self.table` (replaced whole by the control side through `apply_table`) and never
awaits the control plane. Nothing in the per-chunk path allocates, logs or looks anything up.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from collections.abc import Set as AbstractSet

from lb import http_route
from lb.balancer import ROUND_ROBIN, Ejections, Endpoint, Picker, never
from lb.metrics import BACKEND_METRICS, BackendStats, render
from lb.routes import RoutingTable, draining

log = logging.getLogger(__name__)

# Write buffer high-water mark per leg: the most a slow reader makes us hold per direction (plus one
# read of up to 256 KiB, uvloop's read buffer).
WRITE_HIGH = 256 * 1024
# Early bytes (sent before the upstream connected) buffered before we stop reading the client.
MAX_EARLY = 256 * 1024
_NOTHING: frozenset[str] = frozenset()


def _write_eof(tr: asyncio.Transport) -> None:
    """Half-close `tr` for writing; write_eof raises on a closed transport in uvloop."""
    if tr.is_closing():
        return
    try:
        if tr.can_write_eof():
            tr.write_eof()
        else:
            tr.close()
    except (OSError, RuntimeError):
        tr.close()


class UpstreamSide(asyncio.Protocol):
    """The leg to the endpoint; everything it receives goes to its client."""

    __slots__ = ("client", "endpoint", "transport")

    def __init__(self, client: ClientSide, endpoint: str) -> None:
        self.client = client
        self.endpoint = endpoint
        self.transport: asyncio.Transport | None = None

    def __call__(self) -> UpstreamSide:
        # The protocol factory of create_connection: this protocol itself, no closure per connect.
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Wire the legs here, before any data_received of this leg can run.
        self.transport = transport  # type: ignore[assignment]
        transport.set_write_buffer_limits(WRITE_HIGH)  # type: ignore[attr-defined]
        self.client.upstream_made(self.transport, self.endpoint)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        c = self.client
        c.bytes_out += len(data)
        c.transport.write(data)

    def eof_received(self) -> bool:
        return self.client.upstream_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.upstream_lost()

    def pause_writing(self) -> None:
        self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        self.client.transport.resume_reading()


class ClientSide(asyncio.Protocol):
    """An accepted connection: routes it, connects upstream, then relays both ways."""

    __slots__ = (
        "proxy",
        "listener",
        "transport",
        "up",
        "early",
        "http",
        "head_timer",
        "backend",
        "endpoint",
        "stats",
        "bytes_in",
        "bytes_out",
        "eof_in",
        "eof_out",
        "closed",
        "up_closed",
        "released",
        "paused_early",
        "attempts",
        "tried",
        "connecting",
        "connecting_to",
        "connect_timer",
    )

    def __init__(self, proxy: Proxy, listener: tuple[str, int]) -> None:
        self.proxy = proxy
        self.listener = listener
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.up: asyncio.Transport | None = None
        self.early: bytearray | None = None
        self.http = False
        self.head_timer: asyncio.TimerHandle | None = None
        self.backend = ""
        self.endpoint = ""
        self.stats: BackendStats | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.eof_in = False
        self.eof_out = False
        self.closed = False
        self.up_closed = False
        self.released = False
        self.paused_early = False
        self.attempts = 0
        self.tried: set[str] | None = None
        self.connecting: asyncio.Task[object] | None = None
        self.connecting_to: Endpoint | None = None
        self.connect_timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------ client leg

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        proxy = self.proxy
        listener = proxy.table.listeners.get(self.listener)
        if listener is None or proxy.closing:
            self.closed = True
            transport.abort()  # type: ignore[attr-defined]
            return
        transport.set_write_buffer_limits(WRITE_HIGH)  # type: ignore[attr-defined]
        proxy.conns.add(self)
        if listener.backend is None:
            self.http = True
            self.head_timer = proxy.loop.call_later(proxy.head_timeout, self._head_timeout)
        else:
            self._route(listener.backend)

    def data_received(self, data: bytes) -> None:
        up = self.up
        if up is not None:
            self.bytes_in += len(data)
            up.write(data)
            return
        if self.early is None:
            self.early = bytearray(data)
        else:
            self.early += data
        if self.http and not self.backend:
            self._try_head()
        elif len(self.early) > MAX_EARLY and not self.paused_early:
            # Allowed here (not in connection_made, where uvloop ignores it).
            self.paused_early = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.eof_in = True
        up = self.up
        if up is not None:
            if self.eof_out:
                self._finish()  # close() sends the FIN: no separate shutdown
            else:
                _write_eof(up)
        elif self.http and not self.backend:
            self._reply(400, "Bad Request", "incomplete request head\n")
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        up = self.up
        if up is not None and not self.up_closed:
            up.close()
        elif self.connecting is not None:
            self.connecting.cancel()  # nobody left to connect for
        self._release()

    def pause_writing(self) -> None:
        up = self.up
        if up is not None:
            up.pause_reading()

    def resume_writing(self) -> None:
        up = self.up
        if up is not None:
            up.resume_reading()

    # ------------------------------------------------------------ upstream leg events

    def upstream_made(self, tr: asyncio.Transport, endpoint: str) -> None:
        if self.closed:
            self.up_closed = True
            tr.close()
            return
        proxy = self.proxy
        proxy.ejections.clear(endpoint)
        self.endpoint = endpoint
        proxy.active[endpoint] = proxy.active.get(endpoint, 0) + 1
        self.up = tr
        early = self.early
        if early:
            self.bytes_in += len(early)
            tr.write(bytes(early))
        self.early = None
        if self.eof_in:
            _write_eof(tr)
        if self.paused_early:
            self.paused_early = False
            self.transport.resume_reading()

    def upstream_eof(self) -> bool:
        self.eof_out = True
        if self.eof_in:
            self._finish()
        else:
            self.proxy.loop.call_soon(self._client_eof)
        return True

    def _client_eof(self) -> None:
        if self.eof_in:
            self._finish()
        elif not self.closed:
            _write_eof(self.transport)

    def upstream_lost(self) -> None:
        self.up_closed = True
        if not self.closed:
            self.transport.close()
        self._release()

    def _finish(self) -> None:
        """Both directions are done: close both legs (close() flushes what is buffered)."""
        if self.up is not None:
            self.up.close()
        self.transport.close()

    def abort(self) -> None:
        if self.up is not None:
            self.up.abort()
        self.transport.abort()

    def _release(self) -> None:
        if self.released:
            return
        self.released = True
        proxy = self.proxy
        proxy.conns.discard(self)
        stats = self.stats
        if stats is not None:
            stats.active -= 1
            stats.bytes_in += self.bytes_in
            stats.bytes_out += self.bytes_out
            self.bytes_in = self.bytes_out = 0
        if self.endpoint:
            n = proxy.active.get(self.endpoint, 1) - 1
            if n > 0:
                proxy.active[self.endpoint] = n
            else:
                proxy.active.pop(self.endpoint, None)
        if proxy.conns_empty is not None and not proxy.conns:
            proxy.conns_empty.set()

    # ------------------------------------------------------------ HTTP entry

    def _try_head(self) -> None:
        buf = self.early
        assert buf is not None
        end = http_route.head_end(buf)
        if end < 0:
            if len(buf) > http_route.MAX_HEAD:
                self._reply(431, "Request Header Fields Too Large", "request head too large\n")
            return
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        try:
            head = http_route.parse_head(buf[:end])
        except http_route.HeadError as e:
            self._reply(400, "Bad Request", f"{e}\n")
            return
        table = self.proxy.table
        backend = table.ingress.match(head.host, head.path)
        if backend is None:
            self._reply(404, "Not Found", f"no ingress rule for host {head.host!r} path {head.path!r}\n")
            return
        self._route(backend)

    def _head_timeout(self) -> None:
        self.head_timer = None
        if not self.backend and not self.closed:
            self._reply(408, "Request Timeout", "request head not received in time\n")

    def _reply(self, status: int, reason: str, body: str) -> None:
        self.backend = self.backend or "-"
        tr = self.transport
        if not tr.is_closing():
            tr.write(http_route.response(status, reason, body))
            tr.close()

    # ------------------------------------------------------------ connecting

    def _route(self, backend: str) -> None:
        proxy = self.proxy
        self.backend = backend
        stats = proxy.stats.get(backend)
        if stats is None:
            stats = proxy.stats[backend] = BackendStats()
        self.stats = stats
        stats.connections_total += 1
        stats.active += 1
        self._connect()

    def _connect(self) -> None:
        """Pick an endpoint (not one this connection tried) and start connecting to it.

        The connect is uvloop's `create_connection` coroutine in a task; `_connect_done` runs when it
        ends, and a timer cancels it at the connect deadline. No coroutine or timeout context of our
        own: the new-connection rate is bounded by the per-connection work.
        """
        proxy = self.proxy
        if self.closed or proxy.closing:
            return
        name = self.backend
        backend = proxy.table.backends.get(name)
        picker = proxy.pickers.get(name)
        ep = None
        if backend is not None and picker is not None and self.attempts < proxy.connect_tries:
            client_ip = ""
            if backend.affinity_timeout is not None:
                peer = self.transport.get_extra_info("peername")
                client_ip = peer[0] if peer else ""
            now = proxy.loop.time()
            ep = picker.pick(
                backend.endpoints,
                now=now,
                client_ip=client_ip,
                active=proxy.active,
                excluded=proxy.excluded(backend.draining, self.tried, now),
            )
        if ep is None:
            self._no_endpoint()
            return
        if self.attempts:
            self.stats.retries += 1  # type: ignore[union-attr]
        self.attempts += 1
        self.connecting_to = ep
        loop = proxy.loop
        task = loop.create_task(loop.create_connection(UpstreamSide(self, ep.key), ep.ip, ep.port))
        task.add_done_callback(self._connect_done)
        self.connecting = task
        self.connect_timer = loop.call_later(proxy.connect_timeout, task.cancel)

    def _connect_done(self, task: asyncio.Task[object]) -> None:
        self.connecting = None
        timer = self.connect_timer
        if timer is not None:
            timer.cancel()
            self.connect_timer = None
        if self.up is not None:
            return  # wired; a loss from here on is upstream_lost's
        if task.cancelled():
            if self.closed or self.proxy.closing:
                return  # shutting down, not a failed endpoint
            error = "TimeoutError"
        else:
            exc = task.exception()
            if exc is None:
                return  # wired in UpstreamSide.connection_made
            error = str(exc) if isinstance(exc, OSError) else repr(exc)
        proxy = self.proxy
        ep = self.connecting_to
        assert ep is not None and self.stats is not None
        self.stats.connect_errors += 1
        if self.tried is None:
            self.tried = set()
        self.tried.add(ep.key)
        proxy.ejections.eject(ep.key, proxy.loop.time())
        log.warning(
            "connect failed backend=%s endpoint=%s pod=%s error=%s; ejected for %.0fs",
            self.backend,
            ep.key,
            ep.pod,
            error,
            proxy.ejections.duration,
        )
        self._connect()

    def _no_endpoint(self) -> None:
        assert self.stats is not None
        self.stats.no_endpoint += 1
        if self.http:
            self._reply(503, "Service Unavailable", f"no ready endpoint for {self.backend}\n")
        elif not self.closed:
            self.transport.abort()


class Proxy:
    """Listeners and open connections of one worker process; create it inside the running loop."""

    def __init__(
        self,
        *,
        policy: str = ROUND_ROBIN,
        rng: random.Random | None = None,
        connect_timeout: float = 2.0,
        connect_tries: int = 3,
        eject_seconds: float = 5.0,
        drain_seconds: float = 10.0,
        head_timeout: float = 5.0,
        backlog: int = 1024,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.policy = policy
        self.rng = rng or random.Random()
        self.connect_timeout = connect_timeout
        self.connect_tries = max(1, connect_tries)
        self.ejections = Ejections(eject_seconds)
        self.drain_seconds = drain_seconds
        self.head_timeout = head_timeout
        self.backlog = backlog
        self.table = RoutingTable()
        self.pickers: dict[str, Picker] = {}
        self.stats: dict[str, BackendStats] = {}
        self.active: dict[str, int] = {}  # endpoint key -> open connections (least-conn, p2c)
        self.conns: set[ClientSide] = set()
        self.conns_empty: asyncio.Event | None = None
        self.servers: dict[tuple[str, int], asyncio.Server] = {}
        self.listen_errors: dict[tuple[str, int], str] = {}
        self.closing = False
        self.table_updates = 0
        self._drain_timers: set[asyncio.TimerHandle] = set()

    def excluded(self, draining: frozenset[str], tried: set[str] | None, now: float) -> Callable[[str], bool]:
        ejections = self.ejections
        if not draining and not tried and not ejections:
            return never  # the common case: no closure per connection
        skip: AbstractSet[str] = tried or _NOTHING

        def excluded(key: str) -> bool:
            return key in draining or key in skip or ejections.is_ejected(key, now)

        return excluded

    # ------------------------------------------------------------ control side

    async def apply_table(self, table: RoutingTable) -> None:
        """Make `table` current: new connections use it at once; listeners follow its ports;
        connections to endpoints that left their backend are closed after the drain deadline."""
        old, self.table = self.table, table
        self.table_updates += 1
        for name, b in table.backends.items():
            p = self.pickers.get(name)
            if p is None or p.affinity_timeout != b.affinity_timeout:
                self.pickers[name] = Picker(self.policy, rng=self.rng, affinity_timeout=b.affinity_timeout)
        for name in [n for n in self.pickers if n not in table.backends]:
            del self.pickers[name]
        gone = draining(old, table)
        if gone and self.conns:
            n = sum(1 for c in self.conns if c.endpoint and c.endpoint in gone.get(c.backend, ()))
            if n:
                log.info(
                    "draining connections=%d endpoints=%s deadline=%.1fs",
                    n,
                    ",".join(sorted({k for ks in gone.values() for k in ks})),
                    self.drain_seconds,
                )
                handle = self.loop.call_later(self.drain_seconds, self._sweep_drained)
                self._drain_timers.add(handle)
        await self.sync_listeners()

    def _sweep_drained(self) -> None:
        self._drain_timers = {
            h for h in self._drain_timers if not h.cancelled() and h.when() > self.loop.time()
        }
        backends = self.table.backends
        stale = []
        for c in self.conns:
            if not c.endpoint:
                continue
            b = backends.get(c.backend)
            if b is None or c.endpoint not in b.ready_keys:
                stale.append(c)
        if stale:
            log.info("drain deadline passed: closing connections=%d", len(stale))
        for c in stale:
            c.abort()

    async def sync_listeners(self) -> None:
        """Open the table's listeners that are not open yet (retried on the next call when the bind
        fails) and close those the table no longer has (their open connections carry on)."""
        wanted = self.table.listeners
        for key in [k for k in self.servers if k not in wanted]:
            self.servers.pop(key).close()
            log.info("listener closed address=%s port=%d", *key)
        for key in wanted:
            if key in self.servers or self.closing:
                continue
            try:
                self.servers[key] = await self.loop.create_server(
                    lambda key=key: ClientSide(self, key),  # type: ignore[misc]
                    key[0],
                    key[1],
                    reuse_address=True,
                    reuse_port=True,
                    backlog=self.backlog,
                )
            except OSError as e:
                if self.listen_errors.get(key) != str(e):
                    log.warning("listen failed address=%s port=%d error=%s", key[0], key[1], e)
                self.listen_errors[key] = str(e)
                continue
            self.listen_errors.pop(key, None)
            log.info(
                "listening address=%s port=%d backend=%s", key[0], key[1], wanted[key].backend or "(ingress)"
            )

    def bound_port(self, key: tuple[str, int]) -> int:
        server = self.servers[key]
        return int(server.sockets[0].getsockname()[1])

    async def close(self, timeout: float = 5.0) -> None:
        """Ordered shutdown: stop accepting, let open connections finish within `timeout`, abort the rest."""
        self.closing = True
        for server in self.servers.values():
            server.close()
        self.servers.clear()
        for h in self._drain_timers:
            h.cancel()
        if self.conns:
            log.info("waiting for open connections=%d timeout=%.1fs", len(self.conns), timeout)
            self.conns_empty = asyncio.Event()
            try:
                async with asyncio.timeout(timeout):
                    await self.conns_empty.wait()
            except TimeoutError:
                log.info("shutdown deadline passed: aborting connections=%d", len(self.conns))
        connects = [c.connecting for c in self.conns if c.connecting is not None]
        for c in list(self.conns):
            c.abort()
        for t in connects:
            t.cancel()
        for _ in range(10):  # connection_lost runs on a later loop turn
            if not self.conns:
                break
            await asyncio.sleep(0)
        if connects:
            await asyncio.gather(*connects, return_exceptions=True)

    # ------------------------------------------------------------ metrics

    def metrics_text(self) -> str:
        live: dict[str, list[int]] = {}
        for c in self.conns:
            if c.stats is not None:
                v = live.setdefault(c.backend, [0, 0])
                v[0] += c.bytes_in
                v[1] += c.bytes_out
        values: dict[str, tuple[int, ...]] = {}
        for name, s in self.stats.items():
            extra = live.get(name, (0, 0))
            row = []
            for _, _, _, attr in BACKEND_METRICS:
                v = getattr(s, attr)
                if attr == "bytes_in":
                    v += extra[0]
                elif attr == "bytes_out":
                    v += extra[1]
                row.append(v)
            values[name] = tuple(row)
        now = self.loop.time()
        return render(
            values,
            [
                ("skiff_lb_listeners", "Open listening sockets", len(self.servers)),
                ("skiff_lb_listen_errors", "Listeners that failed to bind", len(self.listen_errors)),
                (
                    "skiff_lb_ejected_endpoints",
                    "Endpoints ejected after a failed connect",
                    len(self.ejections.ejected(now)),
                ),
                ("skiff_lb_table_updates", "Routing tables applied", self.table_updates),
                ("skiff_lb_backends", "Backends in the routing table", len(self.table.backends)),
            ],
        )
