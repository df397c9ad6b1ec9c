"""Discovery documents: the aggregated and legacy forms, content negotiation and /version."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.kubeapi import discovery, resources

V2 = discovery.AGGREGATED_MEDIA_TYPE
V2BETA1 = discovery.AGGREGATED_MEDIA_TYPE_V2BETA1
KUBECTL_ACCEPT = f"{V2},{V2BETA1},application/json"


def test_media_type_constant_is_exact() -> None:
    assert V2 == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (KUBECTL_ACCEPT, "v2"),
        (f"{V2BETA1},application/json", "v2beta1"),
        (f"{V2}", "v2"),
        ("application/json", None),
        ("application/json, */*", None),
        ("*/*", None),
        ("", None),
        (None, None),
        (f"application/json,{V2}", None),
        (f"{V2};q=0.5,{V2BETA1};q=0.9", "v2beta1"),
        (f"{V2};q=0,application/json", None),
        ("application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json", None),
        (
            f"application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,{V2}",
            "v2",
        ),
        ("application/JSON; as=APIGroupDiscoveryList; v=v2; g=apidiscovery.k8s.io", "v2"),
        ("application/vnd.kubernetes.protobuf", None),
    ],
    ids=[
        "kubectl",
        "v2beta1-only",
        "v2-only",
        "plain-json",
        "json-and-any",
        "any",
        "empty",
        "no-header",
        "json-preferred-first",
        "q-values",
        "q-zero-refused",
        "unknown-version-then-json",
        "protobuf-skipped",
        "params-in-any-order-and-case",
        "protobuf-only",
    ],
)
def test_aggregated_version(accept: str | None, expected: str | None) -> None:
    assert discovery.aggregated_version(accept) == expected


@pytest.mark.parametrize(
    ("version", "expected"),
    [("v2", V2), ("v2beta1", V2BETA1), (None, "application/json")],
    ids=["v2", "v2beta1", "legacy"],
)
def test_media_type(version: str | None, expected: str) -> None:
    assert discovery.media_type(version) == expected


def _aggregated_resources(doc: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    out = {}
    for item in doc["items"]:
        group = item["metadata"].get("name", "")
        for v in item["versions"]:
            assert v["freshness"] == "Current"
            for r in v["resources"]:
                out[(group, v["version"], r["resource"])] = r
    return out


def test_aggregated_documents_hold_every_resource_once() -> None:
    core = _aggregated_resources(discovery.aggregated("/api"))
    named = _aggregated_resources(discovery.aggregated("/apis"))
    assert {k[0] for k in core} == {""}
    assert "" not in {k[0] for k in named}
    assert set(core) | set(named) == {(r.group, r.version, r.plural) for r in resources.RESOURCES}


@pytest.mark.parametrize("r", resources.RESOURCES, ids=lambda r: f"{r.api_version}/{r.plural}")
def test_aggregated_resource_entry(r: resources.Resource) -> None:
    doc = discovery.aggregated("/api" if r.group == "" else "/apis")
    entry = _aggregated_resources(doc)[(r.group, r.version, r.plural)]
    assert entry["responseKind"] == {"group": r.group, "version": r.version, "kind": r.kind}
    assert entry["scope"] == ("Namespaced" if r.namespaced else "Cluster")
    assert entry["singularResource"] == r.singular
    assert entry["verbs"] == list(r.verbs)
    assert entry.get("shortNames", []) == list(r.short_names)
    assert entry.get("categories", []) == list(r.categories)
    assert [s["subresource"] for s in entry.get("subresources", [])] == [s.name for s in r.subresources]


def test_aggregated_scale_subresource_is_an_autoscaling_scale() -> None:
    entry = _aggregated_resources(discovery.aggregated("/apis"))[("apps", "v1", "deployments")]
    scale = {s["subresource"]: s for s in entry["subresources"]}["scale"]
    assert scale == {
        "subresource": "scale",
        "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
        "verbs": ["get", "patch", "update"],
    }


def test_aggregated_groups_in_discovery_order() -> None:
    names = [item["metadata"]["name"] for item in discovery.aggregated("/apis")["items"]]
    assert names == ["apps", "networking.k8s.io", "discovery.k8s.io", "authorization.k8s.io", "extensions"]
    assert discovery.aggregated("/api")["items"][0]["metadata"] == {"creationTimestamp": None}


@pytest.mark.parametrize(
    ("version", "api_version"),
    [("v2", "apidiscovery.k8s.io/v2"), ("v2beta1", "apidiscovery.k8s.io/v2beta1")],
    ids=["v2", "v2beta1"],
)
def test_aggregated_envelope(version: str, api_version: str) -> None:
    doc = discovery.aggregated("/apis", version)
    assert (doc["kind"], doc["apiVersion"], doc["metadata"]) == ("APIGroupDiscoveryList", api_version, {})


@pytest.mark.parametrize(
    ("root", "version"), [("/api/v1", "v2"), ("/api", "v3")], ids=["not-a-root", "unknown-version"]
)
def test_aggregated_refuses(root: str, version: str) -> None:
    with pytest.raises(ValueError):
        discovery.aggregated(root, version)


@pytest.mark.parametrize(
    ("server_address", "cidrs"),
    [("", []), ("10.0.0.1:6443", [{"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"}])],
    ids=["no-address", "address"],
)
def test_api_versions(server_address: str, cidrs: list[dict[str, str]]) -> None:
    assert discovery.api_versions(server_address) == {
        "kind": "APIVersions",
        "apiVersion": "v1",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": cidrs,
    }


def test_api_group_list() -> None:
    doc = discovery.api_group_list()
    assert (doc["kind"], doc["apiVersion"]) == ("APIGroupList", "v1")
    by_name = {g["name"]: g for g in doc["groups"]}
    assert list(by_name) == [
        "apps",
        "networking.k8s.io",
        "discovery.k8s.io",
        "authorization.k8s.io",
        "extensions",
    ]
    assert by_name["extensions"] == {
        "name": "extensions",
        "versions": [{"groupVersion": "extensions/v1beta1", "version": "v1beta1"}],
        "preferredVersion": {"groupVersion": "extensions/v1beta1", "version": "v1beta1"},
    }


@pytest.mark.parametrize(
    ("group", "preferred"),
    [("apps", "apps/v1"), ("networking.k8s.io", "networking.k8s.io/v1"), ("batch", None), ("", None)],
    ids=["apps", "networking", "not-served", "core-is-not-a-group"],
)
def test_api_group(group: str, preferred: str | None) -> None:
    doc = discovery.api_group(group)
    assert (doc["preferredVersion"]["groupVersion"] if doc else None) == preferred
    if doc:
        assert (doc["kind"], doc["name"]) == ("APIGroup", group)


def _legacy_entries(group: str, version: str) -> dict[str, dict[str, Any]]:
    doc = discovery.api_resource_list(group, version)
    assert doc is not None
    assert (doc["kind"], doc["apiVersion"]) == ("APIResourceList", "v1")
    assert doc["groupVersion"] == (f"{group}/{version}" if group else version)
    return {e["name"]: e for e in doc["resources"]}


@pytest.mark.parametrize(
    ("group", "version", "name", "expected"),
    [
        (
            "",
            "v1",
            "pods",
            {
                "name": "pods",
                "singularName": "pod",
                "namespaced": True,
                "kind": "Pod",
                "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                "shortNames": ["po"],
                "categories": ["all"],
            },
        ),
        (
            "",
            "v1",
            "pods/log",
            {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
        ),
        (
            "",
            "v1",
            "pods/eviction",
            {
                "name": "pods/eviction",
                "singularName": "",
                "namespaced": True,
                "group": "policy",
                "version": "v1",
                "kind": "Eviction",
                "verbs": ["create"],
            },
        ),
        (
            "apps",
            "v1",
            "deployments/scale",
            {
                "name": "deployments/scale",
                "singularName": "",
                "namespaced": True,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            },
        ),
        (
            "",
            "v1",
            "nodes",
            {
                "name": "nodes",
                "singularName": "node",
                "namespaced": False,
                "kind": "Node",
                "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                "shortNames": ["no"],
            },
        ),
        (
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
            {
                "name": "selfsubjectaccessreviews",
                "singularName": "selfsubjectaccessreview",
                "namespaced": False,
                "kind": "SelfSubjectAccessReview",
                "verbs": ["create"],
            },
        ),
    ],
    ids=["pods", "pods-log", "pods-eviction", "deployments-scale", "nodes", "selfsubjectaccessreviews"],
)
def test_api_resource_list_entries(group: str, version: str, name: str, expected: dict[str, Any]) -> None:
    assert _legacy_entries(group, version)[name] == expected


@pytest.mark.parametrize("gv", resources.group_versions(), ids=lambda gv: "/".join(filter(None, gv)))
def test_api_resource_list_names_every_resource_and_subresource(gv: tuple[str, str]) -> None:
    names = set(_legacy_entries(*gv))
    expected = set()
    for r in resources.in_group_version(*gv):
        expected |= {r.plural, *(f"{r.plural}/{s.name}" for s in r.subresources)}
    assert names == expected


@pytest.mark.parametrize(
    ("group", "version"),
    [("", "v2"), ("apps", "v1beta1"), ("batch", "v1")],
    ids=["core-v2", "apps-beta", "batch"],
)
def test_api_resource_list_of_unserved_group_version(group: str, version: str) -> None:
    assert discovery.api_resource_list(group, version) is None


@pytest.mark.parametrize(
    ("path", "accept", "content_type", "kind"),
    [
        ("/api", KUBECTL_ACCEPT, V2, "APIGroupDiscoveryList"),
        ("/apis", KUBECTL_ACCEPT, V2, "APIGroupDiscoveryList"),
        ("/apis/", KUBECTL_ACCEPT, V2, "APIGroupDiscoveryList"),
        ("/apis", f"{V2BETA1},application/json", V2BETA1, "APIGroupDiscoveryList"),
        ("/api", "application/json", "application/json", "APIVersions"),
        ("/apis", "application/json, */*", "application/json", "APIGroupList"),
        ("/api/v1", KUBECTL_ACCEPT, "application/json", "APIResourceList"),
        ("/apis/apps", None, "application/json", "APIGroup"),
        ("/apis/apps/v1", None, "application/json", "APIResourceList"),
        ("/apis/extensions/v1beta1/", None, "application/json", "APIResourceList"),
        ("/api/v2", None, None, None),
        ("/apis/batch", None, None, None),
        ("/apis/apps/v1/deployments", None, None, None),
        ("/api/v1/pods", None, None, None),
        ("/version", None, None, None),
        ("/", None, None, None),
    ],
    ids=[
        "api-aggregated",
        "apis-aggregated",
        "trailing-slash",
        "apis-v2beta1",
        "api-legacy",
        "apis-legacy",
        "group-version-always-legacy",
        "group",
        "group-version",
        "beta-group-version",
        "unserved-core-version",
        "unserved-group",
        "a-collection-is-not-discovery",
        "a-core-collection-is-not-discovery",
        "version-is-separate",
        "root",
    ],
)
def test_document(path: str, accept: str | None, content_type: str | None, kind: str | None) -> None:
    found = discovery.document(path, accept)
    assert (found[0] if found else None) == content_type
    assert (found[1]["kind"] if found else None) == kind


def test_version_info() -> None:
    doc = discovery.version_info(git_commit="abc", build_date="2026-11-28T00:00:00Z", platform="linux/arm64")
    assert (doc["major"], doc["minor"]) == ("1", "32")
    assert doc["gitVersion"].startswith("v1.32.")
    assert (doc["gitCommit"], doc["buildDate"], doc["platform"]) == (
        "abc",
        "2026-11-28T00:00:00Z",
        "linux/arm64",
    )
    # The official Python client refuses a VersionInfo with any of these missing.
    required = (
        "major",
        "minor",
        "gitVersion",
        "gitCommit",
        "gitTreeState",
        "buildDate",
        "goVersion",
        "compiler",
        "platform",
    )
    assert all(isinstance(discovery.version_info()[k], str) for k in required)
