"""Pure reconcile functions of the Deployment and ReplicaSet controllers."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator import model
from orchestrator.controllers.base import Create, Delete, Patch, Update
from orchestrator.controllers.deployment import (
    FactsMemo,
    new_replica_set,
    reconcile_deployment,
    surge_and_unavailable,
)
from orchestrator.controllers.replicaset import deletion_order, reconcile_replicaset
from orchestrator.workloads import HASH_LABEL, REVISION, deployment_template_hash

Obj = dict[str, Any]
NOW = 1_800_000_000.0


def make_deployment(replicas: int = 10, image: str = "demo:1", strategy: Obj | None = None) -> Obj:
    spec: Obj = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": image}]},
        },
    }
    if strategy is not None:
        spec["strategy"] = strategy
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "d-uid", "generation": 1},
        "spec": spec,
    }


def make_pod(
    name: str,
    owner: Obj,
    *,
    node: str = "n1",
    phase: str = "Running",
    ready: bool = True,
    created: float = NOW,
    restarts: int = 0,
    terminating: bool = False,
) -> Obj:
    pod: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"uid-{name}",
            "creationTimestamp": model.rfc3339(created),
            "ownerReferences": [model.owner_ref(owner)],
        },
        "spec": {"nodeName": node} if node else {},
        "status": {
            "phase": phase,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": model.rfc3339(NOW - 100),
                }
            ],
            "containerStatuses": [{"name": "c", "restartCount": restarts}],
        },
    }
    if terminating:
        pod["metadata"]["deletionTimestamp"] = model.rfc3339(NOW + 30)
    return pod


def make_rs(replicas: int, name: str = "web-abc") -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "generation": 2},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
        },
    }


# ---------------------------------------------------------------- ReplicaSet


@pytest.mark.parametrize(
    ("desired", "existing", "pending", "creates", "deletes"),
    [
        pytest.param(3, 0, 0, 3, 0, id="create-all"),
        pytest.param(3, 1, 0, 2, 0, id="create-missing"),
        pytest.param(3, 1, 2, 0, 0, id="pending-creates-count"),
        pytest.param(3, 3, 0, 0, 0, id="steady"),
        pytest.param(1, 3, 0, 0, 2, id="scale-down"),
        pytest.param(1, 3, 1, 0, 0, id="no-delete-while-creating"),
    ],
)
def test_replicaset_creates_and_deletes(
    desired: int, existing: int, pending: int, creates: int, deletes: int
) -> None:
    rs = make_rs(desired)
    pods = [make_pod(f"web-abc-{i}", rs) for i in range(existing)]
    actions = reconcile_replicaset(rs, pods, NOW, pending_creates=pending)
    assert sum(isinstance(a, Create) for a in actions) == creates
    assert sum(isinstance(a, Delete) for a in actions) == deletes


def test_replicaset_pod_from_template_uses_generate_name_and_owner() -> None:
    rs = make_rs(1)
    (create,) = [a for a in reconcile_replicaset(rs, [], NOW) if isinstance(a, Create)]
    meta = create.obj["metadata"]
    assert "name" not in meta and meta["generateName"] == "web-abc-"
    assert meta["labels"] == {"app": "web"}
    assert (
        meta["ownerReferences"][0]["uid"] == "uid-web-abc"
        and meta["ownerReferences"][0]["controller"] is True
    )


def test_replicaset_ignores_terminating_foreign_and_pending_delete_pods() -> None:
    rs = make_rs(2)
    other = make_rs(2, name="other")
    pods = [
        make_pod("a", rs, terminating=True),
        make_pod("b", rs),
        make_pod("c", other),
        make_pod("d", rs),
    ]
    actions = reconcile_replicaset(rs, pods, NOW, pending_deletes=frozenset({"d"}))
    assert sum(isinstance(a, Create) for a in actions) == 1


def test_replicaset_scale_down_order_matches_kubernetes() -> None:
    rs = make_rs(0)
    pods = [
        make_pod("running-old", rs, created=NOW - 100),
        make_pod("running-new", rs, created=NOW - 10),
        make_pod("running-restarts", rs, created=NOW - 100, restarts=5),
        make_pod("not-ready", rs, ready=False),
        make_pod("pending", rs, phase="Pending", ready=False),
        make_pod("unscheduled", rs, node="", phase="Pending", ready=False),
    ]
    order = [model.name_of(p) for p in sorted(pods, key=deletion_order)]
    assert order == ["unscheduled", "pending", "not-ready", "running-restarts", "running-new", "running-old"]
    deleted = [a.name for a in reconcile_replicaset(rs, pods, NOW) if isinstance(a, Delete)]
    assert deleted == order


def test_replicaset_status_is_patched_only_when_it_changes() -> None:
    rs = make_rs(2)
    pods = [make_pod("a", rs), make_pod("b", rs, ready=False)]
    (patch,) = [a for a in reconcile_replicaset(rs, pods, NOW) if isinstance(a, Patch)]
    assert patch.status and patch.patch["status"] == {
        "replicas": 2,
        "fullyLabeledReplicas": 0,
        "readyReplicas": 1,
        "availableReplicas": 1,
        "observedGeneration": 2,
    }
    rs2 = {**rs, "status": patch.patch["status"]}
    assert reconcile_replicaset(rs2, pods, NOW) == []


# ---------------------------------------------------------------- Deployment


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "expected"),
    [
        pytest.param(10, None, None, (3, 2), id="defaults-25%"),
        pytest.param(4, "25%", "25%", (1, 1), id="4-replicas"),
        pytest.param(1, "25%", "25%", (1, 0), id="1-replica"),
        pytest.param(3, 0, 0, (0, 1), id="both-zero"),
        pytest.param(10, 2, "50%", (2, 5), id="mixed"),
    ],
)
def test_surge_and_unavailable(
    replicas: int, surge: Any, unavailable: Any, expected: tuple[int, int]
) -> None:
    rolling = {k: v for k, v in (("maxSurge", surge), ("maxUnavailable", unavailable)) if v is not None}
    d = make_deployment(replicas, strategy={"type": "RollingUpdate", "rollingUpdate": rolling})
    assert surge_and_unavailable(d) == expected


def test_new_deployment_creates_revision_1_replicaset() -> None:
    d = make_deployment(3)
    actions = reconcile_deployment(d, [], [], NOW)
    (create,) = [a for a in actions if isinstance(a, Create)]
    rs = create.obj
    h = deployment_template_hash(d)
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["metadata"]["annotations"][REVISION] == "1"
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", HASH_LABEL: h}
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", HASH_LABEL: h}
    assert rs["spec"]["replicas"] == 3
    assert rs["metadata"]["ownerReferences"][0]["uid"] == "d-uid"


class Sim:
    """Runs reconcile_deployment and reconcile_replicaset against each other on plain dicts."""

    def __init__(self, d: Obj) -> None:
        self.d = d
        self.rses: dict[str, Obj] = {}
        self.pods: dict[str, Obj] = {}
        self.n = 0
        self.max_active = 0
        self.min_ready = 10**9
        self.memo = FactsMemo()  # as the controller runs it: facts kept per pod object

    def active(self) -> list[Obj]:
        return [p for p in self.pods.values() if model.pod_is_active(p)]

    def observe(self) -> None:
        active = self.active()
        self.max_active = max(self.max_active, len(active))
        self.min_ready = min(self.min_ready, sum(model.pod_is_ready(p) for p in active))

    def step_deployment(self) -> None:
        rses, pods = list(self.rses.values()), list(self.pods.values())
        actions = reconcile_deployment(self.d, rses, pods, NOW, self.memo)
        assert actions == reconcile_deployment(self.d, rses, pods, NOW)  # the memo changes nothing
        for a in actions:
            if isinstance(a, Create):
                self.n += 1
                rs = copy.deepcopy(a.obj)
                rs["metadata"]["uid"] = f"rs-{self.n}"
                self.rses[rs["metadata"]["name"]] = rs
            elif isinstance(a, Update):
                self.rses[a.obj["metadata"]["name"]] = a.obj
            elif isinstance(a, Delete):
                del self.rses[a.name]
            elif isinstance(a, Patch) and a.status:
                self.d = {**self.d, "status": a.patch["status"]}
            elif isinstance(a, Patch):
                meta = self.d["metadata"]
                annotations = {**(meta.get("annotations") or {}), **a.patch["metadata"]["annotations"]}
                self.d = {**self.d, "metadata": {**meta, "annotations": annotations}}
            self.observe()

    def step_replicasets(self) -> None:
        for rs in list(self.rses.values()):
            for a in reconcile_replicaset(rs, list(self.pods.values()), NOW):
                if isinstance(a, Create):
                    self.n += 1
                    pod = copy.deepcopy(a.obj)
                    pod["metadata"].update(
                        name=f"p{self.n}", uid=f"p{self.n}", creationTimestamp=model.rfc3339(NOW)
                    )
                    pod["status"] = {"phase": "Pending"}
                    self.pods[pod["metadata"]["name"]] = pod
                elif isinstance(a, Delete):
                    del self.pods[a.name]
                self.observe()

    def make_ready(self, k: int) -> None:
        waiting = sorted(n for n, p in self.pods.items() if not model.pod_is_ready(p))
        for name in waiting[:k]:
            pod = copy.deepcopy(self.pods[name])
            pod["spec"]["nodeName"] = "n1"
            pod["status"] = {
                "phase": "Running",
                "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": model.rfc3339(NOW - 1)}
                ],
            }
            self.pods[name] = pod
        self.observe()

    def converged(self, image: str) -> bool:
        active = self.active()
        return (
            len(active) == desired(self.d)
            and all(p["spec"]["containers"][0]["image"] == image and model.pod_is_ready(p) for p in active)
            and sum(rs["spec"]["replicas"] for rs in self.rses.values()) == desired(self.d)
        )


def desired(d: Obj) -> int:
    return int(d["spec"]["replicas"])


def rollout(replicas: int, surge: Any, unavailable: Any, ready_per_step: list[int]) -> Sim:
    d = make_deployment(
        replicas,
        strategy={
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
        },
    )
    sim = Sim(d)
    for _ in range(50):
        sim.step_deployment()
        sim.step_replicasets()
        sim.make_ready(10**6)
    assert sim.converged("demo:1")
    sim.max_active, sim.min_ready = 0, 10**9
    d2 = copy.deepcopy(sim.d)
    d2["spec"]["template"]["spec"]["containers"][0]["image"] = "demo:2"
    sim.d = d2
    for k in [*ready_per_step, *[10**6] * 100]:
        sim.step_deployment()
        sim.step_replicasets()
        sim.make_ready(k)
        if sim.converged("demo:2"):
            break
    assert sim.converged("demo:2")
    return sim


@settings(max_examples=60, deadline=None)
@given(
    replicas=st.integers(1, 12),
    surge=st.one_of(st.integers(0, 4), st.sampled_from(["0%", "25%", "50%", "100%"])),
    unavailable=st.one_of(st.integers(0, 4), st.sampled_from(["0%", "25%", "50%"])),
    ready_per_step=st.lists(st.integers(0, 3), max_size=40),
)
def test_rolling_update_stays_within_surge_and_availability(
    replicas: int, surge: Any, unavailable: Any, ready_per_step: list[int]
) -> None:
    d = make_deployment(
        replicas,
        strategy={
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
        },
    )
    max_surge, max_unavailable = surge_and_unavailable(d)
    sim = rollout(replicas, surge, unavailable, ready_per_step)
    assert sim.max_active <= replicas + max_surge
    assert sim.min_ready >= replicas - max_unavailable


def test_pods_above_a_replicasets_new_size_do_not_count_as_available() -> None:
    """Seen in CI: the deployment controller ran again before the replicaset controller deleted the
    pod it had just scaled away, counted that pod as available, and scaled the old set down by two.
    6 replicas, maxUnavailable 25% (1): old set scaled 4 -> 3 but still 4 Ready pods; the new set at 4
    with 3 Ready. Availability that stays is 3 + 3 = 6, so one more old pod may go (3 -> 2), not two."""
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    d_old = make_deployment(6, image="demo:1", strategy=strategy)
    d = make_deployment(6, image="demo:2", strategy=strategy)
    old = new_replica_set(d_old, deployment_template_hash(d_old), 1, 3)
    new = new_replica_set(d, deployment_template_hash(d), 2, 4)
    for rs, uid in ((old, "rs-old"), (new, "rs-new")):
        rs["metadata"]["uid"] = uid
    pods = [make_pod(f"old-{i}", old) for i in range(4)]
    pods += [make_pod(f"new-{i}", new, ready=i < 3) for i in range(4)]
    actions = reconcile_deployment(d, [old, new], pods, NOW)
    sizes = {a.obj["metadata"]["name"]: a.obj["spec"]["replicas"] for a in actions if isinstance(a, Update)}
    assert sizes.get(model.name_of(old), 3) == 2


def test_rolling_update_steps_for_10_with_defaults() -> None:
    sim = rollout(10, "25%", "25%", [0, 0, 3, 3, 3, 3])
    assert sim.max_active == 13
    assert sim.min_ready == 8
    revisions = sorted(rs["metadata"]["annotations"][REVISION] for rs in sim.rses.values())
    assert revisions == ["1", "2"]


def test_recreate_scales_old_to_zero_before_new() -> None:
    d = make_deployment(3, strategy={"type": "Recreate"})
    sim = Sim(d)
    for _ in range(10):
        sim.step_deployment()
        sim.step_replicasets()
        sim.make_ready(10**6)
    d2 = copy.deepcopy(sim.d)
    d2["spec"]["template"]["spec"]["containers"][0]["image"] = "demo:2"
    sim.d = d2
    sim.step_deployment()
    assert [rs["spec"]["replicas"] for rs in sim.rses.values()] == [0, 0]
    sim.step_replicasets()
    assert sim.active() == []
    for _ in range(10):
        sim.step_deployment()
        sim.step_replicasets()
        sim.make_ready(10**6)
    assert sim.converged("demo:2")


def test_revision_history_limit_prunes_oldest_empty_replicasets() -> None:
    d = make_deployment(1)
    d["spec"]["revisionHistoryLimit"] = 1
    old = []
    for rev in (1, 2, 3):
        rs = make_rs(0, name=f"web-old{rev}")
        rs["metadata"]["ownerReferences"] = [model.owner_ref(d)]
        rs["metadata"]["annotations"] = {REVISION: str(rev)}
        old.append(rs)
    deletes = [a.name for a in reconcile_deployment(d, old, [], NOW) if isinstance(a, Delete)]
    assert deletes == ["web-old1", "web-old2"]


def test_rollback_template_with_hash_label_reuses_replicaset_and_bumps_revision() -> None:
    d = make_deployment(2)
    h = deployment_template_hash(d)
    rs = make_rs(0, name=f"web-{h}")
    rs["metadata"]["labels"] = {"app": "web", HASH_LABEL: h}
    rs["metadata"]["annotations"] = {REVISION: "1"}
    rs["metadata"]["ownerReferences"] = [model.owner_ref(d)]
    rs["metadata"]["resourceVersion"] = "7"
    newer = make_rs(2, name="web-newer")
    newer["metadata"]["annotations"] = {REVISION: "2"}
    newer["metadata"]["ownerReferences"] = [model.owner_ref(d)]
    undo = copy.deepcopy(d)
    undo["spec"]["template"]["metadata"]["labels"][HASH_LABEL] = h
    actions = reconcile_deployment(undo, [rs, newer], [], NOW)
    assert not any(isinstance(a, Create) for a in actions)
    (update,) = [a for a in actions if isinstance(a, Update) and a.obj["metadata"]["name"] == f"web-{h}"]
    assert update.obj["metadata"]["annotations"][REVISION] == "3"
    assert update.obj["metadata"]["resourceVersion"] == "7"
    assert rs["metadata"]["annotations"][REVISION] == "1"  # the input is not mutated


def test_deployment_status_and_conditions() -> None:
    d = make_deployment(2)
    h = deployment_template_hash(d)
    rs = make_rs(2, name=f"web-{h}")
    rs["metadata"]["labels"] = {"app": "web", HASH_LABEL: h}
    rs["metadata"]["annotations"] = {REVISION: "1"}
    rs["metadata"]["ownerReferences"] = [model.owner_ref(d)]
    pods = [make_pod("a", rs), make_pod("b", rs)]
    actions = reconcile_deployment(d, [rs], pods, NOW)
    (patch,) = [a for a in actions if isinstance(a, Patch) and a.status]
    assert Patch("Deployment", "default", "web", {"metadata": {"annotations": {REVISION: "1"}}}) in actions
    status = patch.patch["status"]
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        "observedGeneration": 1,
        "replicas": 2,
        "updatedReplicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 2,
        "unavailableReplicas": 0,
    }
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("Available", "True", "MinimumReplicasAvailable"),
        ("Progressing", "True", "NewReplicaSetAvailable"),
    ]
    revised = {**d, "metadata": {**d["metadata"], "annotations": {REVISION: "1"}}}  # the revision annotation
    assert reconcile_deployment({**revised, "status": status}, [rs], pods, NOW + 5) == []


def test_facts_memo_recomputes_a_changed_pod_and_forgets_the_gone() -> None:
    memo = FactsMemo()
    rs = make_rs(2)
    a, b = make_pod("a", rs, ready=False), make_pod("b", rs, ready=True)
    first = memo([a, b])
    assert [f.ready for f in first] == [False, True]
    assert memo([a, b])[0] is first[0]  # the same objects: the same facts, not computed again
    a2 = make_pod("a", rs, ready=True)  # a new version of a (stored objects are replaced, not changed)
    assert [f.ready for f in memo([a2])] == [True]
    assert memo([b])[0] is not first[1]  # b was not in the last call: forgotten, computed afresh
