"""`skiff describe` text for pods, nodes, deployments and services (fixed objects, fixed now)."""

from __future__ import annotations

from orchestrator.cli import describe as d
from orchestrator.model import parse_time

NOW = parse_time("2026-11-28T05:00:00Z")
T = "2026-11-28T04:59:50Z"


def event(kind: str, name: str, reason: str, ns: str = "default", count: int = 1) -> dict:
    return {
        "kind": "Event",
        "metadata": {"name": f"{name}.1", "namespace": ns},
        "involvedObject": {"kind": kind, "name": name, "namespace": ns},
        "reason": reason,
        "message": f"{reason} happened",
        "type": "Normal",
        "source": {"component": "default-scheduler"},
        "firstTimestamp": "2026-11-28T04:58:00Z",
        "lastTimestamp": T,
        "count": count,
    }


POD = {
    "kind": "Pod",
    "metadata": {
        "name": "demo-abc",
        "namespace": "default",
        "labels": {"app": "demo"},
        "ownerReferences": [{"kind": "ReplicaSet", "name": "demo-rs", "controller": True}],
    },
    "spec": {
        "nodeName": "worker-1",
        "containers": [
            {
                "name": "demo",
                "image": "jweissig/alpine-k8s-pod-lb-demo",
                "ports": [{"containerPort": 5005}],
                "env": [{"name": "GREETING", "value": "hi"}],
                "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": "500m"}},
                "livenessProbe": {"httpGet": {"path": "/", "port": 5005}},
            }
        ],
    },
    "status": {
        "phase": "Running",
        "hostIP": "127.0.2.1",
        "startTime": T,
        "portMappings": [{"containerPort": 5005, "hostPort": 40001, "hostIP": "127.0.2.1"}],
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [
            {
                "name": "demo",
                "ready": True,
                "restartCount": 1,
                "state": {"running": {"startedAt": T}},
                "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": T}},
            }
        ],
    },
}


def test_describe_pod_sections() -> None:
    text = d.describe_pod(
        POD, [event("Pod", "demo-abc", "Scheduled", count=3), event("Pod", "other", "X")], NOW
    )
    for needle in (
        "Node:                   worker-1/127.0.2.1",
        "Start Time:             Sat, 28 Nov 2026 04:59:50 +0000",
        "Status:                 Running",
        "IP:                     127.0.2.1:40001",
        "Controlled By:          ReplicaSet/demo-rs",
        "    State:              Running",
        "    Last State:         Terminated",
        "      Reason:           OOMKilled",
        "    Restart Count:      1",
        "      cpu:              500m",
        "    Liveness:           http-get http://:5005/",
        "      GREETING:         hi",
        "Conditions:",
        "Scheduled",
        "10s (x3 over 2m)",
    ):
        assert needle in text, needle
    assert "other" not in text


def test_describe_node_lists_pods_and_allocation() -> None:
    node = {
        "kind": "Node",
        "metadata": {"name": "worker-1", "creationTimestamp": T},
        "spec": {"unschedulable": True},
        "status": {
            "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "addresses": [{"type": "InternalIP", "address": "127.0.2.1"}],
            "isolation": "none",
        },
    }
    text = d.describe_node(node, [POD], [event("Node", "worker-1", "NodeReady", ns="")], NOW)
    for needle in ("Unschedulable:          true", "InternalIP:", "Capacity:", "Allocatable:", "Isolation:              none",
                   "Non-terminated Pods:    (1 in total)", "250m (12%)", "64Mi (1%)", "NodeReady"):  # fmt: skip
        assert needle in text, needle


def test_describe_deployment_replicas_line_and_replicasets() -> None:
    template = {
        "metadata": {"labels": {"app": "demo"}},
        "spec": {"containers": [{"name": "demo", "image": "v2"}]},
    }
    dep = {
        "kind": "Deployment",
        "metadata": {"name": "demo", "namespace": "default", "uid": "u1"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "demo"}}, "template": template},
        "status": {"replicas": 1, "updatedReplicas": 1, "availableReplicas": 1},
    }

    def rs(name: str, image: str, rev: int, replicas: int) -> dict:
        t = {
            "metadata": {"labels": {"app": "demo", "pod-template-hash": name}},
            "spec": {"containers": [{"name": "demo", "image": image}]},
        }
        return {
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "annotations": {"deployment.kubernetes.io/revision": str(rev)},
                "ownerReferences": [{"kind": "Deployment", "name": "demo", "uid": "u1", "controller": True}],
            },  # fmt: skip
            "spec": {"replicas": replicas, "template": t},
            "status": {"replicas": replicas},
        }

    text = d.describe_deployment(dep, [rs("demo-old", "v1", 1, 1), rs("demo-new", "v2", 2, 1)], [], NOW)
    assert "Replicas:               1 desired | 1 updated | 1 total | 1 available | 0 unavailable" in text
    assert "RollingUpdateStrategy:  25% max unavailable, 25% max surge" in text
    assert "NewReplicaSet:          demo-new (1/1 replicas created)" in text
    assert "OldReplicaSets:         demo-old (1/1 replicas created)" in text
    assert "Events:                 <none>" in text


def test_describe_service() -> None:
    svc = {
        "kind": "Service",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": {
            "type": "NodePort",
            "clusterIP": "127.1.0.5",
            "selector": {"app": "demo"},
            "ports": [{"port": 5005, "targetPort": 5005, "nodePort": 31234}],
        },  # fmt: skip
    }
    ep = {"subsets": [{"addresses": [{"ip": "127.0.2.1"}], "ports": [{"port": 40001}]}]}
    text = d.describe_service(svc, ep, [], NOW)
    for needle in ("Selector:               app=demo", "Type:                   NodePort", "IP:                     127.1.0.5",
                   "Port:                   <unset>  5005/TCP", "TargetPort:             5005/TCP",
                   "NodePort:               <unset>  31234/TCP", "Endpoints:              127.0.2.1:40001",
                   "Session Affinity:       None"):  # fmt: skip
        assert needle in text, needle
