"""Defaulting after validation (model.validate then model.apply_defaults, as the store's writer runs
them): a field sent as JSON null is a field left out, as Kubernetes decodes it, so it gets its default."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from orchestrator import model

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]},
        },
    },
}

SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web"},
    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
}


def stored(obj: dict[str, Any]) -> dict[str, Any]:
    return model.apply_defaults(model.validate(obj), copy=False)


def with_field(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(base)
    *parents, last = path.split(".")
    node: Any = obj
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    node[last] = value
    return obj


@pytest.mark.parametrize(
    ("base", "path", "where", "default"),
    [
        (DEPLOYMENT, "spec.strategy.rollingUpdate", "spec.strategy.rollingUpdate.maxSurge", "25%"),
        (DEPLOYMENT, "spec.strategy.rollingUpdate.maxSurge", "spec.strategy.rollingUpdate.maxSurge", "25%"),
        (DEPLOYMENT, "spec.strategy", "spec.strategy.type", "RollingUpdate"),
        (DEPLOYMENT, "spec.replicas", "spec.replicas", 1),
        (DEPLOYMENT, "spec.template.spec.restartPolicy", "spec.template.spec.restartPolicy", "Always"),
        (SERVICE, "spec.type", "spec.type", "ClusterIP"),
        (SERVICE, "spec.ports.0.targetPort", "spec.ports.0.targetPort", 80),
        (SERVICE, "spec.ports.0.protocol", "spec.ports.0.protocol", "TCP"),
    ],
)
def test_a_null_field_gets_its_default(base: dict[str, Any], path: str, where: str, default: Any) -> None:
    node: Any = stored(with_field(base, path, None))
    for key in where.split("."):
        node = node[int(key)] if isinstance(node, list) else node[key]
    assert node == default


def test_nulls_leave_no_trace_in_the_stored_object() -> None:
    obj = with_field(with_field(DEPLOYMENT, "metadata.annotations", None), "spec.paused", None)
    out = stored(obj)
    assert "annotations" not in out["metadata"] and "paused" not in out["spec"]
    assert out["spec"]["replicas"] == 2  # the fields that were set keep their values
    assert obj["metadata"]["annotations"] is None  # the caller's object is not changed


def test_a_null_in_a_list_is_still_refused() -> None:
    with pytest.raises(model.ValidationError, match="containers"):
        stored(with_field(DEPLOYMENT, "spec.template.spec.containers", [None]))
