"""orchestrator.validation: Kubernetes' field rules, each bad case named by its exact path and message,
and no input shape, size or character ever escaping as anything but a one-line FieldError."""

from __future__ import annotations

import copy
import json
import pickle
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from orchestrator import validation as v
from orchestrator.validation import FieldError, validate_object

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DELETE = object()  # a patch value: remove the field


# ---------------------------------------------------------------- helpers


def _steps(path: str) -> list[str | int]:
    """'spec.containers[0].name' -> ['spec', 'containers', 0, 'name']."""
    return [int(p[1:-1]) if p.startswith("[") else p for p in re.findall(r"\[\d+\]|[^.\[\]]+", path)]


def patched(obj: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of `obj` with each dotted path set to its value (DELETE removes it)."""
    out = copy.deepcopy(obj)
    for path, value in changes.items():
        *parents, last = _steps(path)
        node: Any = out
        for step in parents:
            if isinstance(step, str) and step not in node:
                node[step] = {}
            node = node[step]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return out


def refused(obj: Any) -> FieldError:
    with pytest.raises(FieldError) as info:
        validate_object(obj)
    return info.value


def check_error(e: FieldError, path: str, phrase: str) -> None:
    assert e.path == path, str(e)
    assert phrase in e.message, str(e)
    assert str(e) == f"{path}: {e.message}"
    assert "\n" not in str(e)


def check_refused(fn: Callable[[Any, str], Any], value: Any, phrase: str) -> None:
    with pytest.raises(FieldError) as info:
        fn(value, "some.path")
    check_error(info.value, "some.path", phrase)


# ---------------------------------------------------------------- valid objects, one or more per kind

META = {"name": "web", "namespace": "default", "labels": {"app": "web"}}
CONTAINER = {
    "name": "web",
    "image": "jweissig/alpine-k8s-pod-lb-demo:1.0",
    "command": ["python", "-m", "http.server"],
    "args": ["5005"],
    "env": [{"name": "GREETING", "value": "hi"}, {"name": "my.env-name_1"}],
    "ports": [
        {"name": "http", "containerPort": 5005, "protocol": "TCP"},
        {"containerPort": 9000, "hostPort": 9000},
    ],
    "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": 1, "memory": "128Mi"}},
    "readinessProbe": {"tcpSocket": {"port": 5005}, "periodSeconds": 1},
    "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "initialDelaySeconds": 0},
}
POD_SPEC = {
    "containers": [CONTAINER],
    "restartPolicy": "Always",
    "terminationGracePeriodSeconds": 5,
    "nodeName": "worker-1",
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [
        {
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
        {"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"},
        {"operator": "Exists"},
    ],
}
POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": META,
    "spec": POD_SPEC,
    "status": {
        "phase": "Running",
        "hostIP": "127.0.2.1",
        "podIP": "127.0.2.1",
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "False"}],
        "containerStatuses": [{"name": "web", "ready": True, "restartCount": 2, "state": {"running": {}}}],
        "portMappings": [
            {"containerPort": 5005, "hostPort": 40001, "hostIP": "127.0.2.1", "protocol": "TCP"}
        ],
    },
}
TEMPLATE = {"metadata": {"labels": {"app": "web", "tier": "front"}}, "spec": POD_SPEC}
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": META,
    "spec": {
        "replicas": 3,
        "selector": {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "back"]},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        },
        "template": TEMPLATE,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}},
        "minReadySeconds": 5,
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
    },
    "status": {
        "replicas": 3,
        "readyReplicas": 2,
        "updatedReplicas": 3,
        "availableReplicas": 2,
        "observedGeneration": 4,
    },
}
REPLICA_SET = {
    "apiVersion": "apps/v1",
    "kind": "ReplicaSet",
    "metadata": {
        **META,
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u1"}],
    },
    "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
    "status": {"replicas": 0, "fullyLabeledReplicas": 0},
}
SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "type": "NodePort",
        "selector": {"app": "web"},
        "clusterIP": "10.96.0.10",
        "sessionAffinity": "ClientIP",
        "ports": [
            {"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080, "protocol": "TCP"},
            {"name": "metrics", "port": 9000, "targetPort": 9000},
        ],
    },
}
ENDPOINTS = {
    "apiVersion": "v1",
    "kind": "Endpoints",
    "metadata": {"name": "web", "namespace": "default"},
    "subsets": [
        {
            "addresses": [
                {"ip": "127.0.2.1", "nodeName": "worker-1", "targetRef": {"kind": "Pod", "name": "web-1"}}
            ],
            "notReadyAddresses": [{"ip": "::1", "terminating": True}],
            "ports": [{"name": "http", "port": 40001, "protocol": "TCP"}, {"name": "metrics", "port": 40002}],
        }
    ],
}
INGRESS = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "Ingress",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}},
        "rules": [
            {
                "host": "*.example.com",
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "web", "port": {"name": "http"}}},
                        },
                        {
                            "pathType": "ImplementationSpecific",
                            "backend": {"service": {"name": "api", "port": {"number": 8080}}},
                        },
                    ]
                },
            },
            {"host": "shop.example.com"},
        ],
        "tls": [{"hosts": ["shop.example.com", "*.example.com"], "secretName": "shop-tls"}],
    },
}
INGRESS_BETA = {
    "apiVersion": "extensions/v1beta1",
    "kind": "Ingress",
    "metadata": {"name": "web"},
    "spec": {
        "backend": {"serviceName": "web", "servicePort": 80},
        "rules": [
            {"http": {"paths": [{"path": "/api", "backend": {"serviceName": "api", "servicePort": "http"}}]}}
        ],
    },
}
CONFIG_MAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "web-config", "namespace": "default"},
    "data": {"greeting": "hello", "app.properties": "a=b\nc=d", "KEY_NAME": ""},
    "binaryData": {"logo.png": "iVBORw0KGgo="},
}
NODE = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {"name": "worker-1", "labels": {"kubernetes.io/hostname": "worker-1"}},
    "spec": {
        "unschedulable": False,
        "taints": [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}],
    },
    "status": {
        "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
        "allocatable": {"cpu": "1500m", "memory": "3Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}],
        "addresses": [
            {"type": "InternalIP", "address": "127.0.2.1"},
            {"type": "Hostname", "address": "worker-1"},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {"kubeletVersion": "v1.30.0-skiff"},
        "isolation": "none",
    },
}
NAMESPACE = {
    "apiVersion": "v1",
    "kind": "Namespace",
    "metadata": {"name": "team-a"},
    "spec": {"finalizers": ["kubernetes"]},
    "status": {"phase": "Active"},
}
EVENT = {
    "apiVersion": "v1",
    "kind": "Event",
    "metadata": {"name": "web-1.17f3a2b4c5d6e7f8", "namespace": "default"},
    "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default", "uid": "u1"},
    "reason": "Scheduled",
    "message": "Successfully assigned default/web-1 to worker-1",
    "type": "Normal",
    "count": 1,
    "source": {"component": "default-scheduler"},
    "firstTimestamp": "2026-11-28T04:41:02Z",
}
VALID: dict[str, dict[str, Any]] = {
    "pod": POD,
    "deployment": DEPLOYMENT,
    "replicaset": REPLICA_SET,
    "service": SERVICE,
    "endpoints": ENDPOINTS,
    "ingress": INGRESS,
    "ingress-beta": INGRESS_BETA,
    "configmap": CONFIG_MAP,
    "node": NODE,
    "namespace": NAMESPACE,
    "event": EVENT,
}


@pytest.mark.parametrize("obj", VALID.values(), ids=VALID.keys())
def test_valid_objects_pass(obj: dict[str, Any]) -> None:
    validate_object(obj)


@pytest.mark.parametrize(
    "obj",
    [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "headless"},
            "spec": {"clusterIP": "None"},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "ext"},
            "spec": {"type": "ExternalName"},
        },
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a.b.c"}, "data": None},
        {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "e"}, "subsets": []},
        {"apiVersion": "v1", "kind": "Widget", "metadata": {"name": "any-kind"}},
        patched(POD, {"metadata.name": DELETE, "metadata.generateName": "web-"}),
        patched(
            POD,
            {"spec.containers[0].ports[0].containerPort": 5005.0, "spec.containers[0].livenessProbe": None},
        ),
        patched(
            SERVICE,
            {"spec.ports[0].targetPort": 0, "spec.ports[1].targetPort": DELETE, "spec.type": "LoadBalancer"},
        ),
        patched(DEPLOYMENT, {"spec.strategy": {"type": "Recreate"}, "spec.replicas": None}),
        patched(DEPLOYMENT, {"spec.strategy.rollingUpdate": {"maxSurge": 0, "maxUnavailable": "100%"}}),
        patched(DEPLOYMENT, {"apiVersion": "extensions/v1beta1", "spec.selector": DELETE}),
        patched(
            INGRESS,
            {"apiVersion": "networking.k8s.io/v1beta1", "spec.rules[0].http.paths[1].pathType": DELETE},
        ),
        patched(
            NODE, {"status.capacity": {"cpu": 2, "memory": 4294967296, "example.com/gpu": "1", "pods": 0.5}}
        ),
    ],
    ids=lambda o: f"{o['kind']}",
)
def test_more_valid_objects_pass(obj: dict[str, Any]) -> None:
    validate_object(obj)


def example_documents() -> Iterator[Any]:
    for path in sorted(EXAMPLES.glob("*.yaml")):
        if path.name.startswith("bad"):
            continue  # a deliberate mistake, for the error demo
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc is not None:
                yield pytest.param(doc, id=f"{path.name}#{i}")


@pytest.mark.parametrize("doc", list(example_documents()))
def test_every_example_manifest_passes(doc: dict[str, Any]) -> None:
    validate_object(doc)


def test_the_examples_were_found() -> None:
    assert len(list(example_documents())) >= 5


# ---------------------------------------------------------------- bad objects: exact path and message

# fmt: off
BAD: list[tuple[str, dict[str, Any], dict[str, Any], str, str]] = [
    # (id, base, patch, path, phrase)
    ("name-case", POD, {"metadata.name": "Bad_Name"}, "metadata.name", 'Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of'),
    ("name-missing", POD, {"metadata.name": DELETE}, "metadata.name", "Required value: name or generateName is required"),
    ("name-empty", POD, {"metadata.name": ""}, "metadata.name", "Required value"),
    ("name-number", POD, {"metadata.name": 7}, "metadata.name", "Invalid value: 7: must be a string"),
    ("name-too-long", CONFIG_MAP, {"metadata.name": "a" * 254}, "metadata.name", "must be no more than 253 characters"),
    ("name-dots", CONFIG_MAP, {"metadata.name": "a..b"}, "metadata.name", "RFC 1123 subdomain"),
    ("generate-name", POD, {"metadata.name": DELETE, "metadata.generateName": "Web-"}, "metadata.generateName", 'Invalid value: "Web-": a lowercase RFC 1123 subdomain'),
    ("namespace-name-dots", NAMESPACE, {"metadata.name": "team.a"}, "metadata.name", "a lowercase RFC 1123 label must consist of"),
    ("namespace-name-long", NAMESPACE, {"metadata.name": "a" * 64}, "metadata.name", "must be no more than 63 characters"),
    ("service-name-digit", SERVICE, {"metadata.name": "1web"}, "metadata.name", "a DNS-1035 label must consist of"),
    ("ns-space", POD, {"metadata.namespace": "Bad NS"}, "metadata.namespace", 'Invalid value: "Bad NS": a lowercase RFC 1123 label'),
    ("ns-traversal", POD, {"metadata.namespace": "../etc"}, "metadata.namespace", "RFC 1123 label"),
    ("ns-upper", POD, {"metadata.namespace": "UPPER"}, "metadata.namespace", "RFC 1123 label"),
    ("ns-long", POD, {"metadata.namespace": "a" * 300}, "metadata.namespace", "must be no more than 63 characters"),
    ("ns-type", POD, {"metadata.namespace": ["default"]}, "metadata.namespace", "must be a string"),
    ("metadata-list", POD, {"metadata": ["web"]}, "metadata", 'Invalid value: ["web"]: must be an object'),
    ("label-key", POD, {"metadata.labels": {"x y": "a"}}, "metadata.labels", 'Invalid value: "x y": name part must consist of alphanumeric characters'),
    ("label-value", POD, {"metadata.labels": {"app": "a b"}}, "metadata.labels", "a valid label must be an empty string or consist of"),
    ("label-value-type", POD, {"metadata.labels": {"app": 1}}, "metadata.labels", "Invalid value: 1: must be a string"),
    ("labels-list", POD, {"metadata.labels": ["app"]}, "metadata.labels", "must be an object"),
    ("annotation-key", POD, {"metadata.annotations": {"-x": "y"}}, "metadata.annotations", "name part must consist of"),
    ("annotation-value", POD, {"metadata.annotations": {"x": 3}}, "metadata.annotations[x]", "must be a string"),
    ("annotations-size", POD, {"metadata.annotations": {"a": "x" * 262144}}, "metadata.annotations", "Too long: may not be more than 262144 bytes"),
    ("owner-uid", REPLICA_SET, {"metadata.ownerReferences[0].uid": DELETE}, "metadata.ownerReferences[0].uid", "Required value"),
    ("owner-shape", REPLICA_SET, {"metadata.ownerReferences": {"name": "x"}}, "metadata.ownerReferences", "must be a list"),
    ("generation", POD, {"metadata.generation": -1}, "metadata.generation", "must be greater than or equal to 0"),
    # pods
    ("no-containers", POD, {"spec.containers": []}, "spec.containers", "Required value"),
    ("no-spec", POD, {"spec": DELETE}, "spec.containers", "Required value"),
    ("spec-list", POD, {"spec": [1]}, "spec", "must be an object"),
    ("containers-scalar", POD, {"spec.containers": "web"}, "spec.containers", "must be a list"),
    ("container-scalar", POD, {"spec.containers": ["web"]}, "spec.containers[0]", "must be an object"),
    ("container-name", POD, {"spec.containers[0].name": DELETE}, "spec.containers[0].name", "Required value"),
    ("container-name-rule", POD, {"spec.containers[0].name": "Web"}, "spec.containers[0].name", "RFC 1123 label"),
    ("container-dup", POD, {"spec.containers": [CONTAINER, CONTAINER]}, "spec.containers[1].name", 'Duplicate value: "web"'),
    ("image-missing", POD, {"spec.containers[0].image": ""}, "spec.containers[0].image", "Required value"),
    ("image-space", POD, {"spec.containers[0].image": " demo"}, "spec.containers[0].image", "must not have leading or trailing whitespace"),
    ("image-inner-space", POD, {"spec.containers[0].image": "de mo"}, "spec.containers[0].image", "must not contain whitespace"),
    ("command-type", POD, {"spec.containers[0].command": "python"}, "spec.containers[0].command", "must be a list"),
    ("args-item", POD, {"spec.containers[0].args": [1]}, "spec.containers[0].args[0]", "must be a string"),
    ("container-port-0", POD, {"spec.containers[0].ports[0].containerPort": 0}, "spec.containers[0].ports[0].containerPort", "Required value"),
    ("container-port-big", POD, {"spec.containers[0].ports[0].containerPort": 70000}, "spec.containers[0].ports[0].containerPort", "must be between 1 and 65535, inclusive"),
    ("container-port-str", POD, {"spec.containers[0].ports[0].containerPort": "80"}, "spec.containers[0].ports[0].containerPort", 'Invalid value: "80": must be an integer'),
    ("container-port-bool", POD, {"spec.containers[0].ports[0].containerPort": True}, "spec.containers[0].ports[0].containerPort", "Invalid value: true: must be an integer"),
    ("container-port-frac", POD, {"spec.containers[0].ports[0].containerPort": 80.5}, "spec.containers[0].ports[0].containerPort", "must be an integer"),
    ("host-port", POD, {"spec.containers[0].ports[1].hostPort": 65536}, "spec.containers[0].ports[1].hostPort", "must be between 1 and 65535"),
    ("port-name", POD, {"spec.containers[0].ports[0].name": "http--x"}, "spec.containers[0].ports[0].name", "must not contain consecutive hyphens"),
    ("port-name-dup", POD, {"spec.containers[0].ports[1].name": "http"}, "spec.containers[0].ports[1].name", 'Duplicate value: "http"'),
    ("port-protocol", POD, {"spec.containers[0].ports[0].protocol": "tcp"}, "spec.containers[0].ports[0].protocol", 'Unsupported value: "tcp": supported values: "SCTP", "TCP", "UDP"'),
    ("env-name-missing", POD, {"spec.containers[0].env[1].name": ""}, "spec.containers[0].env[1].name", "Required value"),
    ("env-name-digit", POD, {"spec.containers[0].env[0].name": "1X"}, "spec.containers[0].env[0].name", "a valid environment variable name must consist of"),
    ("env-name-dots", POD, {"spec.containers[0].env[0].name": ".."}, "spec.containers[0].env[0].name", "must not be '..'"),
    ("env-value", POD, {"spec.containers[0].env[0].value": 3}, "spec.containers[0].env[0].value", "must be a string"),
    ("quantity", POD, {"spec.containers[0].resources.limits.memory": "128MB"}, "spec.containers[0].resources.limits[memory]", "quantities must match the regular expression"),
    ("quantity-negative", POD, {"spec.containers[0].resources.requests.cpu": "-1"}, "spec.containers[0].resources.requests[cpu]", "must be greater than or equal to 0"),
    ("request-over-limit", POD, {"spec.containers[0].resources.requests.cpu": "2"}, "spec.containers[0].resources.requests[cpu]", "must be less than or equal to cpu limit of 1"),
    ("resource-name", POD, {"spec.containers[0].resources.limits": {"a b": "1"}}, "spec.containers[0].resources.limits", "name part must consist of"),
    ("probe-port", POD, {"spec.containers[0].readinessProbe.tcpSocket.port": "5005"}, "spec.containers[0].readinessProbe.tcpSocket.port", "must contain at least one letter (a-z)"),
    ("probe-http-port", POD, {"spec.containers[0].livenessProbe.httpGet.port": 0}, "spec.containers[0].livenessProbe.httpGet.port", "must be between 1 and 65535"),
    ("probe-no-handler", POD, {"spec.containers[0].readinessProbe": {"periodSeconds": 1}}, "spec.containers[0].readinessProbe", "Required value: must specify a handler type"),
    ("probe-two-handlers", POD, {"spec.containers[0].readinessProbe.exec": {"command": ["true"]}}, "spec.containers[0].readinessProbe.tcpSocket", "may not specify more than 1 handler type"),
    ("probe-period", POD, {"spec.containers[0].readinessProbe.periodSeconds": -1}, "spec.containers[0].readinessProbe.periodSeconds", "must be greater than or equal to 0"),
    ("probe-delay", POD, {"spec.containers[0].livenessProbe.initialDelaySeconds": "5"}, "spec.containers[0].livenessProbe.initialDelaySeconds", "must be an integer"),
    ("liveness-success", POD, {"spec.containers[0].livenessProbe.successThreshold": 2}, "spec.containers[0].livenessProbe.successThreshold", "must be 1"),
    ("restart-policy", POD, {"spec.restartPolicy": "Sometimes"}, "spec.restartPolicy", 'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'),
    ("node-name", POD, {"spec.nodeName": "Worker_1"}, "spec.nodeName", "RFC 1123 subdomain"),
    ("node-selector", POD, {"spec.nodeSelector": {"disk": "s s d"}}, "spec.nodeSelector", "a valid label must be"),
    ("grace", POD, {"spec.terminationGracePeriodSeconds": -5}, "spec.terminationGracePeriodSeconds", "must be greater than or equal to 0"),
    ("toleration-op", POD, {"spec.tolerations[1].operator": "Like"}, "spec.tolerations[1].operator", 'supported values: "Equal", "Exists"'),
    ("toleration-exists-value", POD, {"spec.tolerations[0].value": "x"}, "spec.tolerations[0].operator", "value must be empty when `operator` is 'Exists'"),
    ("toleration-no-key", POD, {"spec.tolerations[2].operator": "Equal"}, "spec.tolerations[2].operator", "operator must be Exists when `key` is empty"),
    ("toleration-effect", POD, {"spec.tolerations[1].effect": "NoRun"}, "spec.tolerations[1].effect", 'supported values: "NoExecute", "NoSchedule", "PreferNoSchedule"'),
    ("toleration-seconds", POD, {"spec.tolerations[0].effect": "NoSchedule"}, "spec.tolerations[0].effect", "effect must be 'NoExecute' when `tolerationSeconds` is set"),
    # pod status (what a status patch produces)
    ("status-list", POD, {"status": [1]}, "status", "Invalid value: [1]: must be an object"),
    ("phase", POD, {"status.phase": "Sleeping"}, "status.phase", 'supported values: "Pending", "Running", "Succeeded", "Failed", "Unknown"'),
    ("condition-status", POD, {"status.conditions[0].status": "true"}, "status.conditions[0].status", 'supported values: "True", "False", "Unknown"'),
    ("condition-type", POD, {"status.conditions[0].type": DELETE}, "status.conditions[0].type", "Required value"),
    ("conditions-shape", POD, {"status.conditions": {"type": "Ready"}}, "status.conditions", "must be a list"),
    ("restart-count", POD, {"status.containerStatuses[0].restartCount": -1}, "status.containerStatuses[0].restartCount", "must be greater than or equal to 0"),
    ("ready-bool", POD, {"status.containerStatuses[0].ready": "yes"}, "status.containerStatuses[0].ready", "must be a boolean"),
    ("pod-ip", POD, {"status.podIP": "not-an-ip"}, "status.podIP", "must be a valid IP address"),
    ("host-ip-port", POD, {"status.hostIP": "127.0.0.1:80"}, "status.hostIP", "must be a valid IP address"),
    ("mapping-port", POD, {"status.portMappings[0].hostPort": "40001"}, "status.portMappings[0].hostPort", "must be an integer"),
    # deployments and replica sets
    ("replicas-negative", DEPLOYMENT, {"spec.replicas": -1}, "spec.replicas", "Invalid value: -1: must be greater than or equal to 0"),
    ("replicas-string", DEPLOYMENT, {"spec.replicas": "3"}, "spec.replicas", 'Invalid value: "3": must be an integer'),
    ("replicas-float", DEPLOYMENT, {"spec.replicas": 1.5}, "spec.replicas", "Invalid value: 1.5: must be an integer"),
    ("replicas-bool", REPLICA_SET, {"spec.replicas": False}, "spec.replicas", "must be an integer"),
    ("selector-missing", DEPLOYMENT, {"spec.selector": DELETE}, "spec.selector", "Required value"),
    ("selector-empty", DEPLOYMENT, {"spec.selector": {}}, "spec.selector", "empty selector is invalid for deployment"),
    ("selector-list", REPLICA_SET, {"spec.selector": ["app"]}, "spec.selector", "must be an object"),
    ("selector-in-no-values", DEPLOYMENT, {"spec.selector.matchExpressions[0].values": []}, "spec.selector.matchExpressions[0].values", "must be specified when `operator` is 'In' or 'NotIn'"),
    ("selector-exists-values", DEPLOYMENT, {"spec.selector.matchExpressions[1].values": ["x"]}, "spec.selector.matchExpressions[1].values", "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
    ("selector-operator", DEPLOYMENT, {"spec.selector.matchExpressions[1].operator": "Maybe"}, "spec.selector.matchExpressions[1].operator", "not a valid selector operator"),
    ("selector-key", DEPLOYMENT, {"spec.selector.matchExpressions[0].key": "a/b/c"}, "spec.selector.matchExpressions[0].key", "a qualified name must consist of"),
    ("selector-mismatch", DEPLOYMENT, {"spec.selector.matchLabels.app": "api"}, "spec.template.metadata.labels", "`selector` does not match template `labels`"),
    ("selector-expression-mismatch", DEPLOYMENT, {"spec.template.metadata.labels.canary": "yes"}, "spec.template.metadata.labels", "`selector` does not match template `labels`"),
    ("template-missing", REPLICA_SET, {"spec.template": DELETE}, "spec.template", "Required value"),
    ("template-label", REPLICA_SET, {"spec.template.metadata.labels.tier": "-x"}, "spec.template.metadata.labels", "a valid label must be"),
    ("template-container", DEPLOYMENT, {"spec.template.spec.containers[0].name": DELETE}, "spec.template.spec.containers[0].name", "Required value"),
    ("template-restart", DEPLOYMENT, {"spec.template.spec.restartPolicy": "Never"}, "spec.template.spec.restartPolicy", 'Unsupported value: "Never": supported values: "Always"'),
    ("strategy-type", DEPLOYMENT, {"spec.strategy.type": "Foo"}, "spec.strategy.type", 'Unsupported value: "Foo": supported values: "Recreate", "RollingUpdate"'),
    ("recreate-rolling", DEPLOYMENT, {"spec.strategy.type": "Recreate"}, "spec.strategy.rollingUpdate", "Forbidden: may not be specified when strategy `type` is 'Recreate'"),
    ("max-surge", DEPLOYMENT, {"spec.strategy.rollingUpdate.maxSurge": "25"}, "spec.strategy.rollingUpdate.maxSurge", "a valid percent string must be"),
    ("max-surge-negative", DEPLOYMENT, {"spec.strategy.rollingUpdate.maxSurge": -1}, "spec.strategy.rollingUpdate.maxSurge", "must be greater than or equal to 0"),
    ("max-unavailable-100", DEPLOYMENT, {"spec.strategy.rollingUpdate.maxUnavailable": "101%"}, "spec.strategy.rollingUpdate.maxUnavailable", "must not be greater than 100%"),
    ("both-zero", DEPLOYMENT, {"spec.strategy.rollingUpdate": {"maxSurge": "0%", "maxUnavailable": 0}}, "spec.strategy.rollingUpdate.maxUnavailable", "may not be 0 when `maxSurge` is 0"),
    ("min-ready", DEPLOYMENT, {"spec.minReadySeconds": -1}, "spec.minReadySeconds", "must be greater than or equal to 0"),
    ("history", DEPLOYMENT, {"spec.revisionHistoryLimit": -1}, "spec.revisionHistoryLimit", "must be greater than or equal to 0"),
    ("deadline", DEPLOYMENT, {"spec.progressDeadlineSeconds": 5}, "spec.progressDeadlineSeconds", "must be greater than minReadySeconds"),
    ("paused", DEPLOYMENT, {"spec.paused": "no"}, "spec.paused", "must be a boolean"),
    ("status-ready", DEPLOYMENT, {"status.readyReplicas": -2}, "status.readyReplicas", "must be greater than or equal to 0"),
    ("status-generation", REPLICA_SET, {"status.observedGeneration": "1"}, "status.observedGeneration", "must be an integer"),
    # services
    ("service-type", SERVICE, {"spec.type": "Magic"}, "spec.type", 'supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"'),
    ("service-no-ports", SERVICE, {"spec.ports": []}, "spec.ports", "Required value"),
    ("service-port", SERVICE, {"spec.ports[0].port": 0}, "spec.ports[0].port", "must be between 1 and 65535"),
    ("service-port-missing", SERVICE, {"spec.ports[0].port": DELETE}, "spec.ports[0].port", "Required value"),
    ("target-port", SERVICE, {"spec.ports[0].targetPort": "http_x"}, "spec.ports[0].targetPort", "must contain only alpha-numeric characters"),
    ("target-port-type", SERVICE, {"spec.ports[0].targetPort": [80]}, "spec.ports[0].targetPort", "must be an integer or a string"),
    ("node-port-range", SERVICE, {"spec.ports[0].nodePort": 80}, "spec.ports[0].nodePort", "The range of valid ports is 30000-32767"),
    ("node-port-cluster-ip", SERVICE, {"spec.type": "ClusterIP"}, "spec.ports[0].nodePort", "Forbidden: may not be used when `type` is 'ClusterIP'"),
    ("port-name-required", SERVICE, {"spec.ports[1].name": DELETE}, "spec.ports[1].name", "Required value"),
    ("port-name-dup-svc", SERVICE, {"spec.ports[1].name": "http"}, "spec.ports[1].name", 'Duplicate value: "http"'),
    ("port-name-rule-svc", SERVICE, {"spec.ports[1].name": "Metrics"}, "spec.ports[1].name", "RFC 1123 label"),
    ("service-protocol", SERVICE, {"spec.ports[0].protocol": "HTTP"}, "spec.ports[0].protocol", "Unsupported value"),
    ("cluster-ip", SERVICE, {"spec.clusterIP": "10.96.0"}, "spec.clusterIP", "must be empty, 'None', or a valid IP address"),
    ("service-selector", SERVICE, {"spec.selector": {"app": ["web"]}}, "spec.selector", "must be a string"),
    ("service-status", SERVICE, {"status": [1]}, "status", "Invalid value: [1]: must be an object"),
    ("ingress-status", INGRESS, {"status": "ok"}, "status", 'Invalid value: "ok": must be an object'),
    ("session-affinity", SERVICE, {"spec.sessionAffinity": "Cookie"}, "spec.sessionAffinity", 'supported values: "ClientIP", "None"'),
    # endpoints
    ("endpoint-ip", ENDPOINTS, {"subsets[0].addresses[0].ip": "web-1"}, "subsets[0].addresses[0].ip", "must be a valid IP address"),
    ("endpoint-ip-missing", ENDPOINTS, {"subsets[0].notReadyAddresses[0].ip": DELETE}, "subsets[0].notReadyAddresses[0].ip", "Required value"),
    ("endpoint-port", ENDPOINTS, {"subsets[0].ports[0].port": 0}, "subsets[0].ports[0].port", "must be between 1 and 65535"),
    ("endpoint-port-name", ENDPOINTS, {"subsets[0].ports[1].name": DELETE}, "subsets[0].ports[1].name", "Required value"),
    ("endpoint-protocol", ENDPOINTS, {"subsets[0].ports[0].protocol": "ICMP"}, "subsets[0].ports[0].protocol", "Unsupported value"),
    ("endpoint-node", ENDPOINTS, {"subsets[0].addresses[0].nodeName": "Worker 1"}, "subsets[0].addresses[0].nodeName", "RFC 1123 subdomain"),
    ("subsets-shape", ENDPOINTS, {"subsets": {"addresses": []}}, "subsets", "must be a list"),
    # ingresses
    ("ingress-empty", INGRESS, {"spec": {}}, "spec", "either `defaultBackend` or `rules` must be specified"),
    ("backend-name", INGRESS, {"spec.defaultBackend.service.name": "1web"}, "spec.defaultBackend.service.name", "a DNS-1035 label"),
    ("backend-name-missing", INGRESS, {"spec.defaultBackend.service.name": DELETE}, "spec.defaultBackend.service.name", "Required value"),
    ("backend-both-ports", INGRESS, {"spec.defaultBackend.service.port.name": "http"}, "spec.defaultBackend.service.port", "cannot set both port name & port number"),
    ("backend-no-port", INGRESS, {"spec.defaultBackend.service.port": {}}, "spec.defaultBackend.service.port", "port name or number is required"),
    ("backend-port-number", INGRESS, {"spec.defaultBackend.service.port.number": 70000}, "spec.defaultBackend.service.port.number", "must be between 1 and 65535"),
    ("backend-port-name", INGRESS, {"spec.rules[0].http.paths[0].backend.service.port.name": "HTTP"}, "spec.rules[0].http.paths[0].backend.service.port.name", "must contain only alpha-numeric"),
    ("backend-no-service", INGRESS, {"spec.defaultBackend": {}}, "spec.defaultBackend.service", "Required value"),
    ("host-ip", INGRESS, {"spec.rules[1].host": "10.0.0.1"}, "spec.rules[1].host", "must be a DNS name, not an IP address"),
    ("host-rule", INGRESS, {"spec.rules[1].host": "Shop.example.com"}, "spec.rules[1].host", "RFC 1123 subdomain"),
    ("host-wildcard", INGRESS, {"spec.rules[0].host": "*.*.example.com"}, "spec.rules[0].host", "a wildcard DNS-1123 subdomain must start with '*.'"),
    ("paths-empty", INGRESS, {"spec.rules[0].http.paths": []}, "spec.rules[0].http.paths", "Required value"),
    ("path-relative", INGRESS, {"spec.rules[0].http.paths[0].path": "api"}, "spec.rules[0].http.paths[0].path", "must be an absolute path"),
    ("path-type-missing", INGRESS, {"spec.rules[0].http.paths[0].pathType": DELETE}, "spec.rules[0].http.paths[0].pathType", "pathType must be specified"),
    ("path-type", INGRESS, {"spec.rules[0].http.paths[0].pathType": "Regex"}, "spec.rules[0].http.paths[0].pathType", 'supported values: "Exact", "ImplementationSpecific", "Prefix"'),
    ("path-backend", INGRESS, {"spec.rules[0].http.paths[1].backend": DELETE}, "spec.rules[0].http.paths[1].backend", "Required value"),
    ("tls-host", INGRESS, {"spec.tls[0].hosts[0]": "bad host"}, "spec.tls[0].hosts[0]", "RFC 1123 subdomain"),
    ("tls-host-ip", INGRESS, {"spec.tls[0].hosts[1]": "::1"}, "spec.tls[0].hosts[1]", "must be a DNS name, not an IP address"),
    ("tls-secret", INGRESS, {"spec.tls[0].secretName": "Shop_TLS"}, "spec.tls[0].secretName", "RFC 1123 subdomain"),
    ("beta-service-name", INGRESS_BETA, {"spec.backend.serviceName": "Web"}, "spec.backend.serviceName", "a DNS-1035 label"),
    ("beta-service-port", INGRESS_BETA, {"spec.backend.servicePort": "80"}, "spec.backend.servicePort", "must contain at least one letter"),
    ("beta-path", INGRESS_BETA, {"spec.rules[0].http.paths[0].backend.servicePort": DELETE}, "spec.rules[0].http.paths[0].backend.servicePort", "Required value"),
    # config maps
    ("cm-key", CONFIG_MAP, {"data": {"bad key": "x"}}, 'data["bad key"]', "a valid config key must consist of alphanumeric characters"),
    ("cm-key-dots", CONFIG_MAP, {"data": {"..x": "x"}}, "data[..x]", "must not start with '..'"),
    ("cm-value", CONFIG_MAP, {"data.greeting": 1}, "data[greeting]", "must be a string"),
    ("cm-binary-key", CONFIG_MAP, {"binaryData": {"a/b": "AA=="}}, "binaryData[a/b]", "a valid config key"),
    ("cm-overlap", CONFIG_MAP, {"binaryData": {"greeting": "AA=="}}, "data[greeting]", "duplicate of key present in binaryData"),
    ("cm-size", CONFIG_MAP, {"data": {"big": "x" * 1048577}}, "data", "Too long: may not be more than 1048576 bytes"),
    ("cm-data-list", CONFIG_MAP, {"data": ["a"]}, "data", "must be an object"),
    # nodes
    ("unschedulable", NODE, {"spec.unschedulable": "true"}, "spec.unschedulable", "must be a boolean"),
    ("taint-effect", NODE, {"spec.taints[0].effect": DELETE}, "spec.taints[0].effect", "Required value"),
    ("taint-effect-value", NODE, {"spec.taints[0].effect": "Evict"}, "spec.taints[0].effect", "Unsupported value"),
    ("taint-key", NODE, {"spec.taints[0].key": ""}, "spec.taints[0].key", "name part must be non-empty"),
    ("capacity", NODE, {"status.capacity.cpu": "two"}, "status.capacity[cpu]", "quantities must match"),
    ("allocatable-type", NODE, {"status.allocatable": "1"}, "status.allocatable", "must be an object"),
    ("address-type", NODE, {"status.addresses[0].type": "PublicIP"}, "status.addresses[0].type", '"ExternalDNS", "ExternalIP", "Hostname", "InternalDNS", "InternalIP"'),
    ("address-value", NODE, {"status.addresses[0].address": 1}, "status.addresses[0].address", "must be a string"),
    ("node-condition", NODE, {"status.conditions[0].status": "Maybe"}, "status.conditions[0].status", "Unsupported value"),
    ("kubelet-port", NODE, {"status.daemonEndpoints.kubeletEndpoint.Port": 70000}, "status.daemonEndpoints.kubeletEndpoint.Port", "must be less than or equal to 65535"),
    # namespaces
    ("ns-finalizer", NAMESPACE, {"spec.finalizers": [1]}, "spec.finalizers[0]", "must be a string"),
    ("ns-finalizer-name", NAMESPACE, {"spec.finalizers": ["a b"]}, "spec.finalizers[0]", "name part must consist of"),
    ("ns-phase", NAMESPACE, {"status.phase": "Gone"}, "status.phase", 'supported values: "Active", "Terminating"'),
    # events
    ("event-object", EVENT, {"involvedObject": "web-1"}, "involvedObject", "must be an object"),
    ("event-object-name", EVENT, {"involvedObject.name": 1}, "involvedObject[name]", "must be a string"),
    ("event-count", EVENT, {"count": -1}, "count", "must be greater than or equal to 0"),
    ("event-type", EVENT, {"type": "Error"}, "type", 'supported values: "Normal", "Warning"'),
    ("event-reason", EVENT, {"reason": ["x"]}, "reason", "must be a string"),
]
# fmt: on


@pytest.mark.parametrize(("base", "patch", "path", "phrase"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_objects_are_refused(base: dict[str, Any], patch: dict[str, Any], path: str, phrase: str) -> None:
    check_error(refused(patched(base, patch)), path, phrase)


def test_a_name_ending_in_a_newline_is_refused() -> None:
    """Python's '$' matches before a final newline: the rules must match the whole string."""
    e = refused(patched(POD, {"metadata.name": "demo\n"}))
    check_error(e, "metadata.name", 'Invalid value: "demo\\n": a lowercase RFC 1123 subdomain')
    for checker in (
        v.dns1123_label,
        v.dns1123_subdomain,
        v.dns1035_label,
        v.label_key,
        v.label_value,
        v.port_name,
    ):
        with pytest.raises(FieldError):
            checker("demo\n", "p")
    with pytest.raises(FieldError):
        v.quantity("1\n", "p")
    with pytest.raises(FieldError):
        v.int_or_percent("5%\n", "p")


def test_only_the_object_itself_must_be_a_mapping() -> None:
    check_error(refused(["not", "an", "object"]), "<object>", "must be an object")
    check_error(refused(None), "<object>", "Invalid value: null: must be an object")


# ---------------------------------------------------------------- checkers

# fmt: off
GOOD_CHECKS: list[tuple[Callable[[Any, str], Any], list[Any]]] = [
    (v.dns1123_label, ["a", "0", "web-1", "a" * 63]),
    (v.dns1123_subdomain, ["a", "a.b-c.d", "example.com", "a" * 253]),
    (v.dns1035_label, ["demo", "a1", "a-b"]),
    (v.label_key, ["app", "A", "a_b.c-d", "example.com/app", "kubernetes.io/os", "x/" + "y" * 63]),
    (v.label_value, ["", "v1", "a_b.c-D", "1" * 63]),
    (v.port_name, ["http", "h2c", "a-b", "a" * 15, "1a"]),
    (v.port_number, [1, 80, 65535, 443.0]),
    (v.int_or_string_port, [8080, "http"]),
    (v.int_or_percent, [0, 3, "0%", "25%", "100%", "150%"]),
    (v.quantity, [1, 0, 0.5, -1, "500m", "64Mi", "1Ki", "2Ei", "1e3", "1E-3", "1.5Gi", ".5", "5.", "+1", "1n", "1u", "3k"]),
    (v.ip_address, ["127.0.0.1", "10.0.0.1", "::1", "2001:db8::ffff"]),
    (v.protocol, ["TCP", "UDP", "SCTP"]),
    (v.labels, [{}, None, {"app": "web", "example.com/tier": ""}]),
    (v.annotations, [{}, {"Example.COM/Key": "any\ntext at all", "x": ""}]),
    (v.label_selector, [{}, {"matchLabels": {"a": "b"}}, {"matchExpressions": [{"key": "a", "operator": "Exists"}]}]),
]
# fmt: on


@pytest.mark.parametrize(
    ("fn", "value"),
    [(fn, value) for fn, values in GOOD_CHECKS for value in values],
    ids=[f"{fn.__name__}-{json.dumps(value)[:20]}" for fn, values in GOOD_CHECKS for value in values],
)
def test_checkers_accept(fn: Callable[[Any, str], Any], value: Any) -> None:
    fn(value, "some.path")


# fmt: off
BAD_CHECKS: list[tuple[Callable[[Any, str], Any], Any, str]] = [
    (v.dns1123_label, "Web", "a lowercase RFC 1123 label must consist of"),
    (v.dns1123_label, "-a", "must start and end with an alphanumeric character"),
    (v.dns1123_label, "a_b", "RFC 1123 label"),
    (v.dns1123_label, "a.b", "RFC 1123 label"),
    (v.dns1123_label, "", 'Invalid value: ""'),
    (v.dns1123_label, "a" * 64, "must be no more than 63 characters"),
    (v.dns1123_label, 1, "must be a string"),
    (v.dns1123_label, None, "Invalid value: null: must be a string"),
    (v.dns1123_subdomain, "a..b", "RFC 1123 subdomain"),
    (v.dns1123_subdomain, ".a", "RFC 1123 subdomain"),
    (v.dns1123_subdomain, "a" * 254, "must be no more than 253 characters"),
    (v.dns1123_subdomain, "é", "RFC 1123 subdomain"),
    (v.dns1035_label, "1abc", "start with an alphabetic character"),
    (v.dns1035_label, "a.b", "DNS-1035 label"),
    (v.label_key, "x y", "name part must consist of"),
    (v.label_key, "/a", "prefix part must be non-empty"),
    (v.label_key, "example.com/", "name part must be non-empty"),
    (v.label_key, "", "name part must be non-empty"),
    (v.label_key, "a/b/c", "a qualified name must consist of"),
    (v.label_key, "Bad_Prefix/app", "prefix part a lowercase RFC 1123 subdomain"),
    (v.label_key, "a" * 64, "name part must be no more than 63 characters"),
    (v.label_key, "p" * 254 + "/a", "prefix part must be no more than 253 characters"),
    (v.label_key, 1, "must be a string"),
    (v.label_value, "-a", "a valid label must be an empty string or consist of"),
    (v.label_value, "a" * 64, "must be no more than 63 characters"),
    (v.label_value, 3, "must be a string"),
    (v.labels, [], "must be an object"),
    (v.labels, {1: "a"}, "Invalid value: 1: must be a string"),
    (v.labels, {"a": None}, "must be a string"),
    (v.annotations, {"a": "x" * 262144}, "Too long: may not be more than 262144 bytes"),
    (v.annotations, "a=b", "must be an object"),
    (v.label_selector, ["app=web"], "must be an object"),
    (v.port_number, 0, "must be between 1 and 65535, inclusive"),
    (v.port_number, 65536, "must be between 1 and 65535, inclusive"),
    (v.port_number, "80", 'Invalid value: "80": must be an integer'),
    (v.port_number, True, "must be an integer"),
    (v.port_number, 80.5, "must be an integer"),
    (v.port_number, None, "Required value"),
    (v.port_number, 2**70, "must be a 64-bit integer"),
    (v.port_name, "a" * 16, "must be no more than 15 characters"),
    (v.port_name, "HTTP", "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"),
    (v.port_name, "1234", "must contain at least one letter (a-z)"),
    (v.port_name, "a--b", "must not contain consecutive hyphens"),
    (v.port_name, "-ab", "must not begin or end with a hyphen"),
    (v.port_name, "ab-", "must not begin or end with a hyphen"),
    (v.port_name, "", "must contain only alpha-numeric"),
    (v.port_name, 80, "must be a string"),
    (v.int_or_string_port, "8080", "must contain at least one letter"),
    (v.int_or_string_port, 0, "must be between 1 and 65535"),
    (v.int_or_string_port, True, "must be an integer or a string"),
    (v.int_or_string_port, [80], "must be an integer or a string"),
    (v.int_or_percent, "25", "a valid percent string must be a numeric string followed by an ending '%'"),
    (v.int_or_percent, "x%", "a valid percent string"),
    (v.int_or_percent, "-5%", "a valid percent string"),
    (v.int_or_percent, -1, "must be greater than or equal to 0"),
    (v.int_or_percent, 1.5, "must be an integer"),
    (v.int_or_percent, True, "must be an integer or a percentage"),
    (v.int_or_percent, None, "must be an integer or a percentage"),
    (v.quantity, "1.2.3", "quantities must match the regular expression"),
    (v.quantity, "abc", "quantities must match"),
    (v.quantity, "64MiB", "quantities must match"),
    (v.quantity, "64 Mi", "quantities must match"),
    (v.quantity, "", "quantities must match"),
    (v.quantity, ".", "quantities must match"),
    (v.quantity, "1e", "quantities must match"),
    (v.quantity, "1e99999999999999999999999", "quantities must match"),
    (v.quantity, True, "quantities must match"),
    (v.quantity, None, "quantities must match"),
    (v.quantity, [1], "quantities must match"),
    (v.quantity, float("nan"), "Invalid value: NaN: quantities must match"),
    (v.quantity, float("inf"), "quantities must match"),
    (v.ip_address, "1.2.3", "must be a valid IP address"),
    (v.ip_address, "host:80", "must be a valid IP address"),
    (v.ip_address, "", "must be a valid IP address"),
    (v.ip_address, "127.0.0.1\n", "must be a valid IP address"),
    (v.ip_address, 2130706433, "must be a string"),
    (v.protocol, "tcp", 'Unsupported value: "tcp": supported values: "SCTP", "TCP", "UDP"'),
    (v.protocol, None, "Unsupported value: null"),
    (v.protocol, 6, "Unsupported value: 6"),
]
# fmt: on


@pytest.mark.parametrize(
    ("fn", "value", "phrase"),
    BAD_CHECKS,
    ids=[
        f"{fn.__name__}-{json.dumps(value)[:20] if value == value else 'nan'}" for fn, value, _ in BAD_CHECKS
    ],
)
def test_checkers_refuse(fn: Callable[[Any, str], Any], value: Any, phrase: str) -> None:
    check_refused(fn, value, phrase)


@pytest.mark.parametrize(
    ("selector", "path", "phrase"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn"}]},
            "sel.matchExpressions[0].values",
            "Required value",
        ),
        ({"matchExpressions": "a in (b)"}, "sel.matchExpressions", "must be a list"),
        ({"matchExpressions": ["a"]}, "sel.matchExpressions[0]", "must be an object"),
        (
            {"matchExpressions": [{"key": "a"}]},
            "sel.matchExpressions[0].operator",
            "Invalid value: null: not a valid",
        ),
        ({"matchExpressions": [{"operator": "Exists"}]}, "sel.matchExpressions[0].key", "must be a string"),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": "b"}]},
            "sel.matchExpressions[0].values",
            "must be a list",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["b c"]}]},
            "sel.matchExpressions[0].values[0]",
            "a valid label",
        ),
        ({"matchLabels": {"a": "b c"}}, "sel.matchLabels", "a valid label must be"),
        ({"matchLabels": "a=b"}, "sel.matchLabels", "must be an object"),
    ],
)
def test_label_selector_refuses(selector: Any, path: str, phrase: str) -> None:
    with pytest.raises(FieldError) as info:
        v.label_selector(selector, "sel")
    check_error(info.value, path, phrase)


def test_one_of() -> None:
    v.one_of("b", ("a", "b"), "p")
    check_refused(
        lambda x, p: v.one_of(x, ("a", "b"), p), "c", 'Unsupported value: "c": supported values: "a", "b"'
    )
    check_refused(lambda x, p: v.one_of(x, ("a", "b"), p), ["a"], 'Unsupported value: ["a"]')


def test_quantity_values() -> None:
    assert v.quantity("500m", "p") == v.quantity(0.5, "p")
    assert v.quantity("1Ki", "p") == 1024
    assert v.quantity("1k", "p") == 1000
    assert v.quantity("1e3", "p") == 1000
    assert v.quantity("64Mi", "p") == 64 * 2**20


# ---------------------------------------------------------------- messages stay short and one line


def test_quote_escapes_and_cuts() -> None:
    assert v.quote("abc") == '"abc"'
    assert v.quote('a"b\\c') == '"a\\"b\\\\c"'
    assert v.quote("a\nb\x00c") == '"a\\nb\\u0000c"'
    assert v.quote("\ud800") == '"\\ud800"'
    assert v.quote("x" * 100) == '"' + "x" * 64 + '"...'
    assert v.quote("x" * 10, limit=4) == '"xxxx"...'
    assert v.quote("é") == '"\\u00e9"'


def test_show_gives_short_json() -> None:
    assert v.show(None) == "null"
    assert v.show(True) == "true"
    assert v.show(3) == "3"
    assert v.show(1.5) == "1.5"
    assert v.show([1, "a"]) == '[1,"a"]'
    assert v.show({"a": [1]}) == '{"a":[1]}'
    assert len(v.show(list(range(10**6)))) <= 67
    assert len(v.show({str(i): i for i in range(10**5)})) <= 67
    assert v.show(10**5000) == '"<a very large integer>"'
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    assert v.show(deep).startswith("[[[[")


HUGE = "a" * 50_000_000


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        ({"metadata.name": HUGE}, "metadata.name"),
        ({"metadata.namespace": HUGE}, "metadata.namespace"),
        ({"metadata.labels": {"app": HUGE}}, "metadata.labels"),
        ({"metadata.labels": {HUGE: "x"}}, "metadata.labels"),
        ({"metadata.annotations": {"note": HUGE}}, "metadata.annotations"),
        ({"spec.containers[0].image": HUGE + " x"}, "spec.containers[0].image"),
        ({"spec.containers[0].env[0].name": HUGE + "="}, "spec.containers[0].env[0].name"),
        ({"spec.containers[0].resources.limits": {"cpu": HUGE}}, "spec.containers[0].resources.limits[cpu]"),
        ({"spec.restartPolicy": HUGE}, "spec.restartPolicy"),
        ({"status.podIP": HUGE}, "status.podIP"),
        ({"spec.containers[0].ports[0].containerPort": [HUGE]}, "spec.containers[0].ports[0].containerPort"),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_a_50mb_string_gives_a_short_message(patch: dict[str, Any], path: str) -> None:
    e = refused(patched(POD, patch))
    assert e.path == path
    assert len(str(e)) < 300, str(e)[:400]


def test_a_huge_key_gives_a_short_path() -> None:
    e = refused(patched(CONFIG_MAP, {"data": {HUGE + " ": "x"}}))
    assert e.path == 'data["' + "a" * 64 + '"...]'
    assert e.message.startswith('Invalid value: "aaaa') and e.message.endswith(
        "must be no more than 253 characters"
    )
    assert len(str(e)) < 300


@pytest.mark.parametrize(
    "patch",
    [
        {"metadata.name": "\ud800"},
        {"metadata.name": "web\udfff"},
        {"metadata.namespace": "ns\ud800"},
        {"metadata.labels": {"\ud800": "x"}},
        {"spec.containers[0].name": "a\ud800b"},
        {"spec.restartPolicy": "\ud800"},
        {"status.hostIP": "\ud800"},
    ],
)
def test_a_lone_surrogate_gives_an_encodable_message(patch: dict[str, Any]) -> None:
    e = refused(patched(POD, patch))
    str(e).encode("utf-8")
    assert "\\ud" in str(e)


def test_control_characters_are_escaped() -> None:
    e = refused(patched(POD, {"metadata.name": "a\r\nb\x00\x1b[31m"}))
    assert e.message.startswith('Invalid value: "a\\r\\nb\\u0000\\u001b[31m"')
    e = refused(patched(CONFIG_MAP, {"data": {"line\nbreak": "x"}}))
    assert e.path == 'data["line\\nbreak"]'


def test_field_errors_pickle_and_are_value_errors() -> None:
    e = FieldError("spec.replicas", "Required value")
    assert isinstance(e, ValueError)
    again = pickle.loads(pickle.dumps(e))
    assert (again.path, again.message, str(again)) == ("spec.replicas", "Required value", str(e))


# ---------------------------------------------------------------- robustness: any shape, anywhere

JUNK: list[Any] = [
    None,
    [],
    {},
    "x",
    "",
    1,
    0,
    -1,
    1.5,
    True,
    False,
    [1],
    {"a": 1},
    "\ud800",
    2**80,
    float("nan"),
]


def paths_of(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside a JSON-like tree."""
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield (*prefix, key)
        yield from paths_of(child, (*prefix, key))


def replaced(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(obj)
    node = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return out


def malformed(obj: dict[str, Any]) -> Iterator[Any]:
    for path in paths_of(obj):
        for junk in JUNK:
            yield replaced(obj, path, junk)


def only_field_errors(obj: Any) -> None:
    try:
        validate_object(obj)
    except FieldError as e:
        assert "\n" not in str(e) and len(str(e)) < 600, str(e)
        str(e).encode("utf-8")


@pytest.mark.parametrize("obj", VALID.values(), ids=VALID.keys())
def test_malformed_shapes_give_only_field_errors(obj: dict[str, Any]) -> None:
    count = 0
    for bad in malformed(obj):
        only_field_errors(bad)
        count += 1
    assert count > 50


def test_whole_parts_replaced_give_only_field_errors() -> None:
    for obj in VALID.values():
        for top in ("metadata", "spec", "status", "data", "subsets", "involvedObject"):
            for junk in [*JUNK, [[]], [{}], {"x": {"y": []}}]:
                only_field_errors({**obj, top: junk})
    for junk in JUNK:
        only_field_errors(junk)


def test_deep_nesting_gives_only_field_errors() -> None:
    deep: Any = {}
    for _ in range(50_000):
        deep = {"a": deep}
    for obj in VALID.values():
        for path in list(paths_of(obj))[:40]:
            only_field_errors(replaced(obj, path, deep))


JSON = hs.recursive(
    hs.none() | hs.booleans() | hs.integers() | hs.floats() | hs.text(max_size=8),
    lambda children: (
        hs.lists(children, max_size=3) | hs.dictionaries(hs.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=hs.sampled_from(list(VALID)), data=hs.data())
def test_random_values_anywhere_give_only_field_errors(kind: str, data: hs.DataObject) -> None:
    obj = VALID[kind]
    paths = list(paths_of(obj))
    out = obj
    for _ in range(data.draw(hs.integers(1, 3))):
        out = replaced(out, data.draw(hs.sampled_from(paths)), data.draw(JSON))
        paths = list(paths_of(out)) or paths
    only_field_errors(out)
