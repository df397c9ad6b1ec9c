"""EndpointSlices (discovery.k8s.io/v1) as read-only views of the stored Endpoints objects.

Skiff's endpoints controller writes Endpoints; kubectl 1.32 reads EndpointSlices for `describe
service` and `describe ingress`. One slice per Endpoints subset, named `<service>-<n>`, labelled with
`kubernetes.io/service-name` as Kubernetes' EndpointSlice controller labels them. Pure.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
SERVICE_NAME = "kubernetes.io/service-name"


def _endpoint(address: Obj, ready: bool) -> Obj:
    out: Obj = {"addresses": [address.get("ip", "")], "conditions": {"ready": ready}}
    if address.get("nodeName"):
        out["nodeName"] = address["nodeName"]
    if address.get("targetRef"):
        out["targetRef"] = address["targetRef"]
    return out


def slices_of(endpoints: Obj) -> list[Obj]:
    """The EndpointSlices of one Endpoints object (none for an object without subsets)."""
    meta = endpoints.get("metadata") or {}
    name, namespace = meta.get("name", ""), meta.get("namespace", "")
    out = []
    for i, subset in enumerate(endpoints.get("subsets") or []):
        ready = [_endpoint(a, True) for a in subset.get("addresses") or []]
        not_ready = [_endpoint(a, False) for a in subset.get("notReadyAddresses") or []]
        # Every field set, as Kubernetes' EndpointSlice controller sets them: kubectl describe
        # dereferences a port's name without a check.
        ports = [
            {"name": p.get("name", ""), "port": p.get("port"), "protocol": p.get("protocol", "TCP")}
            for p in subset.get("ports") or []
        ]
        out.append(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{name}-{i}",
                    "namespace": namespace,
                    "labels": {SERVICE_NAME: name, "endpointslice.kubernetes.io/managed-by": "skiff"},
                    "creationTimestamp": meta.get("creationTimestamp"),
                    "resourceVersion": meta.get("resourceVersion", ""),
                    "uid": f"{meta.get('uid', '')}-{i}",
                },
                "addressType": "IPv4",
                "endpoints": ready + not_ready,
                "ports": ports,
            }
        )
    return out
