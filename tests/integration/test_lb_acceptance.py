"""Issue 5 acceptance: the load balancer on a real `skiff up` cluster (3 masters, 5 workers, balancer).

One cluster serves the whole module: the `demo` deployment (10 replicas of the demo image, port 5005),
exposed as a NodePort service, and examples/basic-ingress.yaml. Every test starts by waiting for 10
Ready endpoints, so tests do not depend on each other's leftovers. Clients talk to the balancer from
source addresses of their own (127.0.103.2+) so no test runs out of ephemeral ports.

Addresses: masters 127.0.101.*, workers 127.0.102.*, balancer 127.0.103.1.
Measured figures are printed (run with -s to see them) as `FIGURE name=value`.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvloop

from lb import metrics
from orchestrator import model
from orchestrator.client import ApiClient
from tests.integration.cluster import REPO, Cluster, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

Obj = dict[str, Any]
T = TypeVar("T")
NS = "default"
MASTER_BASE, WORKER_BASE, LB_ADDRESS = "127.0.101", "127.0.102", "127.0.103.1"
DEMO_IMAGE = "jweissig/alpine-k8s-pod-lb-demo"
OTHER_IMAGE = "nginx"  # the catalog's second name for the same server program (agents/images.json)
REPLICAS = 10
BACKEND = f"{NS}/demo:5005"
STICKY_NODE_PORT = 30101


def figure(name: str, value: object) -> None:
    text = f"{value:.4f}" if isinstance(value, float) else str(value)
    print(f"FIGURE {name}={text}", flush=True)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a test body on uvloop (the client side must not be the bottleneck of the measurement)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100): with 20 samples, p99 is the largest."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def client_address(i: int) -> str:
    return f"127.0.103.{2 + i}"


# ---------------------------------------------------------------- the cluster


@dataclass
class Demo:
    cluster: Cluster
    node_port: int
    http_port: int
    metrics_port: int

    @property
    def lb_pid(self) -> int:
        return int(self.cluster.pids["lb"]["pid"])


@pytest.fixture(scope="module")
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    c = Cluster(tmp_path_factory.mktemp("lb"), masters=3, workers=5, lb=True)
    c.master_base, c.worker_base, c.lb_address = MASTER_BASE, WORKER_BASE, LB_ADDRESS
    failed_before = request.session.testsfailed
    try:
        c.up()
        c.skiff("run", "demo", f"--image={DEMO_IMAGE}", "--port=5005", f"--replicas={REPLICAS}", check=True)
        c.skiff("expose", "deployment", "demo", "--target-port=5005", "--type=NodePort", check=True)
        c.skiff("apply", "-f", str(REPO / "examples" / "basic-ingress.yaml"), check=True)
        svc = json.loads(c.skiff("get", "service", "demo", "-o", "json", check=True).stdout)
        lb = c.config["lb"]
        d = Demo(c, int(svc["spec"]["ports"][0]["nodePort"]), int(lb["httpPort"]), int(lb["metricsPort"]))
        run(wait_demo(d, REPLICAS))
        yield d
    finally:
        if request.session.testsfailed > failed_before or c.up_result is None or c.up_result.returncode:
            print(f"\n---- logs of the cluster in {c.state_dir} ----\n{c.log_tails(60)}", file=sys.stderr)
        c.down()


def ready_pods(endpoints: Obj | None) -> dict[str, str]:
    """pod name -> "ip:port" of the Endpoints' ready addresses."""
    out = {}
    for subset in (endpoints or {}).get("subsets") or []:
        port = (subset.get("ports") or [{}])[0].get("port")
        for a in subset.get("addresses") or []:
            out[a["targetRef"]["name"]] = f"{a['ip']}:{port}"
    return out


def not_ready_count(endpoints: Obj | None) -> int:
    return sum(len(s.get("notReadyAddresses") or []) for s in (endpoints or {}).get("subsets") or [])


async def demo_pods(api: ApiClient) -> list[Obj]:
    pods, _ = await api.list("Pod", NS, label_selector="app=demo")
    return pods


async def wait_demo(d: Demo, n: int, *, image: str | None = None, timeout: float = 60.0) -> dict[str, str]:
    """Until exactly `n` demo pods exist, all Ready (with `image`), none terminating, and the Endpoints
    list exactly them as ready; returns pod -> endpoint."""
    async with d.cluster.client() as api:

        async def probe() -> dict[str, str] | None:
            pods = await demo_pods(api)
            if len(pods) != n or not all(model.pod_is_ready(p) for p in pods):
                return None
            if any(model.pod_is_terminating(p) for p in pods):
                return None
            if image and any(p["spec"]["containers"][0]["image"] != image for p in pods):
                return None
            eps = await api.get("Endpoints", NS, "demo")
            ready = ready_pods(eps)
            names = {p["metadata"]["name"] for p in pods}
            return ready if set(ready) == names and not not_ready_count(eps) else None

        return await wait_until(probe, f"{n} ready demo pods in the Endpoints", timeout, 0.1)


# ---------------------------------------------------------------- clients


REQUEST = b"GET / HTTP/1.1\r\nHost: demo.example\r\nConnection: close\r\n\r\n"
HOSTNAME_RE = re.compile(rb"\r\nX-Hostname: ([^\r\n]+)", re.IGNORECASE)


async def http_get(
    host: str, port: int, *, source: str | None = None, timeout: float = 5.0, request: bytes = REQUEST
) -> str:
    """One request on a new connection; returns the answering pod's name (X-Hostname). Raises on failure."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0) if source else None)
        try:
            writer.write(request)
            data = await reader.read(-1)
        finally:
            writer.close()
    if not data.startswith(b"HTTP/1.1 200 "):
        raise ConnectionError(f"bad answer: {data[:80]!r}")
    m = HOSTNAME_RE.search(data)
    if m is None:
        raise ConnectionError(f"no X-Hostname: {data[:200]!r}")
    return m.group(1).decode()


@dataclass
class Shot:
    start: float
    end: float
    pod: str | None
    error: str | None


@dataclass
class Stream:
    """New-connection requests started every `interval` seconds (not waiting for each other); records
    which pod answered each and when it was started."""

    host: str
    port: int
    interval: float
    sources: list[str]
    shots: list[Shot] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _inflight: set[asyncio.Task[None]] = field(default_factory=set)

    async def _one(self, source: str) -> None:
        start = time.monotonic()
        try:
            pod = await http_get(self.host, self.port, source=source, timeout=3.0)
            self.shots.append(Shot(start, time.monotonic(), pod, None))
        except (OSError, TimeoutError, ConnectionError) as e:
            self.shots.append(Shot(start, time.monotonic(), None, repr(e)))

    async def _run(self) -> None:
        nxt = time.monotonic()
        i = 0
        while not self._stop.is_set():
            t = asyncio.create_task(self._one(self.sources[i % len(self.sources)]))
            self._inflight.add(t)
            t.add_done_callback(self._inflight.discard)
            i += 1
            nxt += self.interval
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=5.0)

    def pods_seen(self) -> set[str]:
        return {s.pod for s in self.shots if s.pod}

    def failures(self) -> list[Shot]:
        return [s for s in self.shots if s.error]


def scrape(d: Demo) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{LB_ADDRESS}:{d.metrics_port}/metrics", timeout=5) as r:
        return metrics.parse(r.read().decode())


async def ascrape(d: Demo) -> dict[str, float]:
    return await asyncio.to_thread(scrape, d)


def backend_metric(m: dict[str, float], name: str) -> float:
    return m.get(f'{name}{{backend="{BACKEND}"}}', 0.0)


def children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def proc_status(pid: int, key: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    return ""


def rss_kib(pids: list[int]) -> int:
    return sum(int(proc_status(p, "VmRSS").split()[0]) for p in pids)


def open_files_limit(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError(f"no open files limit for pid {pid}")


def reaped(pid: int) -> bool:
    """The process is gone and its parent has reaped it. (State Z alone is not enough: the thread group
    leader turns zombie while its other threads, which share its descriptors, may still be exiting.)"""
    return not Path(f"/proc/{pid}").exists()


# ---------------------------------------------------------------- 1. ingress and NodePort reach every pod


def listed_pods(c: Cluster) -> set[str]:
    lines = c.skiff("get", "pods", check=True).stdout.splitlines()
    assert lines and lines[0].split()[0] == "NAME", lines
    return {line.split()[0] for line in lines[1:] if line.strip()}


def test_ingress_and_node_port_reach_every_pod(demo: Demo) -> None:
    run(wait_demo(demo, REPLICAS))
    pods = listed_pods(demo.cluster)
    assert len(pods) == REPLICAS

    async def hundred(port: int) -> Counter[str]:
        got: Counter[str] = Counter()
        for i in range(100):
            got[await http_get(LB_ADDRESS, port, source=client_address(i % 4))] += 1
        return got

    for what, port in (("ingress", demo.http_port), ("nodeport", demo.node_port)):
        got = run(hundred(port))
        figure(f"{what}_answers_per_pod", ",".join(str(n) for n in sorted(got.values())))
        assert sum(got.values()) == 100
        assert set(got) == pods, f"{what}: answered by {sorted(got)}, skiff get pods lists {sorted(pods)}"


# ---------------------------------------------------------------- 6. services, ingress, session affinity


def table(text: str) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in text.splitlines() if line.strip()]
    return re.split(r"\s{2,}", lines[0].strip()), [re.split(r"\s{2,}", line.strip()) for line in lines[1:]]


STICKY = f"""\
apiVersion: v1
kind: Service
metadata:
  name: demo-sticky
spec:
  type: NodePort
  selector:
    app: demo
  sessionAffinity: ClientIP
  ports:
  - port: 5006
    targetPort: 5005
    nodePort: {STICKY_NODE_PORT}
"""


def test_get_services_ingress_and_session_affinity(demo: Demo, tmp_path: Path) -> None:
    c = demo.cluster
    run(wait_demo(demo, REPLICAS))
    header, rows = table(c.skiff("get", "services", check=True).stdout)
    assert header == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    row = next(r for r in rows if r[0] == "demo")
    assert row[1] == "NodePort"
    assert re.fullmatch(r"127\.1\.\d+\.\d+", row[2]), row
    assert row[3] == "<none>"
    assert row[4] == f"5005:{demo.node_port}/TCP"

    # `skiff get ingress` names an address a user can curl.
    header, rows = table(c.skiff("get", "ingress", check=True).stdout)
    assert header[:4] == ["NAME", "CLASS", "HOSTS", "ADDRESS"], header
    address = next(r for r in rows if r[0] == "basic-ingress")[3]
    figure("ingress_address", address)
    curl = shutil.which("curl")
    assert curl, "curl is needed to show the ingress address works"
    out = subprocess.run(
        [curl, "-sS", "-D", "-", "-o", "/dev/null", "--max-time", "5", f"http://{address}/"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert out.returncode == 0 and out.stdout.startswith("HTTP/1.1 200"), out
    assert re.search(r"(?im)^x-hostname: demo-", out.stdout), out.stdout

    # sessionAffinity: ClientIP — every request from one client address goes to one pod, on every
    # balancer worker (each client's connections spread over the workers by SO_REUSEPORT).
    manifest = tmp_path / "sticky.yaml"
    manifest.write_text(STICKY)
    c.skiff("apply", "-f", str(manifest), check=True)

    async def body() -> dict[str, Counter[str]]:
        await wait_until(
            lambda: http_get(LB_ADDRESS, STICKY_NODE_PORT, source=client_address(40)),
            "the sticky service's port",
            15.0,
        )
        per_client: dict[str, Counter[str]] = {client_address(40 + i): Counter() for i in range(12)}
        for _ in range(10):
            for src in per_client:  # interleaved, so the workers' pickers do not move in lock step
                per_client[src][await http_get(LB_ADDRESS, STICKY_NODE_PORT, source=src)] += 1
        return per_client

    per_client = run(body())
    for src, got in per_client.items():
        figure(f"affinity_{src}", dict(got))
    assert all(len(got) == 1 for got in per_client.values()), per_client
    spread = {next(iter(got)) for got in per_client.values()}
    figure("affinity_distinct_pods_for_12_clients", len(spread))
    assert len(spread) >= 3, "ClientIP affinity should still spread different clients"
    c.skiff("delete", "service", "demo-sticky", check=True)


# ---------------------------------------------------------------- 2. endpoint change latency


def test_endpoint_changes_reach_the_balancer_fast(demo: Demo) -> None:
    rounds, per_round = 10, 2
    run(wait_demo(demo, REPLICAS))
    lb_log = demo.cluster.state_dir / "logs" / "lb.log"
    log_offset = lb_log.stat().st_size

    async def body() -> tuple[dict[str, float], dict[str, float], dict[str, float], Stream, set[str]]:
        ep_first: dict[str, float] = {}  # pod -> when the test saw it among the Endpoints' ready addresses
        pod_ready: dict[str, float] = {}  # pod -> when the test saw its Ready=True
        deleted: dict[str, float] = {}  # pod -> just before its delete call
        async with demo.cluster.client() as api:
            initial = set(ready_pods(await api.get("Endpoints", NS, "demo")))
            current: dict[str, str] = {}

            async def watch_endpoints() -> None:
                async for ev in api.watch("Endpoints", NS):
                    if ev.obj and ev.obj["metadata"]["name"] == "demo":
                        now = time.monotonic()
                        current.clear()
                        current.update(ready_pods(ev.obj))
                        for p in current:
                            ep_first.setdefault(p, now)

            async def watch_pods() -> None:
                async for ev in api.watch("Pod", NS, label_selector="app=demo"):
                    if ev.obj and model.pod_is_ready(ev.obj):
                        pod_ready.setdefault(ev.obj["metadata"]["name"], time.monotonic())

            watchers = [asyncio.create_task(watch_endpoints()), asyncio.create_task(watch_pods())]
            stream = Stream(LB_ADDRESS, demo.node_port, 0.005, [client_address(i) for i in range(8, 16)])
            stream.start()
            try:
                await wait_until(
                    lambda: asyncio.sleep(0, stream.pods_seen() >= initial),
                    "the stream to reach every pod",
                    10,
                )
                for r in range(rounds):
                    victims = sorted(p for p in current if p not in deleted)[:per_round]

                    async def delete(name: str) -> None:
                        deleted[name] = time.monotonic()
                        await api.delete("Pod", NS, name)

                    await asyncio.gather(*(delete(v) for v in victims))
                    t0 = max(deleted[v] for v in victims)
                    want = per_round * (r + 1)

                    async def settled(t0: float = t0, want: int = want, victims: list[str] = victims) -> bool:
                        new_answered = stream.pods_seen() - initial
                        return (
                            len(new_answered) >= want
                            and not any(v in current for v in victims)
                            and time.monotonic() - t0 > 0.4
                        )

                    await wait_until(settled, f"round {r}: replacements answering", 20)
                await asyncio.sleep(0.3)  # the stream keeps running briefly past the last change
            finally:
                await stream.stop()
                for t in watchers:
                    t.cancel()
                await asyncio.gather(*watchers, return_exceptions=True)
        return ep_first, pod_ready, deleted, stream, initial

    ep_first, pod_ready, deleted, stream, initial = run(body())
    first_answer: dict[str, float] = {}
    last_answer: dict[str, float] = {}
    for s in stream.shots:
        if s.pod:
            first_answer[s.pod] = min(first_answer.get(s.pod, s.start), s.start)
            last_answer[s.pod] = max(last_answer.get(s.pod, s.start), s.start)
    new = [p for p in first_answer if p not in initial]
    ready_lat = [first_answer[p] - ep_first[p] for p in new if p in ep_first]
    ready_lat_pod = [first_answer[p] - pod_ready[p] for p in new if p in pod_ready]
    delete_lat_answered = [last_answer.get(p, t) - t for p, t in deleted.items()]
    # A connection the balancer sent to a deleted pod whose server was already gone shows only in its
    # log (connect failed, retried on another endpoint): count those as routed to it too.
    last_refused = last_connect_failures(lb_log, log_offset)
    delete_lat = []
    for p, t in deleted.items():
        routed = [x for x in (last_answer.get(p), last_refused.get(p)) if x is not None]
        assert routed, f"the stream never reached deleted pod {p}"
        delete_lat.append(max(routed) - t)
    figure("delete_refused_connects", sum(1 for p in deleted if p in last_refused))
    n_fail = len(stream.failures())
    figure("stream_requests", len(stream.shots))
    figure("stream_failures", n_fail)
    figure("stream_rate_per_s", len(stream.shots) / (stream.shots[-1].start - stream.shots[0].start))
    for name, xs in (
        ("ready_endpoints_to_first_conn", ready_lat),
        ("ready_pod_to_first_conn", ready_lat_pod),
        ("delete_call_to_last_answered_conn", delete_lat_answered),
        ("delete_call_to_last_conn", delete_lat),
    ):
        figure(f"{name}_samples", len(xs))
        figure(f"{name}_p50_ms", percentile(xs, 50) * 1000)
        figure(f"{name}_p99_ms", percentile(xs, 99) * 1000)
        figure(f"{name}_min_ms", min(xs) * 1000)
    if n_fail:
        figure("stream_failure_examples", [s.error for s in stream.failures()[:5]])
    assert len(ready_lat) >= rounds * per_round
    assert len(delete_lat) == rounds * per_round
    assert percentile(ready_lat, 99) <= 0.200
    assert percentile(delete_lat, 99) <= 0.200
    assert n_fail <= len(stream.shots) * 0.001, [s.error for s in stream.failures()[:10]]


LOG_CONNECT_FAILED_RE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) WARNING lb-worker-\d+ \S+: connect failed "
    r"backend=\S+ endpoint=\S+ pod=[^/\s]+/(\S+) ",
    re.MULTILINE,
)


def last_connect_failures(lb_log: Path, offset: int) -> dict[str, float]:
    """pod -> time.monotonic() of the last failed connect to it logged after `offset` (ms resolution)."""
    with lb_log.open("rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    wall_minus_mono = time.time() - time.monotonic()
    out: dict[str, float] = {}
    for m in LOG_CONNECT_FAILED_RE.finditer(text):
        t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() - wall_minus_mono
        out[m.group(2)] = max(out.get(m.group(2), t), t)
    return out


# ---------------------------------------------------------------- 3. disruptions under keep-alive load

WRK_RE = {
    "requests": re.compile(r"(\d+) requests in"),
    "non2xx": re.compile(r"Non-2xx or 3xx responses: (\d+)"),
    "socket": re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"),
}
CONNECT_FAILED_RE = re.compile(r" lb-worker-(\d+) \S+: connect failed backend=(\S+) endpoint=(\S+)")


@dataclass
class LoadResult:
    requests: int
    non2xx: int
    connect: int
    read: int
    write: int
    timeout: int
    connect_failures: Counter[tuple[str, str]]  # (worker index, endpoint) -> failed connects in lb.log
    connect_errors_metric: float

    @property
    def failed(self) -> int:
        return self.non2xx + self.connect + self.read + self.write + self.timeout

    @property
    def rate(self) -> float:
        return self.failed / max(1, self.requests)


def parse_wrk(text: str) -> tuple[int, int, int, int, int, int]:
    m = WRK_RE["requests"].search(text)
    assert m, text
    non2xx = WRK_RE["non2xx"].search(text)
    sock = WRK_RE["socket"].search(text)
    c, r, w, t = (int(x) for x in sock.groups()) if sock else (0, 0, 0, 0)
    return int(m.group(1)), int(non2xx.group(1)) if non2xx else 0, c, r, w, t


async def under_load(d: Demo, action: Callable[[], Awaitable[None]]) -> LoadResult:
    """wrk (64 keep-alive connections) on the NodePort while `action` runs; its summary once stopped."""
    wrk = shutil.which("wrk")
    assert wrk, "wrk is needed (apt-get install -y wrk)"
    lb_log = d.cluster.state_dir / "logs" / "lb.log"
    offset = lb_log.stat().st_size
    before = await ascrape(d)
    proc = await asyncio.create_subprocess_exec(
        wrk, "-t2", "-c64", "-d120s", "--timeout", "3s", "--latency", f"http://{LB_ADDRESS}:{d.node_port}/",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        await wait_until(lambda: _active_at_least(d, 64), "wrk's 64 connections", 10)
        await asyncio.sleep(0.5)  # some load before the disruption
        await action()
        await asyncio.sleep(1.0)  # and some after convergence
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(proc.communicate(), 15)
    text = out.decode(errors="replace")
    print(text)
    after = await ascrape(d)
    with lb_log.open("rb") as f:
        f.seek(offset)
        new_log = f.read().decode(errors="replace")
    fails: Counter[tuple[str, str]] = Counter(
        (m.group(1), m.group(3)) for m in CONNECT_FAILED_RE.finditer(new_log) if m.group(2) == BACKEND
    )
    requests, non2xx, c, r, w, t = parse_wrk(text)
    return LoadResult(
        requests,
        non2xx,
        c,
        r,
        w,
        t,
        fails,
        backend_metric(after, "skiff_lb_connect_errors_total")
        - backend_metric(before, "skiff_lb_connect_errors_total"),
    )


async def _active_at_least(d: Demo, n: int) -> bool:
    return backend_metric(await ascrape(d), "skiff_lb_connections_active") >= n


def report_load(name: str, res: LoadResult) -> None:
    figure(f"{name}_requests", res.requests)
    figure(f"{name}_failed", res.failed)
    figure(f"{name}_non2xx", res.non2xx)
    figure(
        f"{name}_socket_errors",
        f"connect={res.connect},read={res.read},write={res.write},timeout={res.timeout}",
    )
    figure(f"{name}_failure_rate_pct", res.rate * 100)
    figure(f"{name}_connect_errors_metric", int(res.connect_errors_metric))
    figure(f"{name}_connect_failures_per_worker_endpoint", dict(res.connect_failures))


def check_load(name: str, res: LoadResult) -> None:
    assert res.requests > 1000, res
    assert res.rate <= 0.01, f"{name}: {res.failed}/{res.requests} failed"
    # An endpoint whose connect failed is ejected: no worker sends it a second new connection.
    assert all(n <= 1 for n in res.connect_failures.values()), res.connect_failures


def test_disruptions_under_load_cost_at_most_one_percent(demo: Demo) -> None:
    c = demo.cluster
    run(wait_demo(demo, REPLICAS))

    async def skiff(*args: str) -> None:
        await asyncio.to_thread(c.skiff, *args, check=True)

    async def scale_down_up() -> None:
        await skiff("scale", "--replicas=3", "deployment/demo")
        await wait_demo(demo, 3)
        await skiff("scale", f"--replicas={REPLICAS}", "deployment/demo")
        await wait_demo(demo, REPLICAS)

    async def rolling_update() -> None:
        await skiff("set", "image", "deployment/demo", f"demo={OTHER_IMAGE}")
        await wait_demo(demo, REPLICAS, image=OTHER_IMAGE, timeout=90)

    killed: dict[str, Any] = {}

    async def kill_container() -> None:
        async with c.client() as api:
            pod = sorted(await demo_pods(api), key=lambda p: p["metadata"]["name"])[0]
            name, uid, node = pod["metadata"]["name"], pod["metadata"]["uid"], pod["spec"]["nodeName"]
            restarts = pod["status"]["containerStatuses"][0].get("restartCount", 0)
            run_json = c.state_dir / "workers" / node / "pods" / uid / "demo" / "run.json"
            pid = int(json.loads(run_json.read_text())["pid"])
            killed.update(pod=name, pid=pid, t=time.monotonic())
            os.kill(pid, signal.SIGKILL)

            async def restarted() -> bool:
                p = await api.get("Pod", NS, name)
                return p["status"]["containerStatuses"][0].get(
                    "restartCount", 0
                ) > restarts and model.pod_is_ready(p)

            await wait_until(restarted, f"{name} restarted and Ready", 30)
            killed["back_after_s"] = time.monotonic() - killed["t"]
        await wait_demo(demo, REPLICAS)

    results = {}
    for name, action in (
        ("scale_10_3_10", scale_down_up),
        ("rolling_update", rolling_update),
        ("kill_container", kill_container),
    ):
        results[name] = run(under_load(demo, action))
        report_load(name, results[name])
    figure("killed_container", killed)
    for name, res in results.items():
        check_load(name, res)


# ---------------------------------------------------------------- 4. a balancer worker killed


def test_killed_balancer_worker_is_restarted_while_others_serve(demo: Demo) -> None:
    run(wait_demo(demo, REPLICAS))
    sup = demo.lb_pid
    before_children = children(sup)
    assert len(before_children) == 2, before_children
    victim = before_children[0]
    restarts_before = scrape(demo)["skiff_lb_worker_restarts_total"]

    async def body() -> tuple[Stream, float, float, int, float]:
        stream = Stream(LB_ADDRESS, demo.node_port, 0.002, [client_address(i) for i in range(16, 24)])
        stream.start()
        try:
            await asyncio.sleep(0.5)  # load before the kill
            t_kill = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            await wait_until(
                lambda: asyncio.sleep(0, reaped(victim)), "the killed worker to be reaped", 5, 0.001
            )
            t_dead = time.monotonic()

            async def replaced() -> int:
                new = [p for p in children(sup) if p not in before_children]
                m = await ascrape(demo)
                if (
                    new
                    and m["skiff_lb_worker_restarts_total"] > restarts_before
                    and m["skiff_lb_workers"] == 2
                ):
                    return new[0]
                return 0

            new_pid = await wait_until(replaced, "a restarted worker", 15, 0.02)
            t_back = time.monotonic()
            await asyncio.sleep(0.5)  # load after the restart
        finally:
            await stream.stop()
        return stream, t_kill, t_dead, new_pid, t_back - t_kill

    stream, t_kill, t_dead, new_pid, back_s = run(body())
    fails = stream.failures()
    inflight = [s for s in fails if s.start < t_dead]
    after = [s for s in fails if s.start >= t_dead]
    figure("worker_kill_requests", len(stream.shots))
    figure("worker_kill_failed_inflight", len(inflight))
    figure("worker_kill_failed_after_exit", len(after))
    figure("worker_kill_exit_ms", (t_dead - t_kill) * 1000)
    figure("worker_restart_ready_s", back_s)
    figure("worker_new_pid", new_pid)
    if fails:
        figure(
            "worker_kill_failure_examples",
            [(round((s.start - t_kill) * 1000, 1), s.error) for s in fails[:5]],
        )
    assert not after, [s.error for s in after[:10]]
    assert len(inflight) <= 64, "more failures than connections that can be in flight"
    assert victim not in children(sup) and new_pid in children(sup)
    assert scrape(demo)["skiff_lb_worker_restarts_total"] == restarts_before + 1


# ---------------------------------------------------------------- 5. 10,000 idle connections


class Idle(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.data = b""
        self.got = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.data += data
        if b"X-Hostname" in self.data and self.data.count(b"</html>"):
            self.got.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.got.set()


def test_ten_thousand_idle_connections(demo: Demo) -> None:
    n, batch = 10_000, 500
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 2_000
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(want, soft)), hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= want, "the test process cannot open 10k sockets"
    run(wait_demo(demo, REPLICAS))
    sup = demo.lb_pid
    lb_pids = [sup, *children(sup)]
    limits = {p: open_files_limit(p) for p in lb_pids}
    figure("lb_open_files_limits", limits)
    workers = len(lb_pids) - 1
    # Each worker holds two descriptors (client and upstream leg) per connection it proxies.
    assert all(limits[p][0] > 2 * n / workers * 1.2 for p in lb_pids[1:]), (
        f"lb workers' RLIMIT_NOFILE {limits} too low for {n} connections: raise it in the launcher / lb"
    )
    rss_before = rss_kib(lb_pids)

    async def body() -> tuple[int, int, float, int]:
        loop = asyncio.get_running_loop()
        conns: list[Idle] = []
        t0 = time.monotonic()
        try:
            for b in range(0, n, batch):
                src = client_address(30 + (b // batch) % 8)
                made = await asyncio.gather(
                    *(
                        loop.create_connection(Idle, LB_ADDRESS, demo.node_port, local_addr=(src, 0))
                        for _ in range(batch)
                    )
                )
                conns.extend(p for _, p in made)
            opened_s = time.monotonic() - t0

            async def all_proxied() -> bool:
                return backend_metric(await ascrape(demo), "skiff_lb_connections_active") >= n

            await wait_until(all_proxied, f"{n} active connections in the balancer's metrics", 30, 0.2)
            rss = rss_kib(lb_pids)
            # Still open, and live end to end: a request on a sample of them is answered by a pod.
            sample = random.Random(5).sample(conns, 100)
            for p in sample:
                assert p.transport is not None
                p.transport.write(b"GET / HTTP/1.1\r\nHost: demo\r\n\r\n")
            await asyncio.wait_for(asyncio.gather(*(p.got.wait() for p in sample)), 10)
            answered = sum(1 for p in sample if not p.lost and b"X-Hostname" in p.data)
            lost = sum(1 for p in conns if p.lost)
            return rss, lost, opened_s, answered
        finally:
            for p in conns:
                if p.transport is not None:
                    p.transport.abort()

    rss, lost, opened_s, answered = run(body())
    figure("idle_conns", n)
    figure("idle_conns_open_s", opened_s)
    figure("lb_rss_before_mib", rss_before / 1024)
    figure("lb_rss_10k_mib", rss / 1024)
    figure("lb_rss_per_conn_kib", (rss - rss_before) / n)
    figure("idle_conns_lost", lost)
    figure("idle_sample_answered", answered)
    assert lost == 0
    assert answered == 100

    async def drained() -> bool:
        return backend_metric(await ascrape(demo), "skiff_lb_connections_active") == 0

    run(wait_until(drained, "the balancer to close the 10k connections", 20, 0.2))
