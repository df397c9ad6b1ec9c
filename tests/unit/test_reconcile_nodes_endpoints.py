"""Pure reconcile functions of the node lifecycle and endpoints controllers."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import model
from orchestrator.controllers.base import Create, Delete, Emit, Patch, Update
from orchestrator.controllers.endpoints import reconcile_endpoints
from orchestrator.controllers.nodelifecycle import UNREACHABLE, reconcile_nodes

Obj = dict[str, Any]
T0 = 1_800_000_000.0


def node(
    name: str = "w1", heartbeat: float = T0, status: str = "True", taints: list[Obj] | None = None
) -> Obj:
    return {
        "kind": "Node",
        "metadata": {"name": name, "creationTimestamp": model.rfc3339(T0 - 1000)},
        "spec": {"taints": taints} if taints else {},
        "status": {
            "conditions": [
                {"type": "Ready", "status": status, "lastHeartbeatTime": model.rfc3339_micro(heartbeat)}
            ]
        },
    }


def pod(
    name: str,
    node_name: str = "w1",
    *,
    ready: bool = True,
    terminating_at: float | None = None,
    labels: Obj | None = None,
    mappings: list[Obj] | None = None,
) -> Obj:
    p: Obj = {
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"u-{name}",
            "labels": labels or {"app": "web"},
        },
        "spec": {"nodeName": node_name},
        "status": {
            "phase": "Running",
            "hostIP": "127.0.1.1",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }
    if mappings is not None:
        p["status"]["portMappings"] = mappings
    if terminating_at is not None:
        p["metadata"]["deletionTimestamp"] = model.rfc3339(terminating_at)
    return p


def kinds(actions: list[Any]) -> list[str]:
    out = []
    for a in actions:
        match a:
            case Patch(kind, _, name, _, status):
                out.append(f"patch{'-status' if status else ''} {kind}/{name}")
            case Delete(kind, _, name, _, force):
                out.append(f"delete{'-force' if force else ''} {kind}/{name}")
            case Emit(_, reason, _, _):
                out.append(f"emit {reason}")
    return out


@pytest.mark.parametrize(
    ("silence", "expected"),
    [
        pytest.param(1.0, [], id="fresh"),
        pytest.param(3.0, [], id="at-grace"),
        pytest.param(
            3.5,
            ["patch-status Node/w1", "emit NodeNotReady", "patch Node/w1", "patch-status Pod/a"],
            id="not-ready",
        ),
        pytest.param(
            5.5,
            [
                "patch-status Node/w1",
                "emit NodeNotReady",
                "patch Node/w1",
                "emit TaintManagerEviction",
                "delete-force Pod/a",
            ],
            id="evict",
        ),
    ],
)
def test_node_lifecycle_timings(silence: float, expected: list[str]) -> None:
    actions = reconcile_nodes([node()], [pod("a")], T0 + silence, grace=3.0, toleration=2.0)
    assert kinds(actions) == expected


def test_unknown_node_gets_condition_and_unreachable_taint() -> None:
    actions = reconcile_nodes([node()], [], T0 + 4, grace=3.0, toleration=2.0)
    status = next(a for a in actions if isinstance(a, Patch) and a.status)
    (cond,) = status.patch["status"]["conditions"]
    assert (cond["status"], cond["reason"], cond["message"]) == (
        "Unknown",
        "NodeStatusUnknown",
        "Kubelet stopped posting node status.",
    )
    assert cond["lastHeartbeatTime"] == model.rfc3339_micro(T0)
    taint = next(a for a in actions if isinstance(a, Patch) and not a.status)
    assert [(t["key"], t["effect"]) for t in taint.patch["spec"]["taints"]] == [(UNREACHABLE, "NoSchedule")]


def test_already_unknown_node_is_not_patched_again() -> None:
    taint = {"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": model.rfc3339(T0)}
    n = node(status="Unknown", taints=[taint])
    assert reconcile_nodes([n], [pod("a", ready=False)], T0 + 4, grace=3.0, toleration=2.0) == []


def test_ready_node_loses_its_unreachable_taint() -> None:
    n = node(taints=[{"key": UNREACHABLE, "effect": "NoSchedule"}, {"key": "mine", "effect": "NoSchedule"}])
    (patch,) = reconcile_nodes([n], [], T0 + 1, grace=3.0, toleration=2.0)
    assert isinstance(patch, Patch) and patch.patch == {
        "spec": {"taints": [{"key": "mine", "effect": "NoSchedule"}]}
    }


def test_terminating_pod_on_silent_node_is_forced_after_its_grace() -> None:
    pods = [pod("a", terminating_at=T0 + 3.8), pod("b", terminating_at=T0 + 60, ready=False)]
    taint = {"key": UNREACHABLE, "effect": "NoSchedule"}
    actions = reconcile_nodes(
        [node(status="Unknown", taints=[taint])], pods, T0 + 4, grace=3.0, toleration=2.0
    )
    assert kinds(actions) == ["delete-force Pod/a"]


def test_not_before_protects_nodes_after_a_controller_restart() -> None:
    assert (
        reconcile_nodes([node()], [pod("a")], T0 + 100, grace=3.0, toleration=2.0, not_before=T0 + 99) == []
    )


def test_pods_on_missing_nodes_are_deleted() -> None:
    assert kinds(reconcile_nodes([node()], [pod("a", node_name="gone")], T0, grace=3.0, toleration=2.0)) == [
        "delete-force Pod/a"
    ]


# ---------------------------------------------------------------- endpoints


def service(target: Any = "http", selector: Obj | None = None) -> Obj:
    return {
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "labels": {"tier": "front"}},
        "spec": {
            "selector": {"app": "web"} if selector is None else selector,
            "ports": [{"name": "web", "port": 80, "targetPort": target}],
        },
    }


def mapping(port: int, ip: str = "127.0.1.1") -> list[Obj]:
    return [{"name": "http", "containerPort": 8080, "hostPort": port, "hostIP": ip}]


def test_endpoints_subsets_sorted_with_ready_and_terminating() -> None:
    pods = [
        pod("c", mappings=mapping(31002, "127.0.1.2")),
        pod("a", mappings=mapping(31001, "127.0.1.2")),
        pod("b", ready=False, mappings=mapping(31000, "127.0.1.1")),
        pod("t", terminating_at=T0, mappings=mapping(31003, "127.0.1.3")),
        pod("no-ports"),
        pod("other", labels={"app": "db"}, mappings=mapping(31004)),
    ]
    (create,) = reconcile_endpoints(service(), pods, None)
    assert isinstance(create, Create)
    ep = create.obj
    assert ep["metadata"] == {"name": "web", "namespace": "default", "labels": {"tier": "front"}}
    summary = [
        (
            "ready" if "addresses" in s else "not-ready",
            (s.get("addresses") or s.get("notReadyAddresses"))[0]["ip"],
            s["ports"][0]["port"],
            (s.get("addresses") or s.get("notReadyAddresses"))[0].get("terminating", False),
        )
        for s in ep["subsets"]
    ]
    assert summary == [
        ("not-ready", "127.0.1.1", 31000, False),
        ("ready", "127.0.1.2", 31001, False),
        ("ready", "127.0.1.2", 31002, False),
        ("not-ready", "127.0.1.3", 31003, True),
    ]
    first = ep["subsets"][1]
    assert first["addresses"][0]["targetRef"] == {
        "kind": "Pod",
        "name": "a",
        "namespace": "default",
        "uid": "u-a",
    }
    assert first["addresses"][0]["nodeName"] == "w1"
    assert first["ports"] == [{"port": 31001, "protocol": "TCP", "name": "web"}]


@pytest.mark.parametrize("target", [8080, "8080", "http", None])
def test_endpoints_target_port_forms(target: Any) -> None:
    svc = service(target)
    if target is None:
        svc["spec"]["ports"] = [{"name": "web", "port": 8080}]
    (create,) = reconcile_endpoints(svc, [pod("a", mappings=mapping(31001))], None)
    assert isinstance(create, Create) and create.obj["subsets"][0]["ports"][0]["port"] == 31001


def test_endpoints_unchanged_is_not_written_and_changed_is_updated_with_cas() -> None:
    pods = [pod("a", mappings=mapping(31001))]
    (create,) = reconcile_endpoints(service(), pods, None)
    assert isinstance(create, Create)
    current = {**create.obj, "metadata": {**create.obj["metadata"], "resourceVersion": "9"}}
    assert reconcile_endpoints(service(), list(reversed(pods)), current) == []
    (update,) = reconcile_endpoints(service(), [pod("a", ready=False, mappings=mapping(31001))], current)
    assert isinstance(update, Update) and update.obj["metadata"]["resourceVersion"] == "9"
    assert "addresses" not in update.obj["subsets"][0]


def test_endpoints_of_deleted_service_are_deleted_and_selectorless_left_alone() -> None:
    ep = {"kind": "Endpoints", "metadata": {"name": "web", "namespace": "default"}, "subsets": []}
    assert reconcile_endpoints(None, [], ep) == [Delete("Endpoints", "default", "web")]
    assert reconcile_endpoints(service(selector={}), [pod("a", mappings=mapping(1))], ep) == []


def test_the_stores_heartbeats_count_over_the_nodes_own_stamp() -> None:
    # The Node says its last heartbeat was T0; the store's batched liveness says T0 + 10.
    assert (
        reconcile_nodes([node()], [pod("a")], T0 + 11, grace=3.0, toleration=2.0, beats={"w1": T0 + 10}) == []
    )
    # Silent by the store's time too: judged from it, not from the Node's older stamp.
    actions = reconcile_nodes(
        [node()], [pod("a")], T0 + 13.5, grace=3.0, toleration=2.0, beats={"w1": T0 + 10}
    )
    assert kinds(actions) == [
        "patch-status Node/w1",
        "emit NodeNotReady",
        "patch Node/w1",
        "patch-status Pod/a",
    ]
