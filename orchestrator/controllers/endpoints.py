"""Endpoints controller: for each Service with a selector, an Endpoints object of the same name.

Every matching pod whose ports are mapped (status.portMappings) is one subset, because each pod has
its own host port: its address goes in `addresses` when the pod is ready and not terminating, else in
`notReadyAddresses` (terminating pods carry terminating=true so balancers drain them). Each service port
becomes an EndpointPort whose port is the host port the pod maps the service's targetPort to. Subsets
are sorted, so an unchanged set compares equal and nothing is written.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from orchestrator import model
from orchestrator.controllers.base import (
    Action,
    ControllerActor,
    Create,
    Delete,
    Obj,
    Update,
    split_key,
)

log = logging.getLogger(__name__)


def _address(pod: Obj, ip: str) -> Obj:
    address: dict[str, Any] = {
        "ip": ip,
        "targetRef": {
            "kind": "Pod",
            "name": model.name_of(pod),
            "namespace": model.namespace_of(pod),
            "uid": pod["metadata"].get("uid", ""),
        },
    }
    node = pod.get("spec", {}).get("nodeName")
    if node:
        address["nodeName"] = node
    if model.pod_is_terminating(pod):
        address["terminating"] = True
    return address


def pod_subset(service: Obj, pod: Obj) -> Obj | None:
    """The pod's subset for `service`, or None when none of the service's ports is mapped on it."""
    ports = []
    ip = ""
    for sp in service["spec"].get("ports") or []:
        target = sp.get("targetPort", sp.get("port"))
        mapped = model.container_port(pod, target)
        if mapped is None:
            continue
        host_ip, host_port = mapped
        ip = ip or host_ip
        port: dict[str, Any] = {"port": host_port, "protocol": sp.get("protocol") or "TCP"}
        if sp.get("name"):
            port["name"] = sp["name"]
        ports.append(port)
    if not ports or not ip:
        return None
    ready = model.pod_is_ready(pod) and not model.pod_is_terminating(pod)
    key = "addresses" if ready else "notReadyAddresses"
    return {key: [_address(pod, ip)], "ports": ports}


def _subset_order(subset: Obj) -> tuple[Any, ...]:
    address = (subset.get("addresses") or subset["notReadyAddresses"])[0]  # pod_subset sets one of them
    return (address["ip"], [p["port"] for p in subset["ports"]], address["targetRef"]["name"])


def desired_subsets(service: Obj, pods: Iterable[Obj]) -> list[Obj]:
    selector = service["spec"].get("selector") or {}
    ns = model.namespace_of(service)
    subsets = []
    for pod in pods:
        if model.namespace_of(pod) != ns or not model.selector_matches(selector, model.labels_of(pod)):
            continue
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        subset = pod_subset(service, pod)
        if subset is not None:
            subsets.append(subset)
    return sorted(subsets, key=_subset_order)


def reconcile_endpoints(service: Obj | None, pods: Iterable[Obj], endpoints: Obj | None) -> list[Action]:
    """Actions that make `endpoints` (the current object of the service's name, or None) match `service`.

    A missing service deletes its Endpoints; a service without a selector is left alone (its Endpoints
    are the user's). Writes only when the subsets or labels differ.
    """
    if service is None:
        if endpoints is None:
            return []
        return [Delete("Endpoints", model.namespace_of(endpoints), model.name_of(endpoints))]
    if not service["spec"].get("selector"):
        return []
    name, ns = model.name_of(service), model.namespace_of(service)
    subsets = desired_subsets(service, pods)
    labels = dict(model.labels_of(service))
    if endpoints is None:
        meta: dict[str, Any] = {"name": name, "namespace": ns}
        if labels:
            meta["labels"] = labels
        log.info("endpoints=%s/%s create subsets=%d", ns, name, len(subsets))
        return [Create({"apiVersion": "v1", "kind": "Endpoints", "metadata": meta, "subsets": subsets})]
    if (endpoints.get("subsets") or []) == subsets and model.labels_of(endpoints) == labels:
        return []
    ready = sum(len(s.get("addresses") or []) for s in subsets)
    log.info("endpoints=%s/%s update subsets=%d ready=%d", ns, name, len(subsets), ready)
    meta = {**endpoints["metadata"]}
    if labels:
        meta["labels"] = labels
    else:
        meta.pop("labels", None)
    return [Update({**endpoints, "metadata": meta, "subsets": subsets})]


class EndpointsController(ControllerActor):
    """Actor: keys are 'namespace/name' of Services. A pod event enqueues the services whose selector
    matches the pod now and those that listed it at their last sync (its labels may have changed)."""

    component = "endpoint-controller"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._members: dict[str, set[str]] = {}

    def keys_for(self, event_type: str, obj: Obj) -> Iterable[str]:
        kind = obj.get("kind")
        ns = model.namespace_of(obj)
        if kind in ("Service", "Endpoints"):
            return [f"{ns}/{model.name_of(obj)}"]
        if kind != "Pod":
            return []
        labels = model.labels_of(obj)
        pod_name = model.name_of(obj)
        keys = {
            f"{ns}/{model.name_of(s)}"
            for s in self.cluster.list("Service", ns)
            if model.selector_matches(s.get("spec", {}).get("selector") or {}, labels)
        }
        keys.update(
            k for k, members in self._members.items() if pod_name in members and k.startswith(f"{ns}/")
        )
        return sorted(keys)

    def reconcile(self, key: str) -> list[Action]:
        ns, name = split_key(key)
        service = self.cluster.get("Service", ns, name)
        endpoints = self.cluster.get("Endpoints", ns, name)
        pods = self.cluster.list("Pod", ns) if service is not None else []
        selector = (service or {}).get("spec", {}).get("selector") or {}
        self._members[key] = {
            model.name_of(p) for p in pods if model.selector_matches(selector, model.labels_of(p))
        }
        if service is None:
            del self._members[key]
        return reconcile_endpoints(service, pods, endpoints)
