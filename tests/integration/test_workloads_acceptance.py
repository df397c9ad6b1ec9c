"""Issue 4 acceptance: workloads on a real `skiff up` cluster (3 masters, 5 workers of different sizes).

Everything a user does goes through the `skiff` CLI; an ApiClient watch observes every pod event so the
invariants (no overshoot, enough Ready pods, graceful deletion) are checked at every change, not only at
the end. One cluster serves the whole module; the autouse `clean_slate` fixture restarts any process a
test killed and deletes every workload before each test, so tests do not depend on each other.

Addresses: masters 127.0.91.*, workers 127.0.92.*, (unused) balancer 127.0.93.1.
Measured figures are printed (run with -s to see them) as `FIGURE name=value`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import errors, model
from orchestrator.client import ApiClient
from orchestrator.procs import alive
from tests.integration.cluster import REPO, Cluster, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

Obj = dict[str, Any]
NS = "default"
MASTER_BASE, WORKER_BASE, LB_ADDRESS = "127.0.91", "127.0.92", "127.0.93.1"
# Worker i gets the i-th size: 1Gi, 2Gi, 3Gi, 4Gi, 6Gi of memory (16Gi in all).
WORKER_SIZES = "1:1Gi,2:2Gi,2:3Gi,4:4Gi,4:6Gi"
WORKERS = 5
DEMO_IMAGE = "jweissig/alpine-k8s-pod-lb-demo"
OTHER_IMAGE = "nginx"  # the catalog's second name for the same server program (agents/images.json)
NODE_GRACE = 3.0  # skiff up's default --node-grace


def figure(name: str, value: float | int) -> None:
    print(f"FIGURE {name}={value:.3f}" if isinstance(value, float) else f"FIGURE {name}={value}", flush=True)


# ---------------------------------------------------------------- the cluster


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(
        tmp_path_factory.mktemp("workloads"),
        masters=3,
        workers=WORKERS,
        lb=False,
        up_args=["--worker-sizes", WORKER_SIZES],
    )
    c.master_base, c.worker_base, c.lb_address = MASTER_BASE, WORKER_BASE, LB_ADDRESS
    failed_before = request.session.testsfailed
    try:
        c.up()
        yield c
    finally:
        if request.session.testsfailed > failed_before or c.up_result is None or c.up_result.returncode:
            print(f"\n---- logs of the cluster in {c.state_dir} ----\n{c.log_tails(60)}", file=sys.stderr)
        c.down()


async def skiff(c: Cluster, *args: str, check: bool = True, timeout: float = 60.0) -> tuple[int, str]:
    """`skiff ARGS` as a user runs it, without blocking the event loop (watches keep running)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKIFF_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "orchestrator.cli",
        "--config",
        str(c.config_path),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=REPO,
        env=env,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"skiff {' '.join(args)} did not finish within {timeout}s") from None
    text = out.decode(errors="replace")
    if check and proc.returncode != 0:
        raise AssertionError(f"skiff {' '.join(args)} failed ({proc.returncode}):\n{text}")
    return proc.returncode or 0, text


def live(pods: dict[str, Obj]) -> list[Obj]:
    """Pods not being deleted (no deletionTimestamp)."""
    return [p for p in pods.values() if not model.pod_is_terminating(p)]


def running(pods: dict[str, Obj]) -> list[Obj]:
    return [p for p in live(pods) if p.get("status", {}).get("phase") == "Running"]


def ready(pods: dict[str, Obj]) -> list[Obj]:
    return [p for p in live(pods) if model.pod_is_ready(p)]


def node_of(p: Obj) -> str:
    return p.get("spec", {}).get("nodeName") or ""


def node_ready(node: Obj) -> bool:
    for cond in node.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


class PodWatch:
    """A watch on pods (one label selector) keeping a cache and checking `check(pods)` at every event.

    `check` returns an error string (or None); the first error is kept and the test fails on it.
    `until(cond)` waits for a state in which `cond(pods)` holds and returns the time it first held.
    """

    def __init__(
        self, api: ApiClient, selector: str, check: Callable[[dict[str, Obj]], str | None] | None = None
    ) -> None:
        self.api, self.selector, self.check = api, selector, check
        self.pods: dict[str, Obj] = {}
        self.log: list[tuple[float, str, Obj]] = []  # (monotonic time, event type, object)
        self.violation: str | None = None
        self.synced = asyncio.Event()
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PodWatch:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.synced.wait(), 15)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        async for ev in self.api.watch("Pod", NS, label_selector=self.selector):
            t = time.monotonic()
            if ev.type == "BOOKMARK":
                self.synced.set()
                continue
            if ev.obj is None:
                continue
            name = ev.obj["metadata"]["name"]
            if ev.type == "DELETED":
                self.pods.pop(name, None)
            else:
                self.pods[name] = ev.obj
            self.log.append((t, ev.type, ev.obj))
            if self.check is not None and self.violation is None and self.synced.is_set():
                self.violation = self.check(self.pods)
            async with self._changed:
                self._changed.notify_all()

    async def until(self, cond: Callable[[dict[str, Obj]], Any], what: str, timeout: float) -> float:
        async def wait() -> float:
            async with self._changed:
                while not cond(self.pods):
                    await self._changed.wait()
                return self.log[-1][0] if self.log else time.monotonic()

        if cond(self.pods):  # already holds: it has held since the last event at the latest
            return self.log[-1][0] if self.log else time.monotonic()
        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            summary = {
                n: (node_of(p), p.get("status", {}).get("phase"), model.pod_is_terminating(p))
                for n, p in self.pods.items()
            }
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; pods: {summary}") from None

    def assert_no_violation(self) -> None:
        assert self.violation is None, self.violation


@contextlib.asynccontextmanager
async def client(c: Cluster, masters: list[str] | None = None) -> AsyncIterator[ApiClient]:
    api = ApiClient(masters or c.master_addresses, c.token("admin"), tls=c.tls())
    try:
        yield api
    finally:
        await api.close()


async def master_roles(c: Cluster, api: ApiClient) -> dict[str, tuple[str, str]]:
    """name -> (role, api address) for every master that answers."""
    roles = {}
    for addr in c.master_addresses:
        with contextlib.suppress(errors.SkiffError):
            st = await api.status(addr, timeout=1.0)
            roles[st.name] = (st.role, addr)
    return roles


def run_info(c: Cluster, pod: Obj) -> dict[str, Any]:
    """The agent's run.json of the pod's first container (pid, pgid, shimPid)."""
    rec = c.pids[node_of(pod)]
    cname = pod["spec"]["containers"][0]["name"]
    path = Path(rec["stateDir"]) / "pods" / pod["metadata"]["uid"] / cname / "run.json"
    return json.loads(path.read_text())


def worker_groups(rec: dict[str, Any]) -> list[int]:
    """A worker machine's process groups: the agent's, and its containers' and shims' (from run.json)."""
    groups = [int(rec["pgid"])]
    for run in Path(rec["stateDir"]).glob("pods/*/*/run.json"):
        info = json.loads(run.read_text())
        groups += [int(info[k]) for k in ("pgid", "shimPid") if info.get(k)]
    return groups


def kill_groups(pgids: list[int]) -> None:
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


# ---------------------------------------------------------------- a clean slate before every test


@pytest.fixture(autouse=True)
async def clean_slate(cluster: Cluster) -> None:
    """Every recorded process running, every master healthy, every node Ready, no workload left."""
    for name, rec in cluster.pids.items():
        if not alive(int(rec["pid"])):
            await skiff(cluster, "start", name, "--state-dir", str(cluster.state_dir))
    async with client(cluster) as api:

        async def masters_up() -> bool:
            roles = await master_roles(cluster, api)
            return len(roles) == 3 and any(r == "leader" for r, _ in roles.values())

        await wait_until(masters_up, "3 masters answering, one leader", 30)

        async def nodes_ready() -> bool:
            nodes, _ = await api.list("Node")
            return sum(node_ready(n) for n in nodes) == WORKERS

        await wait_until(nodes_ready, f"{WORKERS} Ready nodes", 30)
        for kind in ("Deployment", "ReplicaSet", "Pod"):
            items, _ = await api.list(kind, NS)
            for obj in items:
                with contextlib.suppress(errors.NotFound):
                    await api.delete(kind, NS, obj["metadata"]["name"])

        left: list[str] = []

        async def no_pods() -> bool:
            pods, _ = await api.list("Pod", NS)
            # What is left, for the failure message: name, node, phase, and whether it is terminating.
            left[:] = [
                f"{p['metadata']['name']}@{p['spec'].get('nodeName') or '-'}:{(p.get('status') or {}).get('phase')}"
                f"{'(terminating)' if p['metadata'].get('deletionTimestamp') else ''}"
                for p in pods
            ]
            return not pods

        try:
            await wait_until(no_pods, "no pods left from an earlier test", 30)
        except AssertionError as e:
            raise AssertionError(f"{e}; left: {left}") from None


# ---------------------------------------------------------------- the seed's flow


async def test_run_scale_to_10_spread_and_graceful_scale_down(cluster: Cluster) -> None:
    async with client(cluster) as api, PodWatch(api, "app=demo") as w:
        await skiff(cluster, "run", "demo", f"--image={DEMO_IMAGE}", "--port=5005")
        await w.until(lambda ps: len(running(ps)) == 1 and len(ps) == 1, "one demo pod Running", 20)

        t0 = time.monotonic()
        await skiff(cluster, "scale", "--replicas=10", "deployment/demo")
        t_cli = time.monotonic() - t0
        t_all = await w.until(lambda ps: len(running(ps)) == 10, "10 demo pods Running", 30)
        scale_up = t_all - t0
        figure("scale_up_1_to_10_running_s", scale_up)
        t_ready = await w.until(lambda ps: len(ready(ps)) == 10, "10 demo pods Ready", 30)
        figure("scale_up_1_to_10_ready_s", t_ready - t0)
        figure("scale_cli_s", t_cli)
        per_node = Counter(node_of(p) for p in running(w.pods))
        print(f"spread: {dict(sorted(per_node.items()))}")
        assert max(per_node.values()) <= 3, f"more than 3 demo pods on one worker: {dict(per_node)}"

        # Scale back to 3: seven pods get a deletionTimestamp, their containers get SIGTERM and exit,
        # then the objects disappear.
        before = set(w.pods)
        mark = len(w.log)
        t1 = time.monotonic()
        await skiff(cluster, "scale", "--replicas=3", "deployment/demo")
        await w.until(lambda ps: len(ps) == 3 and len(running(ps)) == 3, "exactly 3 demo pods left", 30)
        figure("scale_down_10_to_3_s", time.monotonic() - t1)
        events = w.log[mark:]
        gone = {o["metadata"]["name"] for _, t, o in events if t == "DELETED"}
        assert gone == before - set(w.pods) and len(gone) == 7, f"expected 7 deletions, saw {sorted(gone)}"
        for name in gone:
            seq = [(t, o) for _, t, o in events if o["metadata"]["name"] == name]
            marked = [i for i, (t, o) in enumerate(seq) if t != "DELETED" and model.pod_is_terminating(o)]
            deleted = [i for i, (t, _) in enumerate(seq) if t == "DELETED"]
            assert marked and deleted and marked[0] < deleted[0], (
                f"pod {name} vanished without first getting a deletionTimestamp: {[t for t, _ in seq]}"
            )
        # The agents' own record: SIGTERM sent (grace > 0), the container exited by itself with code 0.
        logs = "".join(cluster.log(f"worker-{i}") for i in range(1, WORKERS + 1))
        for name in gone:
            stop = re.search(rf"stopping container pod={NS}/{name} container=demo grace=(\S+) why=", logs)
            exit_ = re.search(rf"container exited pod={NS}/{name} container=demo code=(-?\d+) ", logs)
            assert stop and float(stop.group(1)) > 0, f"no graceful stop (SIGTERM) logged for {name}"
            assert exit_ and exit_.group(1) == "0", (
                f"container of {name} did not exit cleanly on SIGTERM: {exit_ and exit_.group(0)}"
            )
        assert scale_up <= 3.0, f"10 pods Running took {scale_up:.2f}s after `skiff scale` (want <= 3 s)"


# ---------------------------------------------------------------- self-healing of pods and containers


async def test_deleted_pod_is_replaced_and_crashed_container_restarted(cluster: Cluster) -> None:
    async with client(cluster) as api, PodWatch(api, "app=heal") as w:
        await skiff(cluster, "run", "heal", f"--image={DEMO_IMAGE}", "--port=5005", "--replicas=3")
        await w.until(lambda ps: len(ready(ps)) == 3, "3 heal pods Ready", 20)

        victim = sorted(w.pods)[0]
        await skiff(cluster, "delete", "pod", victim)
        await w.until(
            lambda ps: victim not in ps and len(ready(ps)) == 3 and len(ps) == 3,
            f"{victim} replaced by a new Ready pod",
            20,
        )

        pod = w.pods[sorted(w.pods)[0]]
        name = pod["metadata"]["name"]
        info = run_info(cluster, pod)
        os.kill(int(info["pid"]), signal.SIGKILL)  # the container's main process crashes

        def restarted(ps: dict[str, Obj]) -> bool:
            p = ps.get(name)
            statuses = (p or {}).get("status", {}).get("containerStatuses") or [{}]
            return p is not None and statuses[0].get("restartCount", 0) >= 1 and model.pod_is_ready(p)

        await w.until(restarted, f"the crashed container of {name} restarted in place and Ready", 20)
        last = w.pods[name]["status"]["containerStatuses"][0]["lastState"]
        assert "terminated" in last, f"lastState should record the crash: {last}"
        assert run_info(cluster, w.pods[name])["pid"] != info["pid"]
        assert len(ready(w.pods)) == 3


# ---------------------------------------------------------------- a whole worker dies


async def test_killed_worker_goes_notready_and_its_pods_are_replaced(cluster: Cluster) -> None:
    replicas = 10
    async with client(cluster) as api, PodWatch(api, "app=wk") as w:
        await skiff(cluster, "run", "wk", f"--image={DEMO_IMAGE}", "--port=5005", f"--replicas={replicas}")
        await w.until(lambda ps: len(ready(ps)) == replicas, f"{replicas} wk pods Ready", 30)
        per_node = Counter(node_of(p) for p in ready(w.pods))
        victim = max(sorted(per_node), key=lambda n: per_node[n])
        groups = worker_groups(cluster.pids[victim])

        t_kill = time.monotonic()
        kill_groups(groups)  # the agent and every container on the machine, at once

        async def victim_not_ready() -> float | None:
            node = await api.get("Node", "", victim)
            return None if node_ready(node) else time.monotonic()

        t_notready = await wait_until(victim_not_ready, f"{victim} NotReady", 15, interval=0.02)
        t_healed = await w.until(
            lambda ps: sum(1 for p in ready(ps) if node_of(p) != victim) == replicas,
            f"{replicas} wk pods Ready on other workers",
            30,
        )
        notready_s, heal_s = t_notready - t_kill, t_healed - t_kill
        figure("worker_kill_to_notready_s", notready_s)
        figure("worker_kill_to_all_ready_s", heal_s)
        print(f"killed {victim} ({per_node[victim]} pods, {len(groups)} process groups)")
        # Heartbeats every 1 s: the last one may be up to 1 s old at the kill, plus the checker's tick.
        assert notready_s <= NODE_GRACE + 1.0, (
            f"{victim} NotReady after {notready_s:.2f}s (grace {NODE_GRACE}s)"
        )
        assert heal_s <= 8.0, f"replicas all Ready again only after {heal_s:.2f}s (aim <= 6 s)"
    # clean_slate restarts the worker for the next test.


# ---------------------------------------------------------------- the leader dies mid scale-up


async def test_leader_kill_during_scale_up_to_30_never_overshoots(cluster: Cluster) -> None:
    replicas, surge = 30, 8  # maxSurge 25% of 30, rounded up
    async with client(cluster) as api:
        roles = await master_roles(cluster, api)
        leader = next(n for n, (r, _) in roles.items() if r == "leader")
        followers = [addr for n, (r, addr) in roles.items() if n != leader]
        max_live = 0

        def count(ps: dict[str, Obj]) -> str | None:
            nonlocal max_live
            max_live = max(max_live, len(live(ps)))
            if len(live(ps)) > replicas + surge:
                return f"{len(live(ps))} live pods at once (> {replicas} + {surge})"
            return None

        # Observe from the followers, so the watch is not on the master being killed.
        async with client(cluster, followers) as observer, PodWatch(observer, "app=lk", count) as w:
            await skiff(cluster, "run", "lk", f"--image={DEMO_IMAGE}", "--port=5005", "--replicas=3")
            await w.until(lambda ps: len(ready(ps)) == 3, "3 lk pods Ready", 20)
            scale = asyncio.create_task(skiff(cluster, "scale", f"--replicas={replicas}", "deployment/lk"))
            await w.until(lambda ps: len(ps) > 3, "the first new pod of the scale-up", 20)
            at_kill = len(w.pods)
            bound_at_kill = sum(1 for p in w.pods.values() if node_of(p))
            os.killpg(int(cluster.pids[leader]["pgid"]), signal.SIGKILL)
            t_kill = time.monotonic()
            await scale
            print(f"killed leader {leader} when the watch had seen {at_kill} lk pods ({bound_at_kill} bound)")

            t_done = await w.until(
                lambda ps: len(ps) == replicas and len(running(ps)) == replicas,
                f"exactly {replicas} lk pods Running",
                60,
            )
            figure("leader_kill_pods_seen_at_kill", at_kill)
            figure("leader_kill_pods_bound_at_kill", bound_at_kill)
            figure("leader_kill_to_30_running_s", t_done - t_kill)

            async def deployment_settled() -> bool:
                d = await observer.get("Deployment", NS, "lk")
                st = d.get("status", {})
                return st.get("replicas") == replicas and st.get("availableReplicas") == replicas

            await wait_until(deployment_settled, "deployment lk reporting 30 available", 30)
            pods, _ = await observer.list("Pod", NS, label_selector="app=lk")
            figure("leader_kill_max_live_pods", max_live)
            assert len(pods) == replicas, f"{len(pods)} lk pods after the dust settled, want {replicas}"
            w.assert_no_violation()
            assert max_live <= replicas + surge


# ---------------------------------------------------------------- requests and worker sizes


async def test_requests_only_placed_where_they_fit(cluster: Cluster) -> None:
    request_mi = 900
    capacity = {}
    async with client(cluster) as api:
        for n in (await api.list("Node"))[0]:
            alloc = n["status"].get("allocatable") or n["status"]["capacity"]
            capacity[n["metadata"]["name"]] = model.parse_bytes(alloc["memory"])
    fits = sum(cap // (request_mi * 2**20) for cap in capacity.values())  # 1+2+3+4+6 = 16
    replicas = fits + 2

    def fit(ps: dict[str, Obj]) -> str | None:
        used: Counter[str] = Counter()
        for p in ps.values():
            if node_of(p):
                used[node_of(p)] += model.pod_requests(p)[1]
        over = {n: u for n, u in used.items() if u > capacity[n]}
        return f"memory requests exceed a node's allocatable: {over}" if over else None

    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "big", "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "big"}},
            "template": {
                "metadata": {"labels": {"app": "big"}},
                "spec": {
                    "terminationGracePeriodSeconds": 2,
                    "containers": [
                        {
                            "name": "big",
                            "image": DEMO_IMAGE,
                            "resources": {"requests": {"memory": f"{request_mi}Mi", "cpu": "100m"}},
                        }
                    ],
                },
            },
        },
    }
    path = cluster.state_dir / "big.json"
    path.write_text(json.dumps(manifest))
    async with client(cluster) as api, PodWatch(api, "app=big", fit) as w:
        await skiff(cluster, "apply", "-f", str(path))
        await w.until(
            lambda ps: len(ps) == replicas and len(running(ps)) == fits,
            f"{fits} big pods Running and {replicas - fits} Pending",
            40,
        )
        w.assert_no_violation()
        per_node = Counter(node_of(p) for p in w.pods.values() if node_of(p))
        print(f"900Mi pods per node: {dict(sorted(per_node.items()))}")
        pending = sorted(n for n, p in w.pods.items() if not node_of(p))
        assert len(pending) == replicas - fits, f"pending: {pending}"

        want = f"0/{WORKERS} nodes are available: {WORKERS} Insufficient memory."

        async def described() -> str | None:
            _, out = await skiff(cluster, "describe", "pod", pending[0])
            return out if want in out else None

        await wait_until(described, f"`skiff describe pod {pending[0]}` showing {want!r}", 15, 0.3)
        w.assert_no_violation()


# ---------------------------------------------------------------- rolling update and undo


async def test_rolling_update_keeps_enough_ready_and_undo_returns(cluster: Cluster) -> None:
    replicas, max_unavailable = 6, 1  # 25% of 6 rounded down
    min_ready = replicas - max_unavailable
    low = replicas
    armed = False

    def enough_ready(ps: dict[str, Obj]) -> str | None:
        nonlocal low
        if not armed:
            return None
        low = min(low, len(ready(ps)))
        return f"only {len(ready(ps))} Ready pods (< {min_ready})" if len(ready(ps)) < min_ready else None

    def images(ps: dict[str, Obj]) -> set[str]:
        return {p["spec"]["containers"][0]["image"] for p in ps.values()}

    async with client(cluster) as api, PodWatch(api, "app=demo", enough_ready) as w:
        await skiff(cluster, "run", "demo", f"--image={DEMO_IMAGE}", "--port=5005", f"--replicas={replicas}")
        await w.until(lambda ps: len(ready(ps)) == replicas, f"{replicas} demo pods Ready", 30)
        armed = True

        t0 = time.monotonic()
        await skiff(cluster, "set", "image", "deployment/demo", f"demo={OTHER_IMAGE}")
        _, out = await skiff(cluster, "rollout", "status", "deployment/demo", "--timeout=60s", timeout=70)
        assert "successfully rolled out" in out, out
        await w.until(
            lambda ps: len(ps) == replicas and len(ready(ps)) == replicas and images(ps) == {OTHER_IMAGE},
            f"{replicas} Ready pods of {OTHER_IMAGE}",
            30,
        )
        figure("rolling_update_6_pods_s", time.monotonic() - t0)
        w.assert_no_violation()

        await skiff(cluster, "rollout", "undo", "deployment/demo")
        _, out = await skiff(cluster, "rollout", "status", "deployment/demo", "--timeout=60s", timeout=70)
        assert "successfully rolled out" in out, out
        await w.until(
            lambda ps: len(ps) == replicas and len(ready(ps)) == replicas and images(ps) == {DEMO_IMAGE},
            f"{replicas} Ready pods of {DEMO_IMAGE} again",
            30,
        )
        dep = await api.get("Deployment", NS, "demo")
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == DEMO_IMAGE
        figure("rolling_update_min_ready", low)
        w.assert_no_violation()
