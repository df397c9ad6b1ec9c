"""Kubernetes API paths and media types, parsed without I/O."""

from __future__ import annotations

import pytest

from orchestrator.kubeapi import routes
from orchestrator.kubeapi.routes import PathError


@pytest.mark.parametrize(
    ("path", "kind", "namespace", "name", "sub"),
    [
        ("/api/v1/nodes", "Node", "", "", ""),
        ("/api/v1/nodes/worker-1", "Node", "", "worker-1", ""),
        ("/api/v1/nodes/worker-1/status", "Node", "", "worker-1", "status"),
        ("/api/v1/pods", "Pod", "", "", ""),
        ("/api/v1/namespaces/default/pods", "Pod", "default", "", ""),
        ("/api/v1/namespaces/team-a/pods/web-1/log", "Pod", "team-a", "web-1", "log"),
        ("/api/v1/namespaces/default/pods/web-1/eviction", "Pod", "default", "web-1", "eviction"),
        ("/api/v1/namespaces", "Namespace", "", "", ""),
        ("/api/v1/namespaces/team-a", "Namespace", "", "team-a", ""),
        ("/apis/apps/v1/namespaces/default/deployments/demo/scale", "Deployment", "default", "demo", "scale"),
        ("/apis/networking.k8s.io/v1/ingresses", "Ingress", "", "", ""),
        ("/apis/extensions/v1beta1/namespaces/default/ingresses/basic", "Ingress", "default", "basic", ""),
        ("/api/v1/namespaces/default/pods/", "Pod", "default", "", ""),
    ],
    ids=lambda v: str(v),
)
def test_parse(path: str, kind: str, namespace: str, name: str, sub: str) -> None:
    t = routes.parse(path)
    assert (t.resource.kind, t.namespace, t.name, t.subresource) == (kind, namespace, name, sub)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/api",
        "/api/v1",
        "/apis/apps/v1",
        "/api/v1/widgets",
        "/apis/apps/v2/deployments",
        "/api/v1/namespaces/default/nodes",  # cluster-scoped under a namespace
        "/api/v1/namespaces/default/pods/p/bogus",  # no such subresource
        "/api/v1/namespaces/default/pods/p/log/extra",
        "/apis/apps/v1/namespaces/default/deployments/demo/log",
        "/api/v1/namespaces/team-a/finalize",  # a Namespace subresource this server does not serve
    ],
)
def test_parse_refuses(path: str) -> None:
    with pytest.raises(PathError):
        routes.parse(path)


@pytest.mark.parametrize(
    ("accept", "table"),
    [
        (
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
            True,
        ),
        ("application/json", False),
        ("", False),
        ("application/json, */*", False),
        ("application/vnd.kubernetes.protobuf,application/json", False),
        ("application/json;as=Table;g=meta.k8s.io;v=v1", True),
        ("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1", False),
    ],
    ids=["kubectl-get", "json", "none", "any", "protobuf", "order", "partial"],
)
def test_wants_table(accept: str, table: bool) -> None:
    assert routes.wants_table(accept) is table


@pytest.mark.parametrize(
    ("header", "media"),
    [
        ("application/json; charset=utf-8", "application/json"),
        ("", ""),
        ("Application/YAML", "application/yaml"),
    ],
)
def test_content_type(header: str, media: str) -> None:
    assert routes.content_type(header) == media
