"""Discovery documents, generated from the resource registry: what kubectl reads to learn the API.

Two forms, chosen by the request's Accept header (`aggregated_version`):

- aggregated discovery (apidiscovery.k8s.io/v2, or v2beta1 for older clients): `/api` and `/apis`
  each answer one APIGroupDiscoveryList holding every resource, so a cold kubectl needs two requests.
  It must be sent with its exact media type (`media_type`): kubectl parses the same body sent as
  plain application/json as the legacy form, finds nothing, and reports no resource types.
- the legacy form: `/api` -> APIVersions, `/apis` -> APIGroupList, `/apis/<group>` -> APIGroup, and
  one APIResourceList per group-version (`/api/v1`, `/apis/<group>/<version>`), in which
  subresources are entries named "deployments/scale". The official Python client reads this form.

`document(path, accept)` routes a discovery path to its (media type, body); `version_info()` is the
/version document. Pure: no I/O; the same inputs give the same documents.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orchestrator.kubeapi import resources
from orchestrator.kubeapi.resources import Resource, Subresource

Doc = dict[str, Any]

JSON_MEDIA_TYPE = "application/json"
DISCOVERY_GROUP = "apidiscovery.k8s.io"
AGGREGATED_KIND = "APIGroupDiscoveryList"
AGGREGATED_MEDIA_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_MEDIA_TYPE_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
AGGREGATED_VERSIONS = ("v2", "v2beta1")

# What /version reports. The gcloud kubectl dispatcher picks the kubectl it runs by the server's
# minor version; 1.32 pins the embedded kubectl 1.32 whose behaviour the research note describes.
GIT_VERSION = "v1.32.4-skiff"
MAJOR, MINOR = "1", "32"


# ---------------------------------------------------------------- content negotiation


def _media_ranges(accept: str) -> list[tuple[str, dict[str, str], float]]:
    """Accept -> [(type/subtype, params, q)] ordered by q (highest first), keeping the client's order."""
    out = []
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        params: dict[str, str] = {}
        for f in fields[1:]:
            key, _, value = f.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 1.0
        out.append((media, params, q))
    return sorted(out, key=lambda r: -r[2])


def aggregated_version(accept: str | None) -> str | None:
    """The aggregated discovery version ("v2" or "v2beta1") the client prefers, or None for the legacy form.

    Media ranges are taken in the client's preference order (q, then position). The first one we can
    answer decides: an aggregated JSON type names its version; plain application/json, application/*
    or */* means the legacy form; anything else (protobuf) is skipped. No Accept means legacy.
    """
    for media, params, q in _media_ranges(accept or ""):
        if q <= 0:
            continue
        if media not in (JSON_MEDIA_TYPE, "application/*", "*/*"):
            continue
        if params.get("g") == DISCOVERY_GROUP and params.get("as") == AGGREGATED_KIND:
            if media == JSON_MEDIA_TYPE and params.get("v") in AGGREGATED_VERSIONS:
                return params["v"]
            continue
        if not params.get("g") and not params.get("as"):
            return None
    return None


def media_type(version: str | None) -> str:
    """The Content-Type to answer with: the exact aggregated type for "v2"/"v2beta1", else JSON."""
    if version == "v2":
        return AGGREGATED_MEDIA_TYPE
    if version == "v2beta1":
        return AGGREGATED_MEDIA_TYPE_V2BETA1
    return JSON_MEDIA_TYPE


# ---------------------------------------------------------------- aggregated discovery


def _gvk(group: str, version: str, kind: str) -> Doc:
    return {"group": group, "version": version, "kind": kind}


def _aggregated_subresource(sub: Subresource) -> Doc:
    return {
        "subresource": sub.name,
        "responseKind": _gvk(sub.group, sub.version, sub.kind),
        "verbs": list(sub.verbs),
    }


def _aggregated_resource(r: Resource) -> Doc:
    doc: Doc = {
        "resource": r.plural,
        "responseKind": _gvk(r.group, r.version, r.kind),
        "scope": r.scope,
        "singularResource": r.singular,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        doc["shortNames"] = list(r.short_names)
    if r.categories:
        doc["categories"] = list(r.categories)
    if r.subresources:
        doc["subresources"] = [_aggregated_subresource(s) for s in r.subresources]
    return doc


def _aggregated_group(group: str, versions: Iterable[str]) -> Doc:
    return {
        # The core group has no name; this is how Kubernetes writes its empty metadata.
        "metadata": {"name": group} if group else {"creationTimestamp": None},
        "versions": [
            {
                "version": v,
                "resources": [_aggregated_resource(r) for r in resources.in_group_version(group, v)],
                "freshness": "Current",
            }
            for v in versions
        ],
    }


def aggregated(root: str, version: str = "v2") -> Doc:
    """The APIGroupDiscoveryList for `root`: "/api" (the core group) or "/apis" (every named group)."""
    if version not in AGGREGATED_VERSIONS:
        raise ValueError(f"unknown aggregated discovery version {version!r}")
    if root not in ("/api", "/apis"):
        raise ValueError(f"aggregated discovery is served at /api and /apis, not {root!r}")
    core = root == "/api"
    return {
        "kind": AGGREGATED_KIND,
        "apiVersion": f"{DISCOVERY_GROUP}/{version}",
        "metadata": {},
        "items": [_aggregated_group(g, vs) for g, vs in resources.groups() if (g == "") == core],
    }


# ---------------------------------------------------------------- the legacy form


def _server_addresses(server_address: str) -> list[Doc]:
    return [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}] if server_address else []


def api_versions(server_address: str = "") -> Doc:
    """/api: the core group's versions. `server_address` ("host:port"), when given, is advertised."""
    core = dict(resources.groups()).get("", ())
    return {
        "kind": "APIVersions",
        "apiVersion": "v1",
        "versions": list(core),
        "serverAddressByClientCIDRs": _server_addresses(server_address),
    }


def _group_version(group: str, version: str) -> Doc:
    return {"groupVersion": f"{group}/{version}", "version": version}


def _api_group_body(group: str, versions: tuple[str, ...]) -> Doc:
    return {
        "name": group,
        "versions": [_group_version(group, v) for v in versions],
        "preferredVersion": _group_version(group, versions[0]),
    }


def api_group_list() -> Doc:
    """/apis: every named group with its versions, preferred first."""
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_api_group_body(g, vs) for g, vs in resources.groups() if g],
    }


def api_group(group: str) -> Doc | None:
    """/apis/<group>: one APIGroup, or None if the group is not served."""
    versions = dict(resources.groups()).get(group) if group else None
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_api_group_body(group, versions)}


def _legacy_resource(r: Resource) -> Doc:
    doc: Doc = {
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        doc["shortNames"] = list(r.short_names)
    if r.categories:
        doc["categories"] = list(r.categories)
    return doc


def _legacy_subresource(r: Resource, sub: Subresource) -> Doc:
    doc: Doc = {"name": f"{r.plural}/{sub.name}", "singularName": "", "namespaced": r.namespaced}
    if (sub.group, sub.version) != (r.group, r.version):
        # Named only where the response is of another group-version (scale: autoscaling/v1).
        doc["group"], doc["version"] = sub.group, sub.version
    doc["kind"] = sub.kind
    doc["verbs"] = list(sub.verbs)
    return doc


def api_resource_list(group: str, version: str) -> Doc | None:
    """/api/v1 or /apis/<group>/<version>: the resources and subresources; None if not served."""
    served = resources.in_group_version(group, version)
    if not served:
        return None
    entries: list[Doc] = []
    for r in served:
        entries.append(_legacy_resource(r))
        entries += [_legacy_subresource(r, s) for s in r.subresources]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": entries,
    }


# ---------------------------------------------------------------- /version and routing


def version_info(*, git_commit: str = "", build_date: str = "", platform: str = "linux/amd64") -> Doc:
    """The /version document (reports Kubernetes 1.32; see GIT_VERSION). The caller passes build facts."""
    return {
        "major": MAJOR,
        "minor": MINOR,
        "gitVersion": GIT_VERSION,
        "gitCommit": git_commit,
        "gitTreeState": "clean",
        "buildDate": build_date,
        "goVersion": "",
        "compiler": "",
        "platform": platform,
    }


def document(path: str, accept: str | None, *, server_address: str = "") -> tuple[str, Doc] | None:
    """(Content-Type, body) for a discovery path, or None when the path is not a discovery document.

    `/api` and `/apis` answer the aggregated form when the Accept header asks for it, else the legacy
    form; the per-group and per-group-version documents exist only in the legacy form. A trailing
    slash is ignored; the query string must already be stripped.
    """
    path = "/" + path.strip("/")
    parts = path.split("/")[1:]
    if path in ("/api", "/apis"):
        version = aggregated_version(accept)
        if version is not None:
            return media_type(version), aggregated(path, version)
        body = api_versions(server_address) if path == "/api" else api_group_list()
        return JSON_MEDIA_TYPE, body
    doc: Doc | None = None
    if len(parts) == 2 and parts[0] == "api":
        doc = api_resource_list("", parts[1])
    elif len(parts) == 2 and parts[0] == "apis":
        doc = api_group(parts[1])
    elif len(parts) == 3 and parts[0] == "apis":
        doc = api_resource_list(parts[1], parts[2])
    return None if doc is None else (JSON_MEDIA_TYPE, doc)
