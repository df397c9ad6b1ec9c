"""Scale: 3 masters, 1,000 hollow nodes (four `python -m agents --hollow 250` processes) and one
Deployment scaled to 30,000 pods, in one run of at most 10 minutes.

What it reports, in the order it measures:
- `nodes_ready_s`: from starting the hollow agents until all 1,000 nodes are Ready;
- `idle_master_cores`: the three masters' CPU (user + system, from /proc) over 10 s with the nodes
  heartbeating and nothing else to do, in cores;
- the scale-up: a Deployment created with 1 replica and scaled to 30,000 (as `skiff scale` does);
  `available_s` until status.availableReplicas reaches 30,000, `replicas_per_s` over that time, and
  the available count every 10 s (`available_every_10s`);
- a separate client (its own process, its own connections) that every 0.25 s Gets one Node and Lists
  pods with a selector that matches nothing, both linearizable: p50/p99/max of each, and failures. It
  asks a follower first (`get_*`, `list_*`); a second one asks only the Raft leader, where the
  controllers run (`leader_get_*`, `leader_list_*`);
- `skiff cluster status` once during the scale-up: whether every master answered;
- `full_list_s`: one List of every pod, paged as `skiff get` pages (500 a page), and its page count;
- the Raft term before the scale-up and after it (`elections` = the difference);
- each master's RSS and the size of each master's data directory (journal and snapshot);
- `restart_caught_up_s`: a follower killed (SIGKILL) and started again, until its applied index
  reaches the leader's commit index at the time it first answered; on the way, when `skiff start`
  returned (`restart_started_s`) and when the master first answered (`restart_answering_s`), and
  the CPU seconds each process used until it caught up (`restart_cpu_s`) and the last status answers
  it saw (`restart_status_polls`: asked at, answered at, applied index).

The hollow agents run at nice 10 (see HOLLOW_NICE). Addresses: masters 127.0.91.*, the hollow agents 127.0.92.1-4 (127.0.93.1: the unused balancer's).
Everything started here is torn down at the end, also on failure or Ctrl-C. To find out what a run
did: SKIFF_BENCH_KEEP=1 keeps its state and logs, SKIFF_BENCH_LOG_LEVEL=INFO has the masters and the
hollow agents log at INFO (the controllers then log their queues every 30 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop

from bench.local import print_logs, ready_nodes, skiff, start_hollow, stop, up
from orchestrator import procs
from orchestrator.transport import ClientTLS

ROOT = Path(__file__).resolve().parents[1]
AGENTS = int(os.environ.get("SKIFF_BENCH_SCALE_AGENTS", "4"))
NODES_PER_AGENT = 250
NODES = AGENTS * NODES_PER_AGENT
REPLICAS = int(os.environ.get("SKIFF_BENCH_SCALE_REPLICAS", "30000"))
SCALE_DEADLINE = 240.0  # seconds the scale-up may take before the run reports what it reached
PROBE_EVERY = 0.25
IDLE_SAMPLE = 10.0
# Kubemark runs its hollow nodes on machines of their own; here they share the masters' two cores, so
# they run at a lower priority, and the masters' figures are the masters' and not the load's.
HOLLOW_NICE = 10


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "scale", "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "scale"}},
            "template": {
                "metadata": {"labels": {"app": "scale"}},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [
                        {
                            "name": "pause",
                            "image": "k8s.gcr.io/pause",
                            "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}},
                        }
                    ],
                },
            },
        },
    }


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def quantiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
    s = sorted(samples)
    return {
        "p50_ms": 1000 * statistics.median(s),
        "p99_ms": 1000 * s[min(len(s) - 1, int(0.99 * len(s)))],
        "max_ms": 1000 * s[-1],
    }


# ---------------------------------------------------------------- the separate client (its own process)

PROBE = """
import asyncio, json, sys, time
import uvloop
from orchestrator.client import ApiClient
from orchestrator.transport import ClientTLS

async def main(masters, token, ca, node, every, out):
    get, lst, failures = [], [], []
    async with ApiClient(masters, token, tls=ClientTLS.from_file(ca)) as api:
        stop = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().add_reader(sys.stdin.fileno(), lambda: stop.done() or stop.set_result(None))
        while not stop.done():
            for what, call, into in (
                ("get", lambda: api.get("Node", "", node), get),
                ("list", lambda: api.list("Pod", "default", label_selector="app=nothing-matches"), lst),
            ):
                t0 = time.monotonic()
                try:
                    await call()
                except Exception as e:
                    failures.append(f"{what}: {e}")
                into.append(time.monotonic() - t0)
            await asyncio.wait([stop], timeout=every)
    with open(out, "w") as f:
        json.dump({"get": get, "list": lst, "failures": failures}, f)

uvloop.run(main(sys.argv[1].split(","), sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), sys.argv[6]))
"""


class Probe:
    """The separate client: started before the scale-up, stopped (stdin closed) after it."""

    def __init__(self, conf: dict[str, Any], masters: list[str], node: str, out: Path) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PROBE, ",".join(masters), conf["token"], conf["caFile"],
             node, str(PROBE_EVERY), str(out)],
            cwd=ROOT, stdin=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip

    def stop(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        return json.loads(self.out.read_text())

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


# ---------------------------------------------------------------- the run


async def raft_view(api: Any, masters: list[str]) -> list[Any]:
    views = []
    for address in masters:
        try:
            views.append(await api.status(address, timeout=5.0))
        except Exception:  # noqa: BLE001 - an unreachable master is reported as None
            views.append(None)
    return views


async def idle_cores(pids: list[int]) -> float:
    before = sum(cpu_seconds(p) for p in pids)
    t0 = time.monotonic()
    await asyncio.sleep(IDLE_SAMPLE)
    return (sum(cpu_seconds(p) for p in pids) - before) / (time.monotonic() - t0)


async def measure(
    conf: dict[str, Any],
    state: Path,
    tmp: Path,
    start_hollows: Callable[[], list[int]],
    master_recs: list[dict[str, Any]],
) -> dict[str, Any]:
    from orchestrator.client import ApiClient

    masters = conf["masters"]
    tls = ClientTLS.from_file(conf["caFile"])
    figures: dict[str, Any] = {"nodes": NODES, "replicas": REPLICAS}
    async with ApiClient(masters, conf["token"], tls=tls, call_timeout=30.0) as api:
        t0 = time.monotonic()
        hollow_pids = start_hollows()
        while (ready := await ready_nodes(api)) < NODES:
            if time.monotonic() - t0 > 90:
                raise RuntimeError(f"only {ready}/{NODES} hollow nodes Ready after 90 s")
            await asyncio.sleep(0.2)
        figures["nodes_ready_s"] = time.monotonic() - t0
        print(
            f"scale: {NODES} nodes Ready in {figures['nodes_ready_s']:.1f} s; idle for {IDLE_SAMPLE:.0f} s",
            flush=True,
        )

        await asyncio.sleep(5)  # registration writes settle
        figures["idle_master_cores"] = await idle_cores([r["pid"] for r in master_recs])
        before = await raft_view(api, masters)
        figures["raft_term_before"] = max(v.term for v in before if v is not None)
        print(
            f"scale: idle masters {figures['idle_master_cores']:.2f} cores; scaling to {REPLICAS}", flush=True
        )

        leader = next((i for i, v in enumerate(before) if v is not None and v.role == "leader"), 0)
        followers = [m for i, m in enumerate(masters) if i != leader]
        probe = Probe(conf, followers + [masters[leader]], "hollow-0-0", tmp / "probe.json")
        leader_probe = Probe(conf, [masters[leader]], "hollow-0-1", tmp / "probe-leader.json")
        try:
            await api.create(deployment())
            t0 = time.monotonic()
            await api.patch("Deployment", "default", "scale", {"spec": {"replicas": REPLICAS}})
            samples: list[int] = []
            status_checked = False
            available = 0
            next_sample = t0 + 10
            while available < REPLICAS and time.monotonic() - t0 < SCALE_DEADLINE:
                await asyncio.sleep(0.5)
                with contextlib.suppress(Exception):
                    d = await api.get("Deployment", "default", "scale", resource_version="0")
                    available = int((d.get("status") or {}).get("availableReplicas") or 0)
                if time.monotonic() >= next_sample:
                    samples.append(available)
                    next_sample += 10
                if not status_checked and available >= REPLICAS // 2:
                    status_checked = True
                    s0 = time.monotonic()
                    out = skiff("cluster", "status", "--config", str(state / "config.json"), timeout=60)
                    figures["cluster_status_s"] = time.monotonic() - s0
                    figures["cluster_status_unreachable"] = out.stdout.count("unreachable")
                    figures["cluster_status_rc"] = out.returncode
            elapsed = time.monotonic() - t0
            figures["available"] = available
            figures["available_s"] = elapsed if available >= REPLICAS else float("nan")
            figures["replicas_per_s"] = available / elapsed
            figures["available_every_10s"] = samples
        finally:
            nothing: dict[str, Any] = {"get": [], "list": [], "failures": []}
            probed = probe.stop() if probe.proc.poll() is None else nothing
            probed_leader = leader_probe.stop() if leader_probe.proc.poll() is None else nothing
            probe.kill()
            leader_probe.kill()
        for prefix, found in (("", probed), ("leader_", probed_leader)):
            for what in ("get", "list"):
                for k, v in quantiles(found[what]).items():
                    figures[f"{prefix}{what}_{k}"] = v
                figures[f"{prefix}{what}_calls"] = len(found[what])
            figures[f"{prefix}probe_failures"] = len(found["failures"])
            figures[f"{prefix}probe_failure_examples"] = sorted(set(found["failures"]))[:3]

        t0 = time.monotonic()
        pods, pages = await list_paged(api)
        figures["full_list_s"] = time.monotonic() - t0
        figures["full_list_items"] = len(pods)
        figures["full_list_pages"] = pages
        figures["pods_not_ready"] = not_ready_summary(pods)

        after = await raft_view(api, masters)
        figures["raft_term_after"] = max(v.term for v in after if v is not None)
        figures["elections"] = figures["raft_term_after"] - figures["raft_term_before"]
        figures["master_rss_mb"] = [round(rss_mb(r["pid"])) for r in master_recs]
        figures["master_data_mb"] = [round(dir_mb(Path(r["dataDir"])), 1) for r in master_recs]

        figures.update(await restart_follower(api, masters, after, master_recs, state, hollow_pids))
    return figures


def not_ready_summary(pods: list[Any]) -> dict[str, int]:
    """The pods not Ready, counted by where they are stuck: unbound, by phase, or terminating."""
    counts: dict[str, int] = {}
    for p in pods:
        status = p.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        )
        if ready:
            continue
        if p["metadata"].get("deletionTimestamp"):
            where = "terminating"
        elif not (p.get("spec") or {}).get("nodeName"):
            where = "unbound"
        else:
            where = f"bound, phase {status.get('phase') or 'none'}"
        counts[where] = counts.get(where, 0) + 1
    return counts


async def list_paged(api: Any) -> tuple[list[Any], int]:
    """Every pod, 500 a page when the client pages (one List otherwise)."""
    if not hasattr(api, "list_pages"):
        items, _ = await api.list("Pod", "default")
        return items, 1
    items, pages = [], 0
    async for page in api.list_pages("Pod", "default", limit=500):
        items.extend(page)
        pages += 1
    return items, pages


async def restart_follower(
    api: Any, masters: list[str], views: list[Any], recs: list[dict[str, Any]], state: Path, others: list[int]
) -> dict[str, Any]:
    """A follower killed and started again: when `skiff start` returned, when the master first
    answered (and how far it had applied), when it caught up; and the CPU seconds each master and
    each of `others` (the hollow agents) used from the start until it caught up."""
    i = next(i for i, v in enumerate(views) if v is not None and v.role != "leader")
    rec = recs[i]
    os.killpg(rec["pgid"], signal.SIGKILL)
    while procs.alive(rec["pid"]):  # not our child (skiff up started it): poll until it is gone
        await asyncio.sleep(0.05)
    peers = [r["pid"] for j, r in enumerate(recs) if j != i]
    cpu0 = {pid: cpu_seconds(pid) for pid in [*peers, *others]}
    t0 = time.monotonic()
    out = skiff("start", rec["name"], "--state-dir", str(state))
    if out.returncode != 0:
        raise RuntimeError(f"skiff start {rec['name']} failed: {out.stdout}{out.stderr}")
    found: dict[str, Any] = {"restart_started_s": time.monotonic() - t0}
    rec.update(json.loads((state / "pids.json").read_text())["processes"][i])
    # The target is the leader's commit index when the restarted master first answers: under a
    # steady write load a follower is always a few entries behind the leader's latest, so comparing
    # against a fresh commit index each time measured when the writes paused, not the catch-up.
    target = 0
    caught_up = float("nan")
    polls: list[tuple[float, float, int]] = []  # (asked at, answered at, applied index) since the start
    while time.monotonic() - t0 < 120:
        with contextlib.suppress(Exception):
            asked = time.monotonic() - t0
            mine = await api.status(masters[i], timeout=2.0)
            polls.append((round(asked, 2), round(time.monotonic() - t0, 2), mine.applied_index))
            if not target:
                found["restart_answering_s"] = time.monotonic() - t0
                found["restart_applied_when_answering"] = mine.applied_index
                leader = next(
                    (v for v in await raft_view(api, masters) if v is not None and v.role == "leader"), None
                )
                target = leader.commit_index if leader is not None else 0
                found["restart_target_index"] = target
            if target and mine.applied_index >= target:
                caught_up = time.monotonic() - t0
                break
        await asyncio.sleep(0.1)
    found["restart_caught_up_s"] = caught_up
    found["restart_status_polls"] = polls[-6:]
    found["restart_cpu_s"] = {
        "restarted": round(cpu_seconds(rec["pid"]), 2),
        "other_masters": [round(cpu_seconds(p) - cpu0[p], 2) for p in peers],
        "hollow_agents": round(sum(cpu_seconds(p) - cpu0[p] for p in others), 2),
    }
    return found


def run() -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="skiff-bench-scale-"))
    state = tmp / "cluster"
    hollows: list[subprocess.Popen[bytes]] = []
    try:
        conf = up(state, 91)
        master_recs = [
            r for r in json.loads((state / "pids.json").read_text())["processes"] if r["role"] == "master"
        ]

        def start_hollows() -> list[int]:
            for a in range(AGENTS):
                extra = ("--cpu", "32", "--memory", "64Gi")
                nice = ("nice", "-n", str(HOLLOW_NICE))
                hollows.append(
                    start_hollow(
                        conf,
                        state,
                        tmp,
                        f"hollow-{a}",
                        f"127.0.92.{a + 1}",
                        NODES_PER_AGENT,
                        *extra,
                        prefix=nice,
                    )
                )
            return [h.pid for h in hollows]

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
            figures = r.run(measure(conf, state, tmp, start_hollows, master_recs))
        logs = [
            p.read_text(errors="replace")
            for p in (state / "logs").glob("*.log")
            if not p.name.startswith("audit")
        ]
        figures["log_too_many_operations"] = sum(t.count("TOO_MANY_OPERATIONS") for t in logs)
        figures["log_tracebacks"] = sum(t.count("Traceback") for t in logs)
        figures["log_truncating_applied"] = sum(t.count("truncating already-applied") for t in logs)
        print(
            f"scale: {NODES} hollow nodes Ready in {figures['nodes_ready_s']:.1f} s; "
            f"{figures['available']} of {REPLICAS} available after {figures['available_s']:.0f} s; "
            f"Get p99 {figures['get_p99_ms']:.0f} ms (the leader's {figures['leader_get_p99_ms']:.0f} ms); "
            f"elections {figures['elections']}",
            flush=True,
        )
        return figures
    except BaseException:
        print_logs(state, tmp)
        raise
    finally:
        stop(hollows)
        if os.environ.get("SKIFF_BENCH_KEEP"):
            print(f"kept the cluster's state and logs in {tmp}")
        procs.down(state)


if __name__ == "__main__":
    for k, v in run().items():
        print(f"  {k:45} {v:12.2f}" if isinstance(v, float) else f"  {k:45} {v}")
