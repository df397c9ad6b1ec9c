"""Pod start-up latency: 3 masters, 5 real workers (`skiff up`, no balancer) and 50 bare demo Pods.

Each pod is a bare Pod (not a Deployment, so the figure does not include the ReplicaSet controller) of the
demo image, placed by the scheduler. Pods are written one every 1/RATE s (2/s: paced, so each latency is one
pod's path through API -> scheduler -> agent -> shim -> server, not a queue behind 49 others; every pod
starts two Python processes (shim, server), so at 10/s a 2-core machine is CPU-bound and p50 grows to ~2 s). For each pod
the latency runs from just before its create call until it is Running (seen on a pod watch) AND its
endpoint (status.portMappings hostIP:hostPort) answers an HTTP GET with a page naming the pod.

Figures: p50/p99/max of write -> Running+serving, and p50/p99 of write -> Running (watch) alone.
Addresses: masters 127.0.84.*, workers 127.0.85.*, balancer address 127.0.86.1 (unused).
Everything started here is torn down at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

from bench.local import skiff
from orchestrator import procs
from orchestrator.transport import ClientTLS

ROOT = Path(__file__).resolve().parents[1]
PODS = 50
WORKERS = 5
RATE = 2.0  # pods written per second
NS = "default"
LABEL = "bench-pods"
DEADLINE = 120.0  # seconds for the whole measured phase
POLL = 0.02  # seconds between HTTP attempts on one pod (50 pollers at 5 ms starve a 2-core machine)


def pod(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"start-{i:03d}", "namespace": NS, "labels": {"app": LABEL}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "web",
                    "image": "jweissig/alpine-k8s-pod-lb-demo",
                    "ports": [{"containerPort": 5005}],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ],
        },
    }


async def serves(host: str, port: int, name: str) -> bool:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 2.0)
        return data.startswith(b"HTTP/1.1 200") and f"Hello from {name}".encode() in data
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, round(q / 100 * len(s) + 0.5) - 1))]


async def measure(masters: list[str], token: str, tls: ClientTLS) -> dict[str, float]:
    from orchestrator.client import ApiClient

    def node_ready(node: dict[str, Any]) -> bool:
        conds = node.get("status", {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)

    async with ApiClient(masters, token, tls=tls) as api:
        t_wait = time.monotonic()
        while sum(node_ready(n) for n in (await api.list("Node"))[0]) < WORKERS:
            if time.monotonic() - t_wait > 60:
                raise RuntimeError(f"fewer than {WORKERS} nodes Ready after 60 s")
            await asyncio.sleep(0.1)

        written: dict[str, float] = {}
        running_at: dict[str, float] = {}
        serving_at: dict[str, float] = {}
        pollers: dict[str, asyncio.Task[None]] = {}
        done = asyncio.Event()
        synced = asyncio.Event()

        async def poll(name: str, host: str, port: int) -> None:
            while not await serves(host, port, name):
                await asyncio.sleep(POLL)
            serving_at[name] = time.monotonic()
            if len(serving_at) >= PODS:
                done.set()

        async def watch() -> None:
            async with ApiClient(masters[1:] + masters[:1], token, tls=tls) as w:
                async for ev in w.watch("Pod", NS, label_selector=f"app={LABEL}"):
                    if ev.type == "BOOKMARK":
                        synced.set()
                        continue
                    if ev.obj is None or ev.type == "DELETED":
                        continue
                    name = ev.obj["metadata"]["name"]
                    status = ev.obj.get("status", {})
                    if status.get("phase") != "Running" or name in pollers:
                        continue
                    running_at[name] = time.monotonic()
                    m = (status.get("portMappings") or [{}])[0]
                    if m.get("hostPort"):
                        pollers[name] = asyncio.create_task(poll(name, m["hostIP"], int(m["hostPort"])))

        watcher = asyncio.create_task(watch())
        try:
            await asyncio.wait_for(synced.wait(), 15)
            t0 = time.monotonic()
            for i in range(PODS):
                await asyncio.sleep(max(0.0, t0 + i / RATE - time.monotonic()))
                p = pod(i)
                written[p["metadata"]["name"]] = time.monotonic()
                await api.create(p)
            await asyncio.wait_for(done.wait(), DEADLINE)
        finally:
            watcher.cancel()
            for t in pollers.values():
                t.cancel()
            await asyncio.gather(watcher, *pollers.values(), return_exceptions=True)

    serving = [(serving_at[n] - written[n]) * 1000 for n in written]
    running = [(running_at[n] - written[n]) * 1000 for n in written]
    return {
        "pods": float(PODS),
        "workers": float(WORKERS),
        "write_rate_per_s": RATE,
        "pod_start_p50_ms": statistics.median(serving),
        "pod_start_p99_ms": pct(serving, 99),
        "pod_start_max_ms": max(serving),
        "pod_running_p50_ms": statistics.median(running),
        "pod_running_p99_ms": pct(running, 99),
    }


def run() -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="skiff-bench-pods-"))
    state, config = tmp / "cluster", tmp / "cluster" / "config.json"
    try:
        up = skiff(
            "up", "--state-dir", str(state), "--config", str(config), "--kubeconfig", str(state / "kubeconfig"),
            "--masters", "3",
            "--workers", str(WORKERS), "--no-lb", "--master-address-base", "127.0.84",
            "--worker-address-base", "127.0.85", "--lb-address", "127.0.86.1", "--http-port", "0",
            "--log-level", "WARNING",
        )  # fmt: skip
        if up.returncode != 0:
            raise RuntimeError(f"skiff up failed ({up.returncode}):\n{up.stdout}{up.stderr}")
        conf = json.loads(config.read_text())
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
            figures = r.run(measure(conf["masters"], conf["token"], ClientTLS.from_file(conf["caFile"])))
        print(
            f"pods: {PODS} bare demo pods on {WORKERS} workers, written at {RATE:.0f}/s: write -> Running and "
            f"serving p50 {figures['pod_start_p50_ms']:.0f} ms, p99 {figures['pod_start_p99_ms']:.0f} ms",
            flush=True,
        )
        return figures
    except BaseException:
        for name in sorted((state / "logs").glob("*.log")) if (state / "logs").exists() else []:
            print(f"---- {name.name}\n" + "\n".join(name.read_text(errors="replace").splitlines()[-20:]))
        raise
    finally:
        procs.down(state)


if __name__ == "__main__":
    for k, v in run().items():
        print(f"  {k:45} {v:12.2f}")
