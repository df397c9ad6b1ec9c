"""The REST resource registry: every served resource as Kubernetes names it, and its lookups."""

from __future__ import annotations

import pytest

from orchestrator import model
from orchestrator.kubeapi import resources
from orchestrator.kubeapi.resources import Resource, Subresource

# (apiVersion, plural) -> (kind, singular, short names, namespaced, categories, subresources), as a real
# Kubernetes 1.32 API server lists them (for the subresources Skiff serves).
EXPECTED = {
    ("v1", "pods"): ("Pod", "pod", ("po",), True, ("all",), ("status", "log", "eviction", "binding")),
    ("v1", "services"): ("Service", "service", ("svc",), True, ("all",), ("status",)),
    ("v1", "endpoints"): ("Endpoints", "endpoints", ("ep",), True, (), ()),
    ("v1", "configmaps"): ("ConfigMap", "configmap", ("cm",), True, (), ()),
    ("v1", "nodes"): ("Node", "node", ("no",), False, (), ("status",)),
    ("v1", "events"): ("Event", "event", ("ev",), True, (), ()),
    ("v1", "namespaces"): ("Namespace", "namespace", ("ns",), False, (), ()),
    ("apps/v1", "deployments"): (
        "Deployment",
        "deployment",
        ("deploy",),
        True,
        ("all",),
        ("scale", "status"),
    ),
    ("apps/v1", "replicasets"): ("ReplicaSet", "replicaset", ("rs",), True, ("all",), ("scale", "status")),
    ("networking.k8s.io/v1", "ingresses"): ("Ingress", "ingress", ("ing",), True, (), ()),
    ("extensions/v1beta1", "ingresses"): ("Ingress", "ingress", ("ing",), True, (), ()),
    ("discovery.k8s.io/v1", "endpointslices"): ("EndpointSlice", "endpointslice", (), True, (), ()),
    ("authorization.k8s.io/v1", "selfsubjectaccessreviews"): (
        "SelfSubjectAccessReview",
        "selfsubjectaccessreview",
        (),
        False,
        (),
        (),
    ),
}


def test_exactly_the_expected_resources_are_served() -> None:
    assert {(r.api_version, r.plural) for r in resources.RESOURCES} == set(EXPECTED)


@pytest.mark.parametrize("key", sorted(EXPECTED), ids=lambda k: f"{k[0]}/{k[1]}")
def test_resource_facts(key: tuple[str, str]) -> None:
    kind, singular, short, namespaced, categories, subs = EXPECTED[key]
    r = resources.by_path(*resources.split_api_version(key[0]), key[1])
    assert r is not None
    assert (r.kind, r.singular, r.short_names, r.namespaced, r.categories) == (
        kind,
        singular,
        short,
        namespaced,
        categories,
    )
    assert tuple(s.name for s in r.subresources) == subs
    assert r.scope == ("Namespaced" if namespaced else "Cluster")


def test_served_versions_are_versions_the_model_accepts() -> None:
    for r in resources.RESOURCES:
        if r.kind in model.KINDS:
            assert r.api_version in model.KINDS[r.kind].api_versions, r


def test_names_agree_with_model_resolve_kind() -> None:
    for r in resources.RESOURCES:
        if r.kind in model.KINDS:
            for name in (r.plural, r.singular, *r.short_names):
                assert model.resolve_kind(name) == r.kind


@pytest.mark.parametrize(
    ("kind", "verbs"),
    [
        ("Pod", ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")),
        ("Namespace", ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")),
        ("SelfSubjectAccessReview", ("create",)),
    ],
    ids=["stored", "namespace", "create-only"],
)
def test_verbs(kind: str, verbs: tuple[str, ...]) -> None:
    r = resources.for_kind(kind)
    assert r is not None and r.verbs == verbs


@pytest.mark.parametrize(
    ("api_version", "plural", "sub", "expected"),
    [
        (
            "apps/v1",
            "deployments",
            "scale",
            Subresource("scale", "Scale", "autoscaling", "v1", ("get", "patch", "update")),
        ),
        (
            "apps/v1",
            "replicasets",
            "status",
            Subresource("status", "ReplicaSet", "apps", "v1", ("get", "patch", "update")),
        ),
        ("v1", "pods", "log", Subresource("log", "Pod", "", "v1", ("get",))),
        ("v1", "pods", "eviction", Subresource("eviction", "Eviction", "policy", "v1", ("create",))),
        ("v1", "pods", "binding", Subresource("binding", "Binding", "", "v1", ("create",))),
        ("v1", "nodes", "status", Subresource("status", "Node", "", "v1", ("get", "patch", "update"))),
        ("v1", "services", "status", Subresource("status", "Service", "", "v1", ("get", "patch", "update"))),
    ],
    ids=["deploy-scale", "rs-status", "pod-log", "pod-eviction", "pod-binding", "node-status", "svc-status"],
)
def test_subresources(api_version: str, plural: str, sub: str, expected: Subresource) -> None:
    r = resources.by_path(*resources.split_api_version(api_version), plural)
    assert r is not None
    assert {s.name: s for s in r.subresources}[sub] == expected


@pytest.mark.parametrize(
    ("group", "version", "plural", "expected"),
    [
        ("", "v1", "pods", "v1/Pod"),
        ("apps", "v1", "deployments", "apps/v1/Deployment"),
        ("extensions", "v1beta1", "ingresses", "extensions/v1beta1/Ingress"),
        ("networking.k8s.io", "v1", "ingresses", "networking.k8s.io/v1/Ingress"),
        ("", "v1", "deployments", None),
        ("extensions", "v1beta1", "deployments", None),
        ("apps", "v1beta2", "deployments", None),
        ("", "v1", "widgets", None),
        ("", "v1", "pod", None),
    ],
    ids=[
        "pods",
        "deployments",
        "beta-ingress",
        "v1-ingress",
        "wrong-group",
        "beta-deployment-not-served",
        "old-apps",
        "unknown",
        "singular-is-not-a-path",
    ],
)
def test_by_path(group: str, version: str, plural: str, expected: str | None) -> None:
    r = resources.by_path(group, version, plural)
    assert (f"{r.api_version}/{r.kind}" if r else None) == expected


@pytest.mark.parametrize(
    ("kind", "api_version", "expected"),
    [
        ("Ingress", None, "networking.k8s.io/v1"),
        ("Ingress", "extensions/v1beta1", "extensions/v1beta1"),
        ("Deployment", None, "apps/v1"),
        ("Namespace", None, "v1"),
        ("Deployment", "extensions/v1beta1", None),
        ("Widget", None, None),
    ],
    ids=[
        "ingress-preferred",
        "ingress-beta",
        "deployment",
        "namespace",
        "not-served-version",
        "unknown-kind",
    ],
)
def test_for_kind(kind: str, api_version: str | None, expected: str | None) -> None:
    r = resources.for_kind(kind, api_version)
    assert (r.api_version if r else None) == expected


def test_group_versions_core_first_and_extensions_after_networking() -> None:
    gvs = resources.group_versions()
    assert gvs[0] == ("", "v1")
    assert set(gvs) == {
        ("", "v1"),
        ("apps", "v1"),
        ("networking.k8s.io", "v1"),
        ("discovery.k8s.io", "v1"),
        ("authorization.k8s.io", "v1"),
        ("extensions", "v1beta1"),
    }
    # kubectl's RESTMapper takes the first group serving "ingresses": it must be the v1 one.
    assert gvs.index(("networking.k8s.io", "v1")) < gvs.index(("extensions", "v1beta1"))


@pytest.mark.parametrize(
    ("r_kwargs", "group_resource", "group_kind", "api_version"),
    [
        (
            {"kind": "Deployment", "group": "apps", "plural": "deployments"},
            "deployments.apps",
            "Deployment.apps",
            "apps/v1",
        ),
        ({"kind": "Pod", "group": "", "plural": "pods"}, "pods", "Pod", "v1"),
    ],
    ids=["named-group", "core"],
)
def test_qualified_names(
    r_kwargs: dict[str, str], group_resource: str, group_kind: str, api_version: str
) -> None:
    r = Resource(
        version="v1",
        singular="",
        short_names=(),
        namespaced=True,
        verbs=(),
        categories=(),
        subresources=(),
        **r_kwargs,
    )
    assert (r.group_resource, r.group_kind, r.api_version) == (group_resource, group_kind, api_version)


def test_namespace_comes_from_the_model_once_it_has_it() -> None:
    kinds = dict(model.KINDS)
    kinds["Namespace"] = model.KindInfo(
        "Namespace", ("v1",), model.KINDS["Node"].message, False, ("namespaces", "namespace", "nsx")
    )
    built = {r.kind: r for r in resources.build(kinds)}
    assert built["Namespace"].short_names == ("nsx",)
    assert sum(r.kind == "Namespace" for r in resources.build(kinds)) == 1


def test_a_new_model_kind_is_served_at_its_first_version() -> None:
    kinds = dict(model.KINDS)
    kinds["Secret"] = model.KindInfo(
        "Secret", ("v1", "v1beta1"), model.KINDS["ConfigMap"].message, True, ("secrets", "secret")
    )
    secrets = [r for r in resources.build(kinds) if r.kind == "Secret"]
    assert [(r.api_version, r.plural, r.singular, r.short_names) for r in secrets] == [
        ("v1", "secrets", "secret", ())
    ]
    assert secrets[0].verbs == resources.CRUD_VERBS


@pytest.mark.parametrize(
    ("versions", "preferred_first"),
    [
        (["v1beta1", "v1", "v2alpha1"], ["v1", "v1beta1", "v2alpha1"]),
        (["v1", "v2"], ["v2", "v1"]),
        (["v1beta1", "v1beta2"], ["v1beta2", "v1beta1"]),
    ],
    ids=["ga-beta-alpha", "higher-ga", "higher-beta"],
)
def test_version_priority(versions: list[str], preferred_first: list[str]) -> None:
    assert sorted(versions, key=resources.version_priority) == preferred_first


@pytest.mark.parametrize(
    ("api_version", "expected"),
    [("v1", ("", "v1")), ("apps/v1", ("apps", "v1")), ("networking.k8s.io/v1", ("networking.k8s.io", "v1"))],
    ids=["core", "apps", "dotted-group"],
)
def test_split_api_version(api_version: str, expected: tuple[str, str]) -> None:
    assert resources.split_api_version(api_version) == expected


def test_groups_lists_versions_per_group() -> None:
    assert dict(resources.groups()) == {
        "": ("v1",),
        "apps": ("v1",),
        "networking.k8s.io": ("v1",),
        "discovery.k8s.io": ("v1",),
        "authorization.k8s.io": ("v1",),
        "extensions": ("v1beta1",),
    }


def test_for_group_resource() -> None:
    r = resources.for_group_resource("apps", "deployments")
    assert r is not None and r.kind == "Deployment"
    assert resources.for_group_resource("", "deployments") is None
