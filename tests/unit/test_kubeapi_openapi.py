"""The bare OpenAPI v3 stub: what kubectl's field-validation check looks for, and nothing that would
make it compute patches from schemas we do not have."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.kubeapi import openapi, resources


def supports_field_validation(root: dict[str, Any], group: str, version: str, kind: str) -> bool:
    """cli-runtime's QueryParamVerifierV3, restated: the group-version's document (found through the
    root's paths) has a PATCH tagged with the GVK taking the `fieldValidation` query parameter."""
    key = f"apis/{group}/{version}" if group else f"api/{version}"
    entry = root["paths"].get(key)
    if entry is None:
        return False
    doc = openapi.group_version(entry["serverRelativeURL"])
    assert doc is not None
    for item in doc["paths"].values():
        op = item.get("patch")
        if op is None or op.get("x-kubernetes-group-version-kind") != {
            "group": group,
            "version": version,
            "kind": kind,
        }:
            continue
        if any(p["name"] == "fieldValidation" and p["in"] == "query" for p in op.get("parameters", [])):
            return True
    return False


def test_root_names_every_served_group_version() -> None:
    assert openapi.root() == {
        "paths": {
            "api/v1": {"serverRelativeURL": "/openapi/v3/api/v1"},
            "apis/apps/v1": {"serverRelativeURL": "/openapi/v3/apis/apps/v1"},
            "apis/networking.k8s.io/v1": {"serverRelativeURL": "/openapi/v3/apis/networking.k8s.io/v1"},
            "apis/discovery.k8s.io/v1": {"serverRelativeURL": "/openapi/v3/apis/discovery.k8s.io/v1"},
            "apis/authorization.k8s.io/v1": {"serverRelativeURL": "/openapi/v3/apis/authorization.k8s.io/v1"},
            "apis/extensions/v1beta1": {"serverRelativeURL": "/openapi/v3/apis/extensions/v1beta1"},
        }
    }


@pytest.mark.parametrize(
    "r", [r for r in resources.RESOURCES if "patch" in r.verbs], ids=lambda r: f"{r.api_version}/{r.kind}"
)
def test_every_patchable_kind_passes_the_field_validation_check(r: resources.Resource) -> None:
    assert supports_field_validation(openapi.root(), r.group, r.version, r.kind)


def test_the_check_fails_for_a_kind_not_served() -> None:
    assert not supports_field_validation(openapi.root(), "apps", "v1", "StatefulSet")
    assert not supports_field_validation(openapi.root(), "batch", "v1", "Job")


@pytest.mark.parametrize(
    ("path", "patch_path"),
    [
        ("apis/apps/v1", "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"),
        ("/openapi/v3/apis/apps/v1", "/apis/apps/v1/namespaces/{namespace}/replicasets/{name}"),
        ("/openapi/v3/api/v1?hash=abc", "/api/v1/nodes/{name}"),
        ("api/v1", "/api/v1/namespaces/{namespace}/pods/{name}"),
        ("api/v1/", "/api/v1/namespaces/{name}"),
        ("apis/extensions/v1beta1", "/apis/extensions/v1beta1/namespaces/{namespace}/ingresses/{name}"),
    ],
    ids=[
        "bare",
        "prefixed",
        "cluster-scoped-with-query",
        "core-namespaced",
        "namespace-is-cluster-scoped",
        "beta-ingress",
    ],
)
def test_group_version_paths(path: str, patch_path: str) -> None:
    doc = openapi.group_version(path)
    assert doc is not None
    assert (doc["openapi"], doc["info"]["title"]) == ("3.0.0", "Kubernetes")
    assert "patch" in doc["paths"][patch_path]


def test_create_only_kind_gets_a_post_on_its_collection() -> None:
    doc = openapi.group_version("apis/authorization.k8s.io/v1")
    assert doc is not None
    op = doc["paths"]["/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"]["post"]
    assert op["x-kubernetes-group-version-kind"]["kind"] == "SelfSubjectAccessReview"


@pytest.mark.parametrize(
    "path",
    ["apis/apps/v1beta1", "apis/batch/v1", "api/v2", "apis/apps", "api", "", "openapi/v2", "/openapi/v3"],
    ids=["old-apps", "batch", "core-v2", "group-only", "api-only", "empty", "v2", "root"],
)
def test_group_version_not_served(path: str) -> None:
    assert openapi.group_version(path) is None


def _walk(value: Any) -> list[Any]:
    out = [value]
    if isinstance(value, dict):
        for v in value.values():
            out += _walk(v)
    elif isinstance(value, list):
        for v in value:
            out += _walk(v)
    return out


@pytest.mark.parametrize("gv", resources.group_versions(), ids=lambda gv: "/".join(filter(None, gv)))
def test_no_request_bodies_and_no_schemas(gv: tuple[str, str]) -> None:
    """A PATCH advertising strategic-merge-patch would make kubectl look for v3 schemas we lack."""
    group, version = gv
    doc = openapi.group_version(f"apis/{group}/{version}" if group else f"api/{version}")
    assert doc is not None and "components" not in doc
    for node in _walk(doc):
        if isinstance(node, dict):
            assert "requestBody" not in node
        assert node != "application/strategic-merge-patch+json"
