"""Scheduler throughput: 3 masters, 100 hollow nodes (one `python -m agents --hollow 100` process) and
bare pods (not a Deployment, so the figures measure the scheduler, not the ReplicaSet controller's
create rate), each created by 64 concurrent clients.

Two phases in one cluster:
1. flow (the headline): 100 hollow nodes Ready, then 3,000 pods created; `scheduler_binds_per_s`
   counts from the first to the last binding seen on a pod watch (a pod is bound when the watch first
   shows its spec.nodeName); `first_create_to_all_running_s` is the time from the first create until
   all 3,000 are Running (hollow nodes report Running and start nothing). While pods arrive at
   `create_pods_per_s`, binds cannot outpace the creates.
2. backlog (the scheduler's own ceiling): 3,000 more pods with nodeSelector pool=b are created while no
   node matches (all pending), then a second hollow agent brings 100 nodes labelled pool=b;
   `backlog_binds_per_s` is how fast the scheduler drains them (each of these binds also flips the
   PodScheduled=False condition left by the failed attempts: one more write per pod).

Addresses: masters 127.0.94.*, the hollow agents 127.0.95.1 and .2 (127.0.96.1: the unused balancer's).
Everything started here is torn down at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop

from bench.local import print_logs, ready_nodes, start_hollow, stop, up
from orchestrator import procs
from orchestrator.transport import ClientTLS

ROOT = Path(__file__).resolve().parents[1]
NODES = 100
PODS = 3000
CLIENTS = 64
NS = "default"
HOLLOW_ADDRESS = "127.0.95.1"
HOLLOW_ADDRESS_B = "127.0.95.2"
DEADLINE = 180.0  # seconds for the whole measured phase


def pod(name: str, app: str, selector: dict[str, str] | None) -> dict[str, Any]:
    p: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": app}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "c",
                    "image": "k8s.gcr.io/pause",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ],
        },
    }
    if selector:
        p["spec"]["nodeSelector"] = selector
    return p


class PodTimes:
    """A watch on pods of one app label: when each was first seen bound, and when all were Running."""

    def __init__(self, masters: list[str], token: str, tls: ClientTLS, app: str, total: int) -> None:
        self.masters, self.token, self.tls, self.app, self.total = masters, token, tls, app, total
        self.bound_at: dict[str, float] = {}
        self.running: set[str] = set()
        self.all_bound = asyncio.Event()
        self.all_running = asyncio.Event()
        self.synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PodTimes:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.synced.wait(), 15)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        from orchestrator.client import ApiClient

        # Watch through the second master: the leader serves the controllers, not the observer.
        async with ApiClient(self.masters[1:] + self.masters[:1], self.token, tls=self.tls) as w:
            async for ev in w.watch("Pod", NS, label_selector=f"app={self.app}"):
                if ev.type == "BOOKMARK":
                    self.synced.set()
                    continue
                if ev.obj is None or ev.type == "DELETED":
                    continue
                name = ev.obj["metadata"]["name"]
                now = time.monotonic()
                if ev.obj.get("spec", {}).get("nodeName") and name not in self.bound_at:
                    self.bound_at[name] = now
                    if len(self.bound_at) >= self.total:
                        self.all_bound.set()
                if ev.obj.get("status", {}).get("phase") == "Running":
                    self.running.add(name)
                    if len(self.running) >= self.total:
                        self.all_running.set()

    def binds_per_s(self) -> float:
        binds = sorted(self.bound_at.values())
        return (len(binds) - 1) / (binds[-1] - binds[0]) if len(binds) > 1 else float("nan")


async def create_pods(
    masters: list[str], token: str, tls: ClientTLS, app: str, n: int, selector: dict[str, str] | None = None
) -> tuple[float, int]:
    """Create `n` bare pods through CLIENTS concurrent clients; (seconds taken, errors)."""
    from orchestrator.client import ApiClient

    clients = [ApiClient(masters[i % 3 :] + masters[: i % 3], token, tls=tls) for i in range(CLIENTS)]
    names = iter(range(n))
    failed = 0

    async def creator(c: ApiClient) -> None:
        nonlocal failed
        for i in names:
            try:
                await c.create(pod(f"{app}-{i:05d}", app, selector))
            except Exception:  # noqa: BLE001 - counted and reported
                failed += 1

    t0 = time.monotonic()
    try:
        await asyncio.wait_for(asyncio.gather(*(creator(c) for c in clients)), DEADLINE)
    finally:
        for c in clients:
            await c.close()
    return time.monotonic() - t0, failed


async def wait_nodes(api: Any, n: int, selector: str = "") -> float:
    t0 = time.monotonic()
    while (ready := await ready_nodes(api, selector)) < n:
        if time.monotonic() - t0 > 60:
            raise RuntimeError(f"only {ready}/{n} hollow nodes ({selector or 'all'}) Ready after 60 s")
        await asyncio.sleep(0.1)
    return time.monotonic() - t0


async def measure(
    masters: list[str], token: str, tls: ClientTLS, start_hollow: Callable[[str, str], None]
) -> dict[str, float]:
    from orchestrator.client import ApiClient

    async with ApiClient(masters, token, tls=tls) as api:
        start_hollow("a", HOLLOW_ADDRESS)
        nodes_ready_s = await wait_nodes(api, NODES, "pool=a")

        async with PodTimes(masters, token, tls, "bench", PODS) as flow:
            t0 = time.monotonic()
            create_s, create_errors = await create_pods(masters, token, tls, "bench", PODS)
            await asyncio.wait_for(flow.all_running.wait(), DEADLINE)
            t_running = time.monotonic()

        async with PodTimes(masters, token, tls, "backlog", PODS) as backlog:
            _, backlog_errors = await create_pods(masters, token, tls, "backlog", PODS, {"pool": "b"})
            t_nodes = time.monotonic()
            start_hollow("b", HOLLOW_ADDRESS_B)
            await wait_nodes(api, NODES, "pool=b")
            await asyncio.wait_for(backlog.all_bound.wait(), DEADLINE)
            backlog_bound_s = max(backlog.bound_at.values()) - t_nodes

    return {
        "nodes": float(NODES),
        "pods": float(PODS),
        "hollow_nodes_ready_s": nodes_ready_s,
        "create_pods_per_s": PODS / create_s,
        "create_errors": float(create_errors + backlog_errors),
        "scheduler_binds_per_s": flow.binds_per_s(),
        "first_create_to_last_bind_s": max(flow.bound_at.values()) - t0,
        "first_create_to_all_running_s": t_running - t0,
        "backlog_binds_per_s": backlog.binds_per_s(),
        "backlog_agent_start_to_all_bound_s": backlog_bound_s,
    }


def run() -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="skiff-bench-scheduler-"))
    state = tmp / "cluster"
    hollows: list[subprocess.Popen[bytes]] = []
    try:
        conf = up(state, 94)

        def start(pool: str, address: str) -> None:
            extra = ("--labels", f"pool={pool}", "--cpu", "4", "--memory", "8Gi")
            hollows.append(start_hollow(conf, state, tmp, f"hollow-{pool}", address, NODES, *extra))

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
            tls = ClientTLS.from_file(conf["caFile"])
            figures = r.run(measure(conf["masters"], conf["token"], tls, start))
        print(
            f"scheduler: {PODS} bare pods on {NODES} hollow nodes: {figures['scheduler_binds_per_s']:.0f} binds/s, "
            f"all Running {figures['first_create_to_all_running_s']:.2f} s after the first create; "
            f"a backlog of {PODS} drained at {figures['backlog_binds_per_s']:.0f} binds/s",
            flush=True,
        )
        return figures
    except BaseException:
        print_logs(state, tmp)
        raise
    finally:
        stop(hollows)
        procs.down(state)


if __name__ == "__main__":
    for k, v in run().items():
        print(f"  {k:45} {v:12.2f}")
