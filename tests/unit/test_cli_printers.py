"""Tables of `skiff get` for each kind, with fixed objects and a fixed `now`."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from orchestrator import tables
from orchestrator.cli import printers as p
from orchestrator.model import parse_time

NOW = parse_time("2026-11-28T05:00:00Z")
T_5S = "2026-11-28T04:59:55Z"
T_3M = "2026-11-28T04:57:00Z"
T_5H = "2026-11-28T00:00:00Z"


def meta(name: str, created: str = T_5S, **extra: object) -> dict:
    return {"name": name, "namespace": "default", "creationTimestamp": created, **extra}


def pod(name: str = "demo-abc", *, statuses: list | None = None, phase: str = "Running", **kw: Any) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(name, labels={"app": "demo"}, **kw),
        "spec": {"nodeName": "worker-1", "containers": [{"name": "demo", "image": "x"}]},
        "status": {
            "phase": phase,
            "hostIP": "127.0.2.1",
            "podIP": "127.0.2.1",
            "portMappings": [{"containerPort": 5005, "hostPort": 40001, "hostIP": "127.0.2.1"}],
            "containerStatuses": statuses if statuses is not None else [running(True)],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def running(ready: bool, restarts: int = 0) -> dict:
    return {
        "name": "demo",
        "ready": ready,
        "restartCount": restarts,
        "state": {"running": {"startedAt": T_3M}},
    }


def waiting(reason: str) -> dict:
    return {"name": "demo", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": reason}}}


def terminated(reason: str = "", exit_code: int = 0, signal: int = 0) -> dict:
    t: dict = {"exitCode": exit_code}
    if reason:
        t["reason"] = reason
    if signal:
        t["signal"] = signal
    return {"name": "demo", "ready": False, "restartCount": 0, "state": {"terminated": t}}


@pytest.mark.parametrize(
    ("obj", "want"),
    [
        pytest.param(pod(), "Running", id="running"),
        pytest.param(pod(statuses=[], phase="Pending"), "Pending", id="pending-no-status"),
        pytest.param(
            pod(statuses=[waiting("ContainerCreating")], phase="Pending"), "ContainerCreating", id="creating"
        ),
        pytest.param(pod(statuses=[waiting("CrashLoopBackOff")]), "CrashLoopBackOff", id="crashloop"),
        pytest.param(pod(statuses=[terminated("Completed")], phase="Succeeded"), "Completed", id="completed"),
        pytest.param(pod(statuses=[terminated("Error", 1)], phase="Failed"), "Error", id="error"),
        pytest.param(pod(statuses=[terminated("OOMKilled", 137)]), "OOMKilled", id="oomkilled"),
        pytest.param(pod(statuses=[terminated(exit_code=3)]), "ExitCode:3", id="exitcode"),
        pytest.param(pod(statuses=[terminated(signal=9)]), "Signal:9", id="signal"),
        pytest.param(pod(deletionTimestamp=T_5S), "Terminating", id="terminating"),
        pytest.param({"metadata": {"name": "x"}}, "Pending", id="empty"),
    ],
)
def test_pod_status(obj: dict, want: str) -> None:
    assert tables.pod_status(obj) == want


def test_pod_status_completed_with_running_container_is_running() -> None:
    obj = pod(statuses=[terminated("Completed"), running(True)])
    assert tables.pod_status(obj) == "Running"


def test_pods_table_and_wide() -> None:
    objs = [pod("b", statuses=[running(True, restarts=2)]), pod("a", statuses=[waiting("CrashLoopBackOff")])]
    assert p.table("Pod", objs, NOW).splitlines() == [
        "NAME   READY   STATUS             RESTARTS   AGE",
        "a      0/1     CrashLoopBackOff   0          5s",
        "b      1/1     Running            2          5s",
    ]
    wide = p.table("Pod", [pod("a")], NOW, p.TableOptions(wide=True)).splitlines()
    assert wide[0].split() == [
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED",
        "NODE",
        "READINESS",
        "GATES",
    ]
    assert wide[1].split() == [
        "a",
        "1/1",
        "Running",
        "0",
        "5s",
        "127.0.2.1:40001",
        "worker-1",
        "<none>",
        "<none>",
    ]


def test_restarts_with_last_finish_time() -> None:
    cs = running(True, restarts=3)
    cs["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": T_3M}}
    assert tables.pod_restarts(pod(statuses=[cs]), NOW) == "3 (3m ago)"


def test_all_namespaces_labels_no_headers() -> None:
    opts = p.TableOptions(all_namespaces=True, show_labels=True, no_headers=True)
    assert p.table("Pod", [pod("a")], NOW, opts).split() == [
        "default",
        "a",
        "1/1",
        "Running",
        "0",
        "5s",
        "app=demo",
    ]


def deployment() -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta("demo", T_5H),
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "demo"}},
            "template": {
                "spec": {"containers": [{"name": "demo", "image": "jweissig/alpine-k8s-pod-lb-demo"}]}
            },
        },
        "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }


def test_deployments_table() -> None:
    assert p.table("Deployment", [deployment()], NOW).splitlines() == [
        "NAME   READY   UP-TO-DATE   AVAILABLE   AGE",
        "demo   2/3     3            2           5h",
    ]
    wide = p.table("Deployment", [deployment()], NOW, p.TableOptions(wide=True)).splitlines()
    assert wide[0].split()[-5:] == ["CONTAINERS", "IMAGES", "SELECTOR", "DESIRED", "CURRENT"]
    assert wide[1].split()[-5:] == ["demo", "jweissig/alpine-k8s-pod-lb-demo", "app=demo", "3", "3"]


def test_replicasets_table() -> None:
    rs = {
        "kind": "ReplicaSet",
        "metadata": meta("demo-x", T_3M),
        "spec": {"replicas": 2},
        "status": {"replicas": 2, "readyReplicas": 1},
    }
    assert p.table("ReplicaSet", [rs], NOW).splitlines()[1].split() == ["demo-x", "2", "2", "1", "3m"]


@pytest.mark.parametrize(
    ("spec", "status", "cells"),
    [
        pytest.param(
            {
                "type": "NodePort",
                "clusterIP": "127.1.0.5",
                "ports": [{"port": 5005, "nodePort": 31234, "protocol": "TCP"}],
            },
            {},
            ["NodePort", "127.1.0.5", "<none>", "5005:31234/TCP"],
            id="nodeport",
        ),
        pytest.param(
            {"clusterIP": "127.1.0.6", "ports": [{"port": 80}, {"port": 443}]},
            {},
            ["ClusterIP", "127.1.0.6", "<none>", "80/TCP,443/TCP"],
            id="clusterip",
        ),
        pytest.param(
            {"type": "LoadBalancer", "clusterIP": "127.1.0.7", "ports": [{"port": 80, "nodePort": 30001}]},
            {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}},
            ["LoadBalancer", "127.1.0.7", "127.0.0.1", "80:30001/TCP"],
            id="lb",
        ),
        pytest.param(
            {"type": "LoadBalancer", "ports": [{"port": 80}]},
            {},
            ["LoadBalancer", "<none>", "<pending>", "80/TCP"],
            id="lb-pending",
        ),
    ],
)
def test_services(spec: dict, status: dict, cells: list[str]) -> None:
    svc = {"kind": "Service", "metadata": meta("demo"), "spec": spec, "status": status}
    assert p.table("Service", [svc], NOW).splitlines()[1].split() == ["demo", *cells, "5s"]


def test_endpoints_truncates_after_three() -> None:
    subsets = [{"addresses": [{"ip": f"127.0.2.{i}"}], "ports": [{"port": 40000 + i}]} for i in range(1, 5)]
    ep = {"kind": "Endpoints", "metadata": meta("demo"), "subsets": subsets}
    assert tables.endpoint_addresses(ep) == "127.0.2.1:40001,127.0.2.2:40002,127.0.2.3:40003 + 1 more..."
    empty = {"kind": "Endpoints", "metadata": meta("none"), "subsets": [{"notReadyAddresses": [{"ip": "x"}]}]}
    assert p.table("Endpoints", [empty], NOW).splitlines()[1].split() == ["none", "<none>", "5s"]


def test_ingress_address_from_config_then_status() -> None:
    ing: dict[str, Any] = {
        "kind": "Ingress",
        "metadata": meta("basic-ingress"),
        "spec": {"backend": {"serviceName": "demo"}},
    }
    line = p.table("Ingress", [ing], NOW, p.TableOptions(lb_address="127.0.0.1:8080")).splitlines()[1]
    assert line.split() == ["basic-ingress", "<none>", "*", "127.0.0.1:8080", "80", "5s"]
    ing["status"] = {"loadBalancer": {"ingress": [{"ip": "127.0.0.9"}]}}
    ing["spec"]["rules"] = [{"host": "a.example"}, {"host": "b.example"}]
    assert p.table("Ingress", [ing], NOW).splitlines()[1].split()[2:4] == ["a.example,b.example", "127.0.0.9"]


def node(ready: str = "True", unschedulable: bool = False) -> dict:
    return {
        "kind": "Node",
        "metadata": {
            "name": "worker-1",
            "creationTimestamp": T_5H,
            "labels": {"node-role.kubernetes.io/worker": ""},
        },
        "spec": {"unschedulable": unschedulable},
        "status": {
            "conditions": [{"type": "Ready", "status": ready}],
            "addresses": [{"type": "InternalIP", "address": "127.0.2.1"}],
            "nodeInfo": {
                "kubeletVersion": "skiff-0.1.0",
                "osImage": "Linux",
                "kernelVersion": "6.1",
                "containerRuntimeVersion": "skiff-shim://1",
            },
        },
    }


@pytest.mark.parametrize(
    ("obj", "status"),
    [
        pytest.param(node(), "Ready", id="ready"),
        pytest.param(node("False"), "NotReady", id="notready"),
        pytest.param(node("Unknown"), "NotReady", id="unknown reads NotReady, as in kubectl"),
        pytest.param(node(unschedulable=True), "Ready,SchedulingDisabled", id="cordoned"),
    ],
)
def test_node_status(obj: dict, status: str) -> None:
    assert tables.node_status(obj) == status


def test_nodes_table_wide() -> None:
    lines = p.table("Node", [node()], NOW, p.TableOptions(wide=True)).splitlines()
    assert lines[0].split() == [
        "NAME",
        "STATUS",
        "ROLES",
        "AGE",
        "VERSION",
        "INTERNAL-IP",
        "OS-IMAGE",
        "KERNEL-VERSION",
        "CONTAINER-RUNTIME",
    ]
    assert lines[1].split() == [
        "worker-1",
        "Ready",
        "worker",
        "5h",
        "skiff-0.1.0",
        "127.0.2.1",
        "Linux",
        "6.1",
        "skiff-shim://1",
    ]


def test_events_sorted_by_time() -> None:
    def ev(name: str, when: str, reason: str) -> dict:
        return {
            "kind": "Event",
            "metadata": meta(name),
            "involvedObject": {"kind": "Pod", "name": "demo-abc"},
            "reason": reason,
            "message": "multi\nline",
            "type": "Normal",
            "lastTimestamp": when,
        }

    lines = p.table("Event", [ev("b", T_5S, "Started"), ev("a", T_3M, "Scheduled")], NOW).splitlines()
    assert lines[0] == "LAST SEEN   TYPE     REASON      OBJECT         MESSAGE"
    assert lines[1].split() == ["3m", "Normal", "Scheduled", "pod/demo-abc", "multi", "line"]
    assert lines[2].split()[0] == "5s"


def test_configmaps_and_kind_prefix() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("cfg"), "data": {"a": "1", "b": "2"}}
    assert p.table("ConfigMap", [cm], NOW, p.TableOptions(with_kind=True)).splitlines()[1].split() == [
        "configmap/cfg",
        "2",
        "5s",
    ]


@pytest.mark.parametrize(
    ("obj", "name"),
    [
        pytest.param(deployment(), "deployment.apps/demo", id="deployment"),
        pytest.param(pod("x"), "pod/x", id="pod"),
        pytest.param(
            {"apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "i"}},
            "ingress.extensions/i",
            id="ingress-v1beta1",
        ),
        pytest.param(
            {"kind": "Ingress", "metadata": {"name": "i"}},
            "ingress.networking.k8s.io/i",
            id="ingress-default",
        ),
    ],
)
def test_object_name(obj: dict, name: str) -> None:
    assert p.object_name(obj) == name


def test_plural_names() -> None:
    assert p.plural("Deployment") == "deployments.apps"
    assert p.plural("Endpoints") == "endpoints"
    assert p.plural("Pod") == "pods"


def test_yaml_and_json_single_and_list() -> None:
    objs = [pod("a"), pod("b")]
    assert yaml.safe_load(p.to_yaml(objs[:1], single=True))["metadata"]["name"] == "a"
    listed = json.loads(p.to_json(objs, single=False))
    assert listed["kind"] == "List" and [i["metadata"]["name"] for i in listed["items"]] == ["a", "b"]


def test_format_table_pads_three_spaces_without_trailing_space() -> None:
    assert p.format_table(["A", "LONGER"], [["xx", "y"]]) == "A    LONGER\nxx   y"
