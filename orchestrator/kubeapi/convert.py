"""Version conversion: a stored object as the version a client asked for, a written one as stored.

What changes between the versions Skiff serves:

- Ingress, extensions/v1beta1 (and networking.k8s.io/v1beta1) <-> networking.k8s.io/v1, as Kubernetes'
  conversion functions do it: a backend `{serviceName, servicePort}` <-> `{service: {name, port:
  {number} or {name}}}`, `spec.backend` <-> `spec.defaultBackend`; a path without `pathType` gets
  "ImplementationSpecific" (the v1beta1 default) on the way to v1, and keeps its `pathType` on the way
  back (v1beta1 has the field). ingressClassName, tls, annotations and status are left alone.
- Deployment and ReplicaSet, apps/v1 <-> extensions/v1beta1 (and the other apps betas): only the
  apiVersion changes, the fields Skiff keeps being the same.
- Every other kind has one version; converting it only sets apiVersion.

The store may hold either Ingress form today (lb/routes.py reads both), so the input form is read from
the content, backend by backend, not from its apiVersion: conversion accepts either form, or a mix,
and is idempotent. Pure: the result is a new dict; the argument is never changed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from orchestrator import model
from orchestrator.kubeapi import resources

Obj = dict[str, Any]

INGRESS_V1 = "networking.k8s.io/v1"
INGRESS_BETA = ("extensions/v1beta1", "networking.k8s.io/v1beta1")
DEFAULT_PATH_TYPE = "ImplementationSpecific"


def versions_of(kind: str) -> tuple[str, ...]:
    """Every apiVersion a kind may be read or written as: the model's, then any only served."""
    known = list(model.KINDS[kind].api_versions) if kind in model.KINDS else []
    for r in resources.RESOURCES:
        if r.kind == kind and r.api_version not in known:
            known.append(r.api_version)
    return tuple(known)


def stored_version(kind: str) -> str:
    """The version an object of `kind` is stored as: the model's first (preferred) apiVersion."""
    versions = versions_of(kind)
    if not versions:
        raise ValueError(f'no kind "{kind}" is known')
    return versions[0]


# ---------------------------------------------------------------- Ingress


def _backend_v1(backend: Obj) -> Obj:
    """Either backend form -> {service: {name, port: {number} | {name}}}; other keys kept."""
    out = {k: v for k, v in backend.items() if k not in ("serviceName", "servicePort")}
    if "service" in backend or not ("serviceName" in backend or "servicePort" in backend):
        return out
    service: Obj = {"name": backend.get("serviceName") or ""}
    port = backend.get("servicePort")
    if isinstance(port, bool) or port is None or port == "":
        pass
    elif isinstance(port, int | float):
        service["port"] = {"number": int(port)}
    elif isinstance(port, str) and port.isdigit():
        # Skiff (lb/routes.py) reads "5005" as a port number; Kubernetes would take it for a name.
        service["port"] = {"number": int(port)}
    else:
        service["port"] = {"name": str(port)}
    out["service"] = service
    return out


def _backend_beta(backend: Obj) -> Obj:
    """Either backend form -> {serviceName, servicePort}; other keys kept."""
    service = backend.get("service")
    out = {k: v for k, v in backend.items() if k != "service"}
    if not isinstance(service, dict):
        return out
    out["serviceName"] = service.get("name") or ""
    port = service.get("port") or {}
    if port.get("name"):
        out["servicePort"] = port["name"]
    elif "number" in port:
        out["servicePort"] = port["number"]
    return out


def _ingress_rule(rule: Any, convert: Callable[[Obj], Obj], to_v1: bool) -> Any:
    http = rule.get("http") if isinstance(rule, dict) else None
    if not isinstance(http, dict) or not isinstance(http.get("paths"), list):
        return rule
    paths = []
    for p in http["paths"]:
        if not isinstance(p, dict):
            paths.append(p)
            continue
        q = dict(p)
        if isinstance(p.get("backend"), dict):
            q["backend"] = convert(p["backend"])
        if to_v1 and not q.get("pathType"):
            q["pathType"] = DEFAULT_PATH_TYPE
        paths.append(q)
    return {**rule, "http": {**http, "paths": paths}}


def _ingress_spec(spec: Obj, to_v1: bool) -> Obj:
    convert = _backend_v1 if to_v1 else _backend_beta
    new, old = ("defaultBackend", "backend") if to_v1 else ("backend", "defaultBackend")
    out = {k: v for k, v in spec.items() if k not in (new, old)}
    # With both present the target's own key wins.
    default = spec.get(new) if spec.get(new) is not None else spec.get(old)
    if isinstance(default, dict):
        out[new] = convert(default)
    if isinstance(spec.get("rules"), list):
        out["rules"] = [_ingress_rule(rule, convert, to_v1) for rule in spec["rules"]]
    return out


# ---------------------------------------------------------------- entry points


def to_version(obj: Obj, api_version: str) -> Obj:
    """A new dict: `obj` (of any version of its kind) as `api_version`. Idempotent.

    Raises ValueError when the kind is unknown or `api_version` is not one of its versions.
    """
    kind = obj.get("kind")
    if not isinstance(kind, str) or not versions_of(kind):
        raise ValueError(f'no kind "{kind}" is known')
    if api_version not in versions_of(kind):
        raise ValueError(f'no kind "{kind}" is registered for version "{api_version}"')
    out = copy.deepcopy(obj)
    out["apiVersion"] = api_version
    if kind == "Ingress" and isinstance(out.get("spec"), dict):
        out["spec"] = _ingress_spec(out["spec"], to_v1=api_version not in INGRESS_BETA)
    return out


def to_stored(obj: Obj) -> Obj:
    """A new dict: a written object in the form it is stored in (see `stored_version`)."""
    return to_version(obj, stored_version(str(obj.get("kind"))))
