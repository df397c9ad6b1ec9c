"""Kubernetes API paths: what a request names, parsed without I/O.

    /api/v1/nodes                                     cluster-scoped collection
    /api/v1/nodes/{name}[/{subresource}]              one object (and a subresource of it)
    /api/v1/pods                                      a namespaced resource across all namespaces
    /api/v1/namespaces/{ns}/pods[/{name}[/{sub}]]     inside one namespace
    /api/v1/namespaces/{name}[/status|/finalize]      the Namespace object itself
    /apis/{group}/{version}/...                       the same shapes in a named group

Media types are decided here too: whether a client asked for a Table, and what a body is.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.kubeapi import resources
from orchestrator.kubeapi.resources import Resource

NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclass(frozen=True)
class Target:
    """What a resource path names. `name` empty: the collection; `namespace` empty for a namespaced
    resource: every namespace."""

    resource: Resource
    namespace: str = ""
    name: str = ""
    subresource: str = ""

    @property
    def is_collection(self) -> bool:
        return not self.name


class PathError(LookupError):
    """The path names nothing this server serves (answered 404)."""


def parse(path: str) -> Target:
    """The target of a resource path; PathError when the path names no served resource."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise PathError(path)
    if not rest:
        raise PathError(path)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in NAMESPACE_SUBRESOURCES:
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        raise PathError(path)
    resource = resources.by_path(group, version, rest[0])
    if resource is None:
        raise PathError(path)
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if namespace and not resource.namespaced:
        raise PathError(path)
    if sub and sub not in {s.name for s in resource.subresources}:
        raise PathError(path)
    return Target(resource, namespace, name, sub)


def _media_types(header: str) -> list[tuple[str, dict[str, str]]]:
    out = []
    for item in header.split(","):
        fields = [f.strip() for f in item.split(";")]
        params = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
        out.append((fields[0].lower(), {k.strip(): v.strip() for k, v in params.items()}))
    return out


def wants_table(accept: str) -> bool:
    """Whether the Accept header asks for a meta.k8s.io Table first (kubectl get does)."""
    for media, params in _media_types(accept or ""):
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return True
        if media in ("application/json", "application/yaml", "*/*", "application/vnd.kubernetes.protobuf"):
            return False
    return False


def content_type(header: str) -> str:
    """The bare media type of a Content-Type header (no parameters), lower case."""
    return (header or "").split(";", 1)[0].strip().lower()
