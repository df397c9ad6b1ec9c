"""Scheduler filters, scores and messages (orchestrator.scheduling)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from orchestrator import scheduling
from orchestrator.scheduling import (
    INSUFFICIENT_CPU,
    INSUFFICIENT_MEMORY,
    NOT_READY,
    SELECTOR_MISMATCH,
    TOO_MANY_PODS,
    UNSCHEDULABLE,
    Choice,
    NodeInfo,
    PodFacts,
    choose,
    fits_resources,
    fits_taints,
    schedule,
    select_node,
)

Obj = dict[str, Any]


def node(
    name: str, *, cpu: str = "2", memory: str = "4Gi", pods: str = "110", ready: str = "True", **spec: Any
) -> Obj:
    return {
        "kind": "Node",
        "metadata": {"name": name, "labels": spec.pop("labels", {})},
        "spec": spec,
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
            "conditions": [{"type": "Ready", "status": ready}],
        },
    }


def pod(
    name: str = "p",
    *,
    cpu: str | None = None,
    memory: str | None = None,
    owner: str = "",
    node_name: str = "",
    **spec: Any,
) -> Obj:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    meta: Obj = {"name": name, "namespace": "default"}
    if owner:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": owner, "uid": owner, "controller": True}]
    body = {"containers": [{"name": "c", "image": "i", "resources": {"requests": requests}}], **spec}
    if node_name:
        body["nodeName"] = node_name
    return {"kind": "Pod", "metadata": meta, "spec": body, "status": {"phase": "Running"}}


@pytest.mark.parametrize(
    ("the_node", "the_pod", "reason"),
    [
        pytest.param(node("n", ready="Unknown"), pod(), NOT_READY, id="not-ready"),
        pytest.param(node("n", unschedulable=True), pod(), UNSCHEDULABLE, id="cordoned"),
        pytest.param(node("n"), pod(nodeSelector={"disk": "ssd"}), SELECTOR_MISMATCH, id="selector"),
        pytest.param(
            node("n", labels={"disk": "ssd"}), pod(nodeSelector={"disk": "ssd"}), None, id="selector-ok"
        ),
        pytest.param(node("n", cpu="500m"), pod(cpu="1"), INSUFFICIENT_CPU, id="cpu"),
        pytest.param(node("n", memory="1Gi"), pod(memory="2Gi"), INSUFFICIENT_MEMORY, id="memory"),
        pytest.param(node("n", pods="0"), pod(), TOO_MANY_PODS, id="pods"),
        pytest.param(
            node("n", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
            pod(),
            "node(s) had untolerated taint {dedicated: gpu}",
            id="taint",
        ),
        pytest.param(
            node("n", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
            pod(
                tolerations=[
                    {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
                ]
            ),
            None,
            id="taint-tolerated",
        ),
        pytest.param(
            node("n", taints=[{"key": "x", "effect": "PreferNoSchedule"}]),
            pod(),
            None,
            id="prefer-no-schedule-ignored",
        ),
        pytest.param(
            node("n", taints=[{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]),
            pod(tolerations=[{"operator": "Exists"}]),
            None,
            id="tolerate-everything",
        ),
    ],
)
def test_filters(the_node: Obj, the_pod: Obj, reason: str | None) -> None:
    choice = select_node(the_pod, [the_node], {})
    if reason is None:
        assert choice.node_name == "n"
    else:
        assert choice.node_name is None and choice.reasons == Counter({reason: 1})


def test_usage_counts_bound_non_terminal_pods_only() -> None:
    n = node("n", cpu="1")
    bound = {
        "n": [
            pod("a", cpu="600m", node_name="n"),
            {**pod("b", cpu="600m", node_name="n"), "status": {"phase": "Succeeded"}},
        ]
    }
    assert select_node(pod(cpu="400m"), [n], bound).node_name == "n"
    assert select_node(pod(cpu="500m"), [n], bound).node_name is None


def test_resources_reports_both_cpu_and_memory() -> None:
    info = NodeInfo.of(node("n", cpu="1", memory="1Gi"))
    assert fits_resources(PodFacts.of(pod(cpu="2", memory="2Gi")), info) == (
        INSUFFICIENT_CPU,
        INSUFFICIENT_MEMORY,
    )


def test_taint_with_empty_value_message() -> None:
    info = NodeInfo.of(node("n", taints=[{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]))
    assert fits_taints(PodFacts.of(pod()), info) == (
        "node(s) had untolerated taint {node.kubernetes.io/unreachable: }",
    )


def test_unschedulable_message_in_kubernetes_format() -> None:
    nodes = [node(f"m{i}", memory="1Gi") for i in range(3)] + [node(f"d{i}", ready="False") for i in range(2)]
    choice = select_node(pod(memory="2Gi"), nodes, {})
    assert choice.node_name is None
    assert choice.message() == "0/5 nodes are available: 3 Insufficient memory, 2 node(s) were not ready."
    assert (
        Choice(None, Counter(), 0).message()
        == "0/0 nodes are available: no nodes available to schedule pods."
    )


def test_ten_replicas_spread_two_per_node_on_five_equal_nodes() -> None:
    nodes = [node(f"worker-{i}") for i in range(1, 6)]
    placed = schedule([pod(f"web-{i}", cpu="100m", memory="64Mi", owner="rs1") for i in range(10)], nodes, [])
    assert Counter(c.node_name for _, c in placed) == Counter({f"worker-{i}": 2 for i in range(1, 6)})


def test_spread_counts_existing_pods_of_the_same_owner() -> None:
    nodes = [node("a"), node("b")]
    existing = [
        pod("x", cpu="100m", owner="rs1", node_name="a"),
        pod("y", cpu="100m", owner="rs1", node_name="a"),
    ]
    placed = schedule([pod(f"p{i}", cpu="100m", owner="rs1") for i in range(2)], nodes, existing)
    assert [c.node_name for _, c in placed] == ["b", "b"]


def test_pods_without_requests_spread_by_count() -> None:
    placed = schedule([pod(f"p{i}") for i in range(6)], [node("a"), node("b"), node("c")], [])
    assert Counter(c.node_name for _, c in placed) == Counter({"a": 2, "b": 2, "c": 2})


def test_least_allocated_prefers_the_emptier_node() -> None:
    nodes = [node("a"), node("b")]
    assert select_node(pod(cpu="500m"), nodes, {"a": [pod("x", cpu="1", node_name="a")]}).node_name == "b"


def test_ties_break_by_node_name() -> None:
    nodes = [node("c"), node("a"), node("b")]
    assert select_node(pod(cpu="100m"), nodes, {}).node_name == "a"


def test_batch_accounts_for_earlier_placements() -> None:
    nodes = [node("a", cpu="1"), node("b", cpu="1")]
    placed = schedule([pod(f"p{i}", cpu="600m") for i in range(3)], nodes, [])
    assert [c.node_name for _, c in placed] == ["a", "b", None]
    assert placed[2][1].reasons == Counter({INSUFFICIENT_CPU: 2})


def test_choose_does_not_mutate_infos() -> None:
    infos = {"a": NodeInfo.of(node("a"))}
    choose(pod(cpu="1"), infos)
    assert infos["a"].used_cpu == 0 and infos["a"].pods == 0


def test_static_verdicts_are_shared_only_by_pods_of_the_same_shape() -> None:
    nodes = [
        node("a", labels={"pool": "x"}),
        node("b", labels={"pool": "y"}),
        node("c", ready="False", labels={"pool": "x"}),
        node("d", labels={"pool": "x"}, taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]),
    ]
    pending = [
        pod("x1", owner="rs", nodeSelector={"pool": "x"}),
        pod("y1", owner="rs", nodeSelector={"pool": "y"}),
        pod("any", owner="rs"),
        pod("x2", owner="rs", nodeSelector={"pool": "x"}),
        pod("tol", owner="rs", nodeSelector={"pool": "x"}, tolerations=[{"key": "k", "operator": "Exists"}]),
        pod("y2", owner="rs", nodeSelector={"pool": "y"}, cpu="3"),
    ]
    cached = schedule(pending, nodes, [])
    uncached = []  # the reference: choose without a cache, one pod after another
    reference = {n["metadata"]["name"]: NodeInfo.of(n) for n in nodes}
    for p in pending:
        choice = choose(p, reference)
        if choice.node_name is not None:
            reference[choice.node_name].add(p)
        uncached.append(choice)
    assert [c for _, c in cached] == uncached
    assert [c.node_name for _, c in cached] == ["a", "b", "a", "a", "d", None]
    assert cached[-1][1].message() == (
        "0/4 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) were not ready."
    )


def test_feasible_nodes_to_find_follows_kubernetes_adaptive_percentage() -> None:
    assert [scheduling.feasible_nodes_to_find(n) for n in (5, 99, 100, 1000, 5000, 10_000)] == [
        5, 99, 100, 420, 500, 500,
    ]  # fmt: skip


def test_a_large_cluster_scores_a_share_of_its_nodes_and_every_node_gets_its_turn() -> None:
    nodes = [node(f"n{i:04d}") for i in range(1000)]
    infos = scheduling.node_infos(nodes, [])
    first = scheduling.choose(pod("p"), infos, {}, start=0)
    assert first.examined == 420 and first.node_name is not None
    chosen: set[str | None] = set()
    start = 0
    for i in range(20):
        choice = scheduling.choose(pod(f"p{i}"), infos, {}, start)
        chosen.add(choice.node_name)
        start += choice.examined
    # Round the nodes from where the last search stopped: placements spread over the whole cluster.
    assert len(chosen) > 1 and any(
        name and name >= "n0500" for name in chosen
    )  # from start 0 alone: n0000 only
