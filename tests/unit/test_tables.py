"""Kubernetes-shaped Tables of each kind: column definitions, and one cell per column in every row."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import tables
from orchestrator.model import parse_time

NOW = parse_time("2026-11-28T05:00:00Z")
T_5S = "2026-11-28T04:59:55Z"
Obj = dict[str, Any]


def meta(name: str = "x") -> Obj:
    return {"name": name, "namespace": "default", "creationTimestamp": T_5S, "labels": {"app": "demo"}}


POD: Obj = {
    "kind": "Pod",
    "metadata": meta("demo-abc"),
    "spec": {"nodeName": "worker-1", "containers": [{"name": "demo", "image": "demo:1"}]},
    "status": {
        "phase": "Running",
        "hostIP": "127.0.2.1",
        "portMappings": [{"containerPort": 5005, "hostPort": 40001, "hostIP": "127.0.2.1"}],
        "containerStatuses": [{"name": "demo", "ready": True, "restartCount": 0, "state": {"running": {}}}],
    },
}
DEPLOYMENT: Obj = {
    "kind": "Deployment",
    "metadata": meta("demo"),
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "demo"}},
        "template": {"spec": {"containers": [{"name": "demo", "image": "demo:1"}]}},
    },
    "status": {"replicas": 4, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
}
REPLICASET: Obj = {
    "kind": "ReplicaSet",
    "metadata": meta("demo-x"),
    "spec": {"replicas": 2},
    "status": {"replicas": 2},
}
SERVICE: Obj = {
    "kind": "Service",
    "metadata": meta("demo"),
    "spec": {"clusterIP": "127.1.0.5", "ports": [{"port": 80}]},
}
ENDPOINTS: Obj = {"kind": "Endpoints", "metadata": meta("demo"), "subsets": []}
INGRESS: Obj = {"kind": "Ingress", "metadata": meta("web"), "spec": {"rules": [{"host": "a.example"}]}}
NODE: Obj = {
    "kind": "Node",
    "metadata": {"name": "worker-1", "creationTimestamp": T_5S},
    "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1"}},
}
EVENT: Obj = {
    "kind": "Event",
    "metadata": meta("demo-abc.1"),
    "involvedObject": {"kind": "Pod", "name": "demo-abc"},
    "reason": "Started",
    "message": "Started container",
    "lastTimestamp": T_5S,
    "count": 2,
}
CONFIGMAP: Obj = {"kind": "ConfigMap", "metadata": meta("cfg"), "data": {"a": "1"}}
NAMESPACE: Obj = {"kind": "Namespace", "metadata": meta("team-a"), "status": {"phase": "Active"}}
SLICE: Obj = {
    "kind": "EndpointSlice",
    "metadata": meta("demo-0"),
    "addressType": "IPv4",
    "endpoints": [{"addresses": ["127.0.2.1"]}],
    "ports": [{"port": 5005}],
}
OBJECTS: list[Obj] = [
    SLICE,
    POD,
    DEPLOYMENT,
    REPLICASET,
    SERVICE,
    ENDPOINTS,
    INGRESS,
    NODE,
    EVENT,
    CONFIGMAP,
    NAMESPACE,
]


def test_every_kind_has_columns() -> None:
    assert sorted(tables.COLUMNS) == sorted(o["kind"] for o in OBJECTS)


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: o["kind"])
@pytest.mark.parametrize("wide", [False, True], ids=["default", "wide"])
def test_one_cell_per_column(obj: Obj, wide: bool) -> None:
    kind = obj["kind"]
    assert len(tables.cells(kind, obj, NOW, wide=wide)) == len(tables.columns(kind, wide))


@pytest.mark.parametrize("kind", sorted(tables.COLUMNS))
def test_default_columns_come_first_and_one_is_the_name(kind: str) -> None:
    priorities = [c.priority for c in tables.columns(kind)]
    assert priorities == sorted(priorities) and set(priorities) <= {0, 1}
    assert [c.priority for c in tables.columns(kind) if c.format == "name"] == [1 if kind == "Event" else 0]


@pytest.mark.parametrize(
    ("kind", "wide", "headers"),
    [
        pytest.param("Pod", False, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], id="pod"),
        pytest.param(
            "Pod",
            True,
            ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
            id="pod-wide",
        ),
        pytest.param(
            "Service", False, ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"], id="service"
        ),
        pytest.param(
            "Deployment", False, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"], id="deployment"
        ),
        pytest.param("Event", False, ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], id="event"),
    ],
)
def test_column_names_are_kubernetes_and_print_as_kubectl(kind: str, wide: bool, headers: list[str]) -> None:
    assert [c.name.upper() for c in tables.columns(kind, wide)] == headers
    assert tables.columns("Pod")[0].name == "Name"


def test_table_is_a_kubernetes_table() -> None:
    t = tables.table("Deployment", [DEPLOYMENT], NOW)
    assert (t["kind"], t["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert t["columnDefinitions"][0] == {
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": "Name of the object, unique within its namespace",
        "priority": 0,
    }
    assert [(c["name"], c["priority"]) for c in t["columnDefinitions"]] == [
        ("Name", 0),
        ("Ready", 0),
        ("Up-to-date", 0),
        ("Available", 0),
        ("Age", 0),
        ("Containers", 1),
        ("Images", 1),
        ("Selector", 1),
        ("Desired", 1),
        ("Current", 1),
    ]
    assert t["rows"] == [
        {"cells": ["demo", "2/3", 3, 2, "5s", "demo", "demo:1", "app=demo", 3, 4], "object": DEPLOYMENT}
    ]


def test_integer_columns_hold_integers() -> None:
    for obj in OBJECTS:
        row = tables.cells(obj["kind"], obj, NOW)
        for column, cell in zip(tables.columns(obj["kind"]), row, strict=True):
            assert isinstance(cell, int) == (column.type == "integer"), (obj["kind"], column.name)


def test_table_without_wide_columns() -> None:
    t = tables.table("Node", [NODE], NOW, wide=False)
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Status", "Roles", "Age", "Version"]
    assert t["rows"][0]["cells"] == ["worker-1", "Ready", "<none>", "5s", "v1"]


def test_rows_keep_the_given_order() -> None:
    pods = [{**POD, "metadata": meta(n)} for n in ("b", "a", "c")]
    assert [r["cells"][0] for r in tables.table("Pod", pods, NOW)["rows"]] == ["b", "a", "c"]


def test_ingress_address_is_the_balancer_when_known() -> None:
    assert tables.cells("Ingress", INGRESS, NOW, lb_address="127.0.0.1:8080")[3] == "127.0.0.1:8080"
    assert tables.cells("Ingress", INGRESS, NOW)[3] == ""


def test_event_wide_cells() -> None:
    assert tables.cells("Event", EVENT, NOW) == [
        "5s",
        "Normal",
        "Started",
        "pod/demo-abc",
        "Started container",
        "",
        "",
        "5s",
        2,
        "demo-abc.1",
    ]


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match="no table for kind Secret"):
        tables.cells("Secret", {"metadata": {}}, NOW)
