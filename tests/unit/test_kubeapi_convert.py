"""Version conversion: Ingress v1beta1 <-> v1 as Kubernetes converts it; other kinds by apiVersion only."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from orchestrator import model
from orchestrator.kubeapi import convert

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BETA = yaml.safe_load((EXAMPLES / "basic-ingress.yaml").read_text())
V1 = yaml.safe_load((EXAMPLES / "basic-ingress-v1.yaml").read_text())
ING_V1 = "networking.k8s.io/v1"
ING_BETA = "extensions/v1beta1"


def _ingress(api_version: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": "Ingress", "metadata": {"name": "web"}, "spec": spec}


def test_seed_examples_are_the_same_ingress() -> None:
    assert convert.to_version(BETA, ING_V1) == V1
    assert convert.to_version(V1, ING_BETA) == BETA


@pytest.mark.parametrize(
    ("start", "via"),
    [(BETA, ING_V1), (V1, ING_BETA), (BETA, "networking.k8s.io/v1beta1")],
    ids=["beta-v1-beta", "v1-beta-v1", "beta-networking-beta"],
)
def test_seed_round_trips(start: dict[str, Any], via: str) -> None:
    assert convert.to_version(convert.to_version(start, via), start["apiVersion"]) == start


@pytest.mark.parametrize(
    ("backend", "v1_form"),
    [
        (
            {"serviceName": "demo", "servicePort": 5005},
            {"service": {"name": "demo", "port": {"number": 5005}}},
        ),
        (
            {"serviceName": "demo", "servicePort": "http"},
            {"service": {"name": "demo", "port": {"name": "http"}}},
        ),
        (
            {"serviceName": "demo", "servicePort": "8080"},
            {"service": {"name": "demo", "port": {"number": 8080}}},
        ),
        ({"serviceName": "demo"}, {"service": {"name": "demo"}}),
        (
            {"service": {"name": "demo", "port": {"number": 80}}},
            {"service": {"name": "demo", "port": {"number": 80}}},
        ),
    ],
    ids=["number", "named-port", "digit-string-is-a-number", "no-port", "already-v1"],
)
def test_backend_to_v1(backend: dict[str, Any], v1_form: dict[str, Any]) -> None:
    out = convert.to_version(_ingress(ING_BETA, {"backend": backend}), ING_V1)
    assert out["spec"] == {"defaultBackend": v1_form}


@pytest.mark.parametrize(
    ("backend", "beta_form"),
    [
        (
            {"service": {"name": "demo", "port": {"number": 5005}}},
            {"serviceName": "demo", "servicePort": 5005},
        ),
        (
            {"service": {"name": "demo", "port": {"name": "http"}}},
            {"serviceName": "demo", "servicePort": "http"},
        ),
        ({"service": {"name": "demo"}}, {"serviceName": "demo"}),
        ({"serviceName": "demo", "servicePort": 80}, {"serviceName": "demo", "servicePort": 80}),
    ],
    ids=["number", "named-port", "no-port", "already-beta"],
)
def test_backend_to_beta(backend: dict[str, Any], beta_form: dict[str, Any]) -> None:
    out = convert.to_version(_ingress(ING_V1, {"defaultBackend": backend}), ING_BETA)
    assert out["spec"] == {"backend": beta_form}


RULES_BETA = {
    "ingressClassName": "skiff",
    "tls": [{"hosts": ["a.example"], "secretName": "cert"}],
    "rules": [
        {
            "host": "a.example",
            "http": {
                "paths": [
                    {"path": "/api", "backend": {"serviceName": "api", "servicePort": 80}},
                    {
                        "path": "/",
                        "pathType": "Exact",
                        "backend": {"serviceName": "web", "servicePort": "http"},
                    },
                ]
            },
        },
        {"host": "b.example"},
    ],
}
RULES_V1 = {
    "ingressClassName": "skiff",
    "tls": [{"hosts": ["a.example"], "secretName": "cert"}],
    "rules": [
        {
            "host": "a.example",
            "http": {
                "paths": [
                    {
                        "path": "/api",
                        "backend": {"service": {"name": "api", "port": {"number": 80}}},
                        "pathType": "ImplementationSpecific",
                    },
                    {
                        "path": "/",
                        "pathType": "Exact",
                        "backend": {"service": {"name": "web", "port": {"name": "http"}}},
                    },
                ]
            },
        },
        {"host": "b.example"},
    ],
}


def test_rules_to_v1_default_the_path_type() -> None:
    assert convert.to_version(_ingress(ING_BETA, RULES_BETA), ING_V1)["spec"] == RULES_V1


def test_rules_to_beta_keep_the_path_type() -> None:
    """v1beta1 has pathType too, and Kubernetes' conversion keeps it: the default is not undone."""
    out = convert.to_version(_ingress(ING_V1, RULES_V1), ING_BETA)["spec"]
    paths = out["rules"][0]["http"]["paths"]
    assert [p["pathType"] for p in paths] == ["ImplementationSpecific", "Exact"]
    assert [p["backend"] for p in paths] == [
        {"serviceName": "api", "servicePort": 80},
        {"serviceName": "web", "servicePort": "http"},
    ]
    assert (out["ingressClassName"], out["tls"], out["rules"][1]) == (
        "skiff",
        RULES_BETA["tls"],
        {"host": "b.example"},
    )


@pytest.mark.parametrize(
    ("spec", "target", "expected"),
    [
        (
            {
                "backend": {"serviceName": "old", "servicePort": 1},
                "defaultBackend": {"service": {"name": "new"}},
            },
            ING_V1,
            {"defaultBackend": {"service": {"name": "new"}}},
        ),
        (
            {
                "backend": {"serviceName": "old", "servicePort": 1},
                "defaultBackend": {"service": {"name": "new"}},
            },
            ING_BETA,
            {"backend": {"serviceName": "old", "servicePort": 1}},
        ),
        (
            {"defaultBackend": {"serviceName": "mixed", "servicePort": 9}},
            ING_V1,
            {"defaultBackend": {"service": {"name": "mixed", "port": {"number": 9}}}},
        ),
        (
            {"backend": {"service": {"name": "mixed", "port": {"number": 9}}}},
            ING_BETA,
            {"backend": {"serviceName": "mixed", "servicePort": 9}},
        ),
    ],
    ids=["both-keys-to-v1", "both-keys-to-beta", "beta-backend-under-v1-key", "v1-backend-under-beta-key"],
)
def test_the_input_form_is_read_from_the_content(
    spec: dict[str, Any], target: str, expected: dict[str, Any]
) -> None:
    assert convert.to_version(_ingress(target, spec), target)["spec"] == expected


def test_annotations_and_status_are_left_alone() -> None:
    obj = copy.deepcopy(BETA)
    obj["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": '{"spec":{"backend":{}}}\n'
    }
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}
    out = convert.to_version(obj, ING_V1)
    assert out["metadata"] == obj["metadata"]
    assert out["status"] == obj["status"]


@pytest.mark.parametrize(
    ("kind", "start", "target"),
    [
        ("Deployment", "apps/v1", "extensions/v1beta1"),
        ("Deployment", "extensions/v1beta1", "apps/v1"),
        ("ReplicaSet", "apps/v1", "extensions/v1beta1"),
        ("ReplicaSet", "apps/v1beta2", "apps/v1"),
    ],
    ids=["deployment-to-beta", "deployment-to-v1", "replicaset-to-beta", "replicaset-from-apps-beta"],
)
def test_workloads_only_change_api_version(kind: str, start: str, target: str) -> None:
    spec = {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "d"}},
        "template": {"spec": {"containers": []}},
    }
    obj = {"apiVersion": start, "kind": kind, "metadata": {"name": "d"}, "spec": spec}
    assert convert.to_version(obj, target) == {**obj, "apiVersion": target}


ALL_EXAMPLES = [
    (BETA, ING_V1),
    (BETA, ING_BETA),
    (V1, ING_BETA),
    (V1, ING_V1),
    (_ingress(ING_BETA, RULES_BETA), ING_V1),
    (_ingress(ING_V1, RULES_V1), ING_BETA),
    ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}, "v1"),
    ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}, "v1"),
]
IDS = [
    "beta-to-v1",
    "beta-to-beta",
    "v1-to-beta",
    "v1-to-v1",
    "rules-to-v1",
    "rules-to-beta",
    "pod",
    "namespace",
]


@pytest.mark.parametrize(("obj", "target"), ALL_EXAMPLES, ids=IDS)
def test_idempotent_and_pure(obj: dict[str, Any], target: str) -> None:
    before = copy.deepcopy(obj)
    once = convert.to_version(obj, target)
    assert obj == before  # the argument is never changed
    assert once is not obj and once["apiVersion"] == target
    assert convert.to_version(once, target) == once
    once["metadata"]["name"] = "changed"  # the result shares nothing with the argument
    assert obj == before


@pytest.mark.parametrize(
    ("obj", "target"), [(o, t) for o, t in ALL_EXAMPLES if o["kind"] == "Ingress"], ids=IDS[:6]
)
def test_converted_ingresses_pass_validation(obj: dict[str, Any], target: str) -> None:
    model.validate(convert.to_version(obj, target))


@pytest.mark.parametrize(
    ("obj", "target", "message"),
    [
        ({"apiVersion": "v1", "kind": "Pod"}, "apps/v1", 'no kind "Pod" is registered for version "apps/v1"'),
        ({"apiVersion": "v1", "kind": "Widget"}, "v1", 'no kind "Widget" is known'),
        ({"apiVersion": "v1"}, "v1", 'no kind "None" is known'),
    ],
    ids=["wrong-version", "unknown-kind", "no-kind"],
)
def test_refuses(obj: dict[str, Any], target: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        convert.to_version(obj, target)


@pytest.mark.parametrize(
    ("kind", "stored"),
    [("Ingress", ING_V1), ("Deployment", "apps/v1"), ("Pod", "v1"), ("Namespace", "v1")],
    ids=["ingress", "deployment", "pod", "namespace"],
)
def test_stored_version(kind: str, stored: str) -> None:
    assert convert.stored_version(kind) == stored


def test_to_stored_writes_the_v1_ingress() -> None:
    assert convert.to_stored(BETA) == V1


ports = st.one_of(
    st.integers(min_value=1, max_value=65535),
    st.from_regex(r"[a-z][a-z0-9-]{0,13}", fullmatch=True),
)


@given(name=st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True), port=ports)
def test_beta_backend_survives_a_round_trip(name: str, port: int | str) -> None:
    obj = _ingress(ING_BETA, {"backend": {"serviceName": name, "servicePort": port}})
    v1 = convert.to_version(obj, ING_V1)
    assert convert.to_version(v1, ING_BETA) == obj
    assert convert.to_version(convert.to_version(v1, ING_BETA), ING_V1) == v1
