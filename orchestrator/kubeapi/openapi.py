"""The bare OpenAPI v3 documents that let `kubectl apply -f` / `create -f` run with default validation.

With `--validate=strict` (the default) kubectl fetches `/openapi/v3`, then the document of the
object's group-version, and looks there for a PATCH operation tagged with the object's
group-version-kind that takes a `fieldValidation` query parameter. Finding it, kubectl leaves
validation to the server (it sends `fieldValidation=Strict`) and needs no schemas at all.

Deliberately absent: schemas (`components`) and PATCH request bodies. If a PATCH advertised
`application/strategic-merge-patch+json`, kubectl would try to compute its patch from the (missing)
v3 schemas and warn "OpenAPI V3 Components is nil" before falling back to its compiled-in types.
`/openapi/v2` is not served at all: kubectl asks it for protobuf, so it must answer 404.

Pure: the documents are generated from the resource registry.
"""

from __future__ import annotations

from typing import Any

from orchestrator.kubeapi import resources
from orchestrator.kubeapi.discovery import GIT_VERSION
from orchestrator.kubeapi.resources import Resource

Doc = dict[str, Any]

ROOT_PATH = "/openapi/v3"


def _key(group: str, version: str) -> str:
    """The root's name for a group-version: 'api/v1', 'apis/apps/v1'."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def root() -> Doc:
    """`/openapi/v3`: one entry per served group-version, pointing at its document."""
    return {
        "paths": {
            _key(g, v): {"serverRelativeURL": f"{ROOT_PATH}/{_key(g, v)}"}
            for g, v in resources.group_versions()
        }
    }


def _collection_path(r: Resource) -> str:
    base = f"/{_key(r.group, r.version)}"
    return f"{base}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{base}/{r.plural}"


def _operation(r: Resource) -> Doc:
    return {
        "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
        "parameters": [
            {
                "name": "fieldValidation",
                "in": "query",
                "description": "Strict, Warn or Ignore: how the server treats unknown or duplicate fields.",
                "schema": {"type": "string", "uniqueItems": True},
            }
        ],
    }


def _paths(r: Resource) -> Doc:
    if "patch" in r.verbs:
        return {f"{_collection_path(r)}/{{name}}": {"patch": _operation(r)}}
    if "create" in r.verbs:
        # Create-only (SelfSubjectAccessReview): a POST keeps the group-version's document non-empty.
        return {_collection_path(r): {"post": _operation(r)}}
    return {}


def group_version(path: str) -> Doc | None:
    """The document of one group-version, named as in `root()` ('apis/apps/v1', with or without the
    '/openapi/v3/' prefix and a query string); None when the group-version is not served."""
    key = path.split("?", 1)[0].strip("/")
    prefix = ROOT_PATH.strip("/") + "/"
    if key.startswith(prefix):
        key = key[len(prefix) :]
    parts = key.split("/")
    if len(parts) == 2 and parts[0] == "api":
        group, version = "", parts[1]
    elif len(parts) == 3 and parts[0] == "apis":
        group, version = parts[1], parts[2]
    else:
        return None
    served = resources.in_group_version(group, version)
    if not served:
        return None
    paths: Doc = {}
    for r in served:
        paths.update(_paths(r))
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": GIT_VERSION}, "paths": paths}
