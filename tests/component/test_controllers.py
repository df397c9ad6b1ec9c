"""The controllers as actors against the in-memory FakeCluster: convergence and invariants."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from orchestrator import errors, model
from orchestrator.controllers.base import Emit, EventRecorder
from orchestrator.controllers.manager import ControllerManager, ControllerOptions
from orchestrator.controllers.replicaset import ReplicaSetController
from orchestrator.controllers.scheduler import SchedulerController
from tests.component.fake_cluster import FakeCluster, FakeKubelet
from tests.unit.test_reconcile_workloads import make_rs

Obj = dict[str, Any]
FAST = ControllerOptions(node_grace=3.0, node_toleration=2.0, node_tick=0.01, scheduler_retry_interval=0.2)


def deployment(name: str = "web", replicas: int = 10, image: str = "demo:1", **strategy: Any) -> Obj:
    spec: Obj = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": image,
                        "ports": [{"containerPort": 8080, "name": "http"}],
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                    }
                ]
            },
        },
    }
    if strategy:
        spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": strategy}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def active_pods(cluster: FakeCluster, app: str = "web") -> list[Obj]:
    return [p for p in cluster.list("Pod") if model.labels_of(p).get("app") == app and model.pod_is_active(p)]


@contextlib.asynccontextmanager
async def running(
    cluster: Any, kubelet: FakeKubelet | None, options: ControllerOptions = FAST
) -> AsyncIterator[ControllerManager]:
    manager = ControllerManager(cluster, options)
    tasks = [asyncio.create_task(manager.run())]
    if kubelet is not None:

        async def agents() -> None:
            while True:
                kubelet.step()
                await asyncio.sleep(0.005)

        tasks.append(asyncio.create_task(agents()))
    try:
        yield manager
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t


async def until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def advance(cluster: FakeCluster, seconds: float, step: float = 0.25) -> None:
    """Move the fake clock gradually, so live agents keep heartbeating on the way."""
    while seconds > 0:
        cluster.clock.advance(min(step, seconds))
        seconds -= step
        await asyncio.sleep(0.03)


def per_node(cluster: FakeCluster, app: str = "web") -> Counter[str]:
    return Counter(p["spec"].get("nodeName", "") for p in active_pods(cluster, app))


NODES = [f"worker-{i}" for i in range(1, 6)]


async def test_deployment_of_10_on_5_nodes_spreads_2_per_node() -> None:
    cluster = FakeCluster()
    kubelet = FakeKubelet(cluster, NODES)
    cluster.apply_create(deployment(replicas=10))
    async with running(cluster, kubelet):

        def converged() -> bool:
            d = cluster.get("Deployment", "default", "web")
            s = (d or {}).get("status") or {}
            return s.get("availableReplicas") == 10 and s.get("updatedReplicas") == 10

        await until(converged, what="10 available replicas")
    assert per_node(cluster) == Counter({n: 2 for n in NODES})
    d = cluster.get("Deployment", "default", "web")
    assert d is not None
    conditions = {c["type"]: c for c in d["status"]["conditions"]}
    assert conditions["Available"]["status"] == "True"
    assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"
    (rs,) = cluster.list("ReplicaSet")
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert all(p["metadata"]["name"].startswith(model.name_of(rs) + "-") for p in active_pods(cluster))
    reasons = Counter(e["reason"] for e in cluster.list("Event"))
    assert reasons["Scheduled"] == 10


async def test_stale_heartbeat_evicts_and_pods_are_replaced_elsewhere() -> None:
    cluster = FakeCluster()
    kubelet = FakeKubelet(cluster, NODES)
    cluster.apply_create(deployment(replicas=10))
    async with running(cluster, kubelet):
        await until(lambda: len([p for p in active_pods(cluster) if model.pod_is_ready(p)]) == 10)
        kubelet.alive.discard("worker-3")
        await advance(cluster, 3.5)
        await until(
            lambda: (
                (cluster.get("Node", "", "worker-3") or {})["status"]["conditions"][0]["status"] == "Unknown"
            ),
            what="worker-3 Unknown",
        )
        node = cluster.get("Node", "", "worker-3")
        assert node is not None
        assert [t["key"] for t in node["spec"]["taints"]] == ["node.kubernetes.io/unreachable"]
        assert not any(
            model.pod_is_ready(p) for p in active_pods(cluster) if p["spec"]["nodeName"] == "worker-3"
        )
        await advance(cluster, 2.0)

        def replaced() -> bool:
            pods = active_pods(cluster)
            return len(pods) == 10 and all(
                p["spec"].get("nodeName") not in ("", None, "worker-3") for p in pods
            )

        await until(replaced, what="pods replaced off worker-3")
        await until(lambda: sum(per_node(cluster).values()) == 10 and max(per_node(cluster).values()) <= 3)
        kubelet.alive.add("worker-3")
        await until(
            lambda: not (cluster.get("Node", "", "worker-3") or {})["spec"].get("taints"), what="untaint"
        )
    reasons = Counter(e["reason"] for e in cluster.list("Event"))
    assert reasons["NodeNotReady"] == 1
    assert reasons["TaintManagerEviction"] == 2


async def test_rolling_update_keeps_surge_and_availability_bounds_at_every_commit() -> None:
    cluster = FakeCluster()
    kubelet = FakeKubelet(cluster, NODES)
    cluster.apply_create(deployment(replicas=10, maxSurge=2, maxUnavailable=1))
    async with running(cluster, kubelet):
        await until(
            lambda: (
                ((cluster.get("Deployment", "default", "web") or {}).get("status") or {}).get(
                    "availableReplicas"
                )
                == 10
            )
        )
        violations: list[str] = []
        seen_max = [0]

        def check(event: str, obj: Obj) -> None:
            pods = active_pods(cluster)
            ready = [p for p in pods if model.pod_is_ready(p)]
            seen_max[0] = max(seen_max[0], len(pods))
            if len(pods) > 12:
                violations.append(f"{len(pods)} active pods after {event} {obj['kind']}")
            if len(ready) < 9:
                violations.append(f"{len(ready)} ready pods after {event} {obj['kind']}")

        cluster.observers.append(check)
        d = copy.deepcopy(cluster.get("Deployment", "default", "web"))
        assert d is not None
        d["spec"]["template"]["spec"]["containers"][0]["image"] = "demo:2"
        await cluster.update(d)

        def done() -> bool:
            pods = active_pods(cluster)
            return (
                len(pods) == 10
                and all(p["spec"]["containers"][0]["image"] == "demo:2" for p in pods)
                and all(model.pod_is_ready(p) for p in pods)
            )

        await until(done, what="rollout to demo:2")
        await until(
            lambda: (
                ((cluster.get("Deployment", "default", "web") or {}).get("status") or {}).get(
                    "updatedReplicas"
                )
                == 10
            )
        )
    assert violations == []
    assert seen_max[0] == 12
    revisions = sorted(
        int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
        for rs in cluster.list("ReplicaSet")
    )
    assert revisions == [1, 2]


async def test_rollback_reuses_the_old_replicaset_with_a_new_revision() -> None:
    cluster = FakeCluster()
    kubelet = FakeKubelet(cluster, NODES)
    cluster.apply_create(deployment(replicas=3))
    async with running(cluster, kubelet):

        def images(image: str) -> bool:
            pods = active_pods(cluster)
            return len(pods) == 3 and all(
                p["spec"]["containers"][0]["image"] == image and model.pod_is_ready(p) for p in pods
            )

        await until(lambda: images("demo:1"))
        (first,) = cluster.list("ReplicaSet")
        d = copy.deepcopy(cluster.get("Deployment", "default", "web"))
        assert d is not None
        d["spec"]["template"]["spec"]["containers"][0]["image"] = "demo:2"
        await cluster.update(d)
        await until(lambda: images("demo:2"))
        # `rollout undo`: copy the old RS's template (with its pod-template-hash label) back.
        d = copy.deepcopy(cluster.get("Deployment", "default", "web"))
        assert d is not None
        d["spec"]["template"] = copy.deepcopy(first["spec"]["template"])
        await cluster.update(d)
        await until(lambda: images("demo:1"))
        await until(
            lambda: (
                (cluster.get("ReplicaSet", "default", model.name_of(first)) or {})["metadata"]["annotations"][
                    "deployment.kubernetes.io/revision"
                ]
                == "3"
            )
        )
    assert len(cluster.list("ReplicaSet")) == 2


async def test_failover_during_scale_up_to_30_never_over_creates() -> None:
    """Writes take 20 ms and land even when the writer is cancelled; the old leader's writes are fenced."""
    cluster = FakeCluster(latency=0.02)
    kubelet = FakeKubelet(cluster, NODES)
    cluster.apply_create(deployment(replicas=3))
    worst = [0]
    cluster.observers.append(lambda e, o: worst.__setitem__(0, max(worst[0], len(active_pods(cluster)))))
    async with running(cluster.lease(), kubelet):
        await until(lambda: len([p for p in active_pods(cluster) if model.pod_is_ready(p)]) == 3)
        cluster.apply_patch("Deployment", "default", "web", {"spec": {"replicas": 30}})
        await until(lambda: len(active_pods(cluster)) >= 8, what="scale-up under way")
    new_leader = cluster.lease()
    async with running(new_leader, kubelet):
        await until(lambda: len([p for p in active_pods(cluster) if model.pod_is_ready(p)]) == 30, timeout=20)
        await asyncio.sleep(0.3)
    await cluster.settle()
    assert worst[0] <= 30
    assert len(active_pods(cluster)) == 30


async def test_controller_stops_when_fenced() -> None:
    cluster = FakeCluster()
    FakeKubelet(cluster, NODES)
    manager = ControllerManager(cluster.lease(), FAST)
    cluster.lease()
    cluster.apply_create(deployment(replicas=2))
    with pytest.raises(errors.Fenced):
        await asyncio.wait_for(manager.run(), 5)


async def test_replicaset_expectations_prevent_double_create_before_the_watch_catches_up() -> None:
    cluster = FakeCluster()
    recorder = EventRecorder(cluster, "test")
    rsc = ReplicaSetController(cluster, recorder)
    rs = cluster.apply_create(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "web-x", "namespace": "default"},
            "spec": {
                "replicas": 5,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}]},
                },
            },
        }
    )
    hidden: list[Obj] = []
    real_list = cluster.list

    def stale_list(kind: str, namespace: str = "") -> list[Obj]:
        return [o for o in real_list(kind, namespace) if o not in hidden]

    cluster.list = stale_list  # type: ignore[method-assign]
    cluster.observers.append(lambda e, o: hidden.append(o) if o["kind"] == "Pod" else None)
    await rsc.sync("default/web-x")
    await rsc.sync("default/web-x")
    assert len(real_list("Pod")) == 5
    hidden.clear()
    await asyncio.sleep(0)  # deliver the ADDED events: expectations are met
    await rsc.sync("default/web-x")
    assert len(real_list("Pod")) == 5
    assert rs["metadata"]["uid"] == model.controller_of(real_list("Pod")[0])["uid"]  # type: ignore[index]


async def test_scheduler_burst_spreads_and_is_fast() -> None:
    cluster = FakeCluster()
    nodes = [f"n{i:02d}" for i in range(50)]
    FakeKubelet(cluster, nodes, cpu="64", memory="256Gi", pods="200")
    recorder = EventRecorder(cluster, "test")
    scheduler = SchedulerController(cluster, recorder)
    cluster.subscribe(scheduler.handle)
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "rs-b", "controller": True}
    for i in range(3000):
        cluster.apply_create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"p{i:04d}", "namespace": "default", "ownerReferences": [owner]},
                "spec": {
                    "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "10m"}}}]
                },
            }
        )
    started = time.perf_counter()
    task = asyncio.create_task(scheduler.run())
    await until(lambda: scheduler.bound == 3000, timeout=30)
    elapsed = time.perf_counter() - started
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    counts = Counter(p["spec"]["nodeName"] for p in cluster.list("Pod"))
    assert set(counts.values()) == {60}
    assert 3000 / elapsed >= 500, f"{3000 / elapsed:.0f} pods/s"


async def test_unschedulable_pod_gets_event_and_condition_then_schedules_when_a_node_fits() -> None:
    cluster = FakeCluster()
    kubelet = FakeKubelet(cluster, ["small-1", "small-2"], memory="1Gi")
    cluster.apply_create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "big", "namespace": "default"},
            "spec": {
                "containers": [{"name": "c", "image": "i", "resources": {"requests": {"memory": "2Gi"}}}]
            },
        }
    )
    async with running(cluster, kubelet):
        await until(lambda: any(e["reason"] == "FailedScheduling" for e in cluster.list("Event")))
        pod = cluster.get("Pod", "default", "big")
        assert pod is not None
        (cond,) = pod["status"]["conditions"]
        assert cond["reason"] == "Unschedulable"
        assert cond["message"] == "0/2 nodes are available: 2 Insufficient memory."
        (event,) = [e for e in cluster.list("Event") if e["reason"] == "FailedScheduling"]
        assert event["type"] == "Warning" and event["message"] == cond["message"]
        cluster.apply_create(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": "big-1"},
                "spec": {},
                "status": {
                    "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "lastHeartbeatTime": model.rfc3339_micro(cluster.now()),
                        }
                    ],
                },
            }
        )
        kubelet.alive.add("big-1")
        await until(lambda: (cluster.get("Pod", "default", "big") or {})["spec"].get("nodeName") == "big-1")


async def test_endpoints_follow_ready_pods_and_mark_terminating() -> None:
    cluster = FakeCluster()
    kubelet = FakeKubelet(cluster, NODES)
    cluster.apply_create(deployment(replicas=3))
    cluster.apply_create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        }
    )

    def addresses(key: str) -> list[Obj]:
        ep = cluster.get("Endpoints", "default", "web") or {}
        return [a for s in ep.get("subsets") or [] for a in s.get(key) or []]

    async with running(cluster, kubelet):
        await until(lambda: len(addresses("addresses")) == 3, what="3 ready endpoints")
        ep = cluster.get("Endpoints", "default", "web")
        assert ep is not None
        for subset in ep["subsets"]:
            assert subset["ports"][0]["name"] == "http" and subset["ports"][0]["port"] > 30000
        kubelet.alive.discard(addresses("addresses")[0]["nodeName"])
        victim = addresses("addresses")[0]["targetRef"]["name"]
        await cluster.delete("Pod", "default", victim)
        await until(
            lambda: any(a.get("terminating") for a in addresses("notReadyAddresses")), what="terminating"
        )
        writes = cluster.writes["MODIFIED Endpoints"]
        await asyncio.sleep(0.2)
        assert cluster.writes["MODIFIED Endpoints"] == writes


async def test_event_recorder_aggregates_repeats() -> None:
    cluster = FakeCluster()
    recorder = EventRecorder(cluster, "test")
    task = asyncio.create_task(recorder.run())
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "namespace": "default", "uid": "u1"}}
    recorder.emit(Emit.about(pod, "FailedScheduling", "0/1 nodes are available: 1 Too many pods.", "Warning"))
    await until(lambda: len(cluster.list("Event")) == 1)
    for _ in range(3):
        recorder.emit(
            Emit.about(pod, "FailedScheduling", "0/1 nodes are available: 1 Too many pods.", "Warning")
        )
        await asyncio.sleep(0.01)
    recorder.emit(Emit.about(pod, "Scheduled", "Successfully assigned default/x to worker-1"))
    await until(lambda: len(cluster.list("Event")) == 2)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    events = {e["reason"]: e for e in cluster.list("Event")}
    assert events["FailedScheduling"]["count"] == 4
    assert events["FailedScheduling"]["involvedObject"]["uid"] == "u1"
    assert events["FailedScheduling"]["metadata"]["name"].startswith("x.")
    assert events["Scheduled"]["source"] == {"component": "test"}


async def test_node_lifecycle_looks_again_at_a_healthy_node_whose_object_changed() -> None:
    from orchestrator.controllers.nodelifecycle import NOT_READY, NodeLifecycleController

    cluster = FakeCluster()
    kubelet = FakeKubelet(cluster, ["worker-1", "worker-2"])
    kubelet.step()
    lifecycle = NodeLifecycleController(cluster, EventRecorder(cluster, "node-controller"), grace=3.0)
    await lifecycle.sync()  # the sweep: every node and pod
    await lifecycle.sync()  # both nodes healthy: remembered, skipped from now on
    # Another writer replaces worker-1's object with one carrying this controller's taint: the next
    # (non-sweep) pass sees a different object, looks at it, and takes the taint off the Ready node.
    cluster.apply_patch(
        "Node", "", "worker-1", {"spec": {"taints": [{"key": NOT_READY, "effect": "NoSchedule"}]}}
    )
    await lifecycle.sync()
    assert not (cluster.get("Node", "", "worker-1") or {})["spec"].get("taints")
    # A node that falls silent is judged although it was found healthy before.
    kubelet.alive.discard("worker-2")
    cluster.clock.advance(3.5)
    kubelet.step()
    await lifecycle.sync()
    assert ready_status(cluster, "worker-2") == "Unknown" and ready_status(cluster, "worker-1") == "True"


async def test_node_lifecycle_counts_a_late_heartbeat_from_when_it_landed() -> None:
    """Kubernetes' probe timestamp: a renewal that took long to commit is news when it lands, though
    the time it carries is older than the grace; the node is judged silent from then on."""
    from orchestrator.controllers.nodelifecycle import NodeLifecycleController

    cluster = FakeCluster()
    FakeKubelet(cluster, ["worker-1"]).step()
    t0 = cluster.now()
    beats = {"worker-1": t0}
    cluster.heartbeats = lambda: dict(beats)  # type: ignore[method-assign]
    lifecycle = NodeLifecycleController(cluster, EventRecorder(cluster, "node-controller"), grace=3.0)
    await lifecycle.sync()
    cluster.clock.advance(2.9)
    await lifecycle.sync()
    cluster.clock.advance(0.5)
    beats["worker-1"] = t0 + 0.3  # 3.1 s old when it lands: past the grace by its own time
    await lifecycle.sync()
    assert ready_status(cluster, "worker-1") == "True"
    cluster.clock.advance(2.9)
    await lifecycle.sync()
    assert ready_status(cluster, "worker-1") == "True"
    cluster.clock.advance(0.2)  # 3.1 s since the news landed
    await lifecycle.sync()
    assert ready_status(cluster, "worker-1") == "Unknown"


def ready_status(cluster: FakeCluster, node: str) -> str:
    conditions = (cluster.get("Node", "", node) or {})["status"]["conditions"]
    return next(c["status"] for c in conditions if c["type"] == "Ready")


async def test_scheduler_usage_cache_matches_a_full_count_after_binds_deletes_and_node_changes() -> None:
    from orchestrator.scheduling import node_infos

    cluster = FakeCluster()
    kubelet = FakeKubelet(cluster, [f"n{i}" for i in range(6)])
    kubelet.step()
    scheduler = SchedulerController(cluster, EventRecorder(cluster, "test"))
    unsubscribe = cluster.subscribe(scheduler.handle)
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "rs-r", "controller": True}
    for i in range(60):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"p{i}", "namespace": "default", "ownerReferences": [owner]},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "50m"}}}]},
        }
        cluster.apply_create(pod)
    task = asyncio.create_task(scheduler.run())
    try:
        await until(lambda: scheduler.bound == 60, what="60 bound")
        scheduler._current_usage()  # the cache is built; everything below reaches it through events only
        for i in range(0, 60, 3):
            cluster.apply_delete("Pod", "default", f"p{i}", force=True)
        cluster.apply_patch("Pod", "default", "p1", {"status": {"phase": "Succeeded"}}, status=True)
        kubelet_b = FakeKubelet(cluster, ["late-node"])
        kubelet_b.step()
        cluster.apply_delete("Node", "", "n5", force=True)
        bound_elsewhere = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "direct", "namespace": "default"},
            "spec": {
                "nodeName": "n2",  # bound at its creation, not by this scheduler
                "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "300m"}}}],
            },
        }
        cluster.apply_create(bound_elsewhere)
        cluster.apply_patch("Pod", "default", "p2", {"status": {"phase": "Running"}}, status=True)

        def counted(infos: dict[str, Any]) -> dict[str, Any]:
            return {n: (i.used_cpu, i.used_memory, i.pods, dict(+i.owners)) for n, i in infos.items()}

        await asyncio.sleep(0.05)  # the fake delivers events as a watch does: a little later
        full = node_infos(cluster.list("Node"), cluster.list("Pod"))
        assert counted(scheduler._current_usage()) == counted(full)
        assert "late-node" in full and "n5" not in full
        # Events lost (the store's RESYNC): the cache is stale until the scheduler forgets it.
        unsubscribe()
        for i in (4, 7, 10):
            cluster.apply_delete("Pod", "default", f"p{i}", force=True)
        full = node_infos(cluster.list("Node"), cluster.list("Pod"))
        assert counted(scheduler._current_usage()) != counted(full)
        scheduler.forget_usage()
        assert counted(scheduler._current_usage()) == counted(full)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_failed_bind_leaves_no_usage_behind() -> None:
    """A placement whose bind fails is taken back out of the usage cache (counted once a retry binds)."""
    from orchestrator.scheduling import node_infos

    cluster = FakeCluster()
    FakeKubelet(cluster, ["n0", "n1"]).step()
    scheduler = SchedulerController(cluster, EventRecorder(cluster, "test"))
    cluster.subscribe(scheduler.handle)
    scheduler._current_usage()

    def counted(infos: dict[str, Any]) -> dict[str, Any]:
        return {n: (i.used_cpu, i.pods) for n, i in infos.items()}

    spec = {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "100m"}}}]}
    cluster.fail_next = [errors.Conflict("bent"), errors.Unavailable("no leader")]
    for name in ("dropped", "retried"):
        cluster.apply_create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": "default"},
                "spec": spec,
            }
        )
    task = asyncio.create_task(scheduler.run())
    try:
        await until(lambda: scheduler.bound == 1, what="the retried pod bound")
        await asyncio.sleep(0.05)  # its event arrives a little later
        assert counted(scheduler._current_usage()) == counted(
            node_infos(cluster.list("Node"), cluster.list("Pod"))
        )
        assert sum(i.pods for i in scheduler._current_usage().values()) == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_pod_creates_go_in_slow_start_batches_and_deletes_64_at_a_time() -> None:
    from orchestrator.controllers.base import Create, Delete, Patch, _batches

    creates: list[Any] = [Create({"kind": "Pod", "metadata": {}}) for _ in range(500)]
    deletes: list[Any] = [Delete("Pod", "default", f"p{i}") for i in range(100)]
    status = Patch("ReplicaSet", "default", "rs", {"status": {}}, status=True)
    sizes = [len(b) for b in _batches([*creates, *deletes, status])]
    assert sizes == [1, 2, 4, 8, 16, 32, 64, 128, 245, 64, 36, 1]


async def test_slow_start_goes_on_from_the_last_sync_and_starts_again_after_a_failure() -> None:
    """Each batch of creates waits for a commit: a sync of 500 that began at 1 again spent nine round
    trips. The next sync begins where the last one got to (256 at most); a failed batch begins at 1."""
    cluster = FakeCluster()
    rsc = ReplicaSetController(cluster, EventRecorder(cluster, "test"))
    cluster.subscribe(rsc.handle)  # the watch: each pod's ADDED meets its expectation
    rs = cluster.apply_create(make_rs(500, name="web-x"))
    await rsc.sync("default/web-x")
    await asyncio.sleep(0)
    assert len(cluster.list("Pod")) == 500
    real_create, tries = cluster.create, [0]

    async def refused(obj: Obj) -> Obj:
        tries[0] += 1
        raise errors.PermissionDenied('pods "web-x-" is forbidden: exceeded quota')

    cluster.create = refused  # type: ignore[method-assign]
    cluster.apply_patch("ReplicaSet", "default", "web-x", {"spec": {"replicas": 900}})
    with pytest.raises(errors.PermissionDenied):
        await rsc.sync("default/web-x")
    assert tries[0] == 256, "the second sync's first batch is the size the first one reached"
    with pytest.raises(errors.PermissionDenied):
        await rsc.sync("default/web-x")
    assert tries[0] == 257, "after a failed batch, one try"
    cluster.create = real_create  # type: ignore[method-assign]
    await rsc.sync("default/web-x")
    assert len(cluster.list("Pod")) == 900 and rs["metadata"]["uid"]


async def test_a_create_that_always_fails_is_tried_once_per_sync_and_expects_nothing() -> None:
    """Kubernetes' slow start: a sync of 20 creates whose first fails stops there (one try, not 20),
    and the 19 it skipped are not waited for: once creates work, the next sync makes all 20."""
    cluster = FakeCluster()
    rsc = ReplicaSetController(cluster, EventRecorder(cluster, "test"))
    cluster.apply_create(make_rs(20, name="web-x"))
    tries = 0
    real_create = cluster.create

    async def refused(obj: Obj) -> Obj:
        nonlocal tries
        tries += 1
        raise errors.PermissionDenied('pods "web-x-" is forbidden: exceeded quota')

    cluster.create = refused  # type: ignore[method-assign]
    with pytest.raises(errors.PermissionDenied):
        await rsc.sync("default/web-x")
    assert tries == 1
    assert rsc.expectations.pending("default/web-x", cluster.now()) == (0, frozenset())
    cluster.create = real_create  # type: ignore[method-assign]
    await rsc.sync("default/web-x")
    assert len(cluster.list("Pod")) == 20
