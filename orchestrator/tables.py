"""What `skiff get` shows of each kind, as Kubernetes' API server returns it: a Table of column
definitions (name, type, format, description, priority) and rows of cells computed from each object.

Pure: `now` is an argument. Priority 0 columns are the default ones, priority 1 those of `-o wide`.
Column names are Kubernetes' ("Up-to-date"); a client prints them upper-case. Adding the NAMESPACE and
LABELS columns, the kind prefix of names, padding and the other output formats is the client's part
(orchestrator.cli.printers).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.model import age, labels_of, parse_time, rfc3339

Obj = dict[str, Any]
Cell = Any  # a str, or an int in an "integer" column: the value the object holds, shown with str()


@dataclass(frozen=True)
class Column:
    """One TableColumnDefinition; format "name" marks the column holding the object's name."""

    name: str
    description: str
    type: str = "string"
    format: str = ""
    priority: int = 0

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


def _name(priority: int = 0) -> Column:
    return Column("Name", "Name of the object, unique within its namespace", format="name", priority=priority)


_AGE = Column("Age", "Time since the object was created")
_CONTAINERS = Column("Containers", "Names of the pod template's containers", priority=1)
_IMAGES = Column("Images", "Images of the pod template's containers", priority=1)
_SELECTOR = Column("Selector", "The label selector of the pods it manages", priority=1)

# Each kind's columns: the default ones (priority 0) first, then those of -o wide, in the order `cells`
# computes them.
COLUMNS: dict[str, tuple[Column, ...]] = {
    "Pod": (
        _name(),
        Column("Ready", "Ready containers out of all the pod's containers"),
        Column(
            "Status", "The pod's state as kubectl shows it: phase, or the reason a container waits or ended"
        ),
        Column("Restarts", "Container restarts, with the time since the last one"),
        _AGE,
        Column(
            "IP",
            "Where the pod can be reached: the host address and port of its first port mapping",
            priority=1,
        ),
        Column("Node", "The node the pod is bound to", priority=1),
        Column("Nominated Node", "The node the scheduler nominated for the pod", priority=1),
        Column("Readiness Gates", "Readiness gates met out of all the pod's", priority=1),
    ),
    "Deployment": (
        _name(),
        Column("Ready", "Ready pods out of the desired replicas"),
        Column("Up-to-date", "Pods of the current template", type="integer"),
        Column("Available", "Pods available for at least minReadySeconds", type="integer"),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _SELECTOR,
        # Skiff's seed era showed these; kept last so kubectl's wide columns stay a prefix.
        Column("Desired", "Desired replicas", type="integer", priority=1),
        Column("Current", "Pods of any template", type="integer", priority=1),
    ),
    "ReplicaSet": (
        _name(),
        Column("Desired", "Desired replicas", type="integer"),
        Column("Current", "Pods created", type="integer"),
        Column("Ready", "Ready pods", type="integer"),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _SELECTOR,
    ),
    "Service": (
        _name(),
        Column("Type", "How the service is exposed: ClusterIP, NodePort or LoadBalancer"),
        Column("Cluster-IP", "The service's virtual address"),
        Column("External-IP", "External addresses, or the load balancer's"),
        Column("Port(s)", "Ports, with their node ports, and protocols"),
        _AGE,
        Column("Selector", "The label selector of the service's pods", priority=1),
    ),
    "Endpoints": (
        _name(),
        Column("Endpoints", "Ready addresses and ports (the first three)"),
        _AGE,
    ),
    "Ingress": (
        _name(),
        Column("Class", "The ingress class"),
        Column("Hosts", "Hosts of the rules; * when none names one"),
        Column("Address", "Where the ingress is served"),
        Column("Ports", "Ports the ingress is served on"),
        _AGE,
    ),
    "Node": (
        _name(),
        Column("Status", "Ready, NotReady or Unknown, and SchedulingDisabled when cordoned"),
        Column("Roles", "The node's roles (node-role.kubernetes.io/ labels)"),
        _AGE,
        Column("Version", "The agent's version"),
        Column("Internal-IP", "The node's internal address", priority=1),
        Column("OS-Image", "The node's operating system image", priority=1),
        Column("Kernel-Version", "The node's kernel version", priority=1),
        Column("Container-Runtime", "The node's container runtime and its version", priority=1),
    ),
    "Event": (
        Column("Last Seen", "Time since the event last occurred"),
        Column("Type", "Normal or Warning"),
        Column("Reason", "Why the event was emitted, in one word"),
        Column("Object", "The object the event is about"),
        Column("Message", "What happened"),
        Column("Subobject", "The part of the object the event is about", priority=1),
        Column("Source", "The component (and host) that reported the event", priority=1),
        Column("First Seen", "Time since the event first occurred", priority=1),
        Column("Count", "How many times the event occurred", type="integer", priority=1),
        _name(priority=1),
    ),
    "ConfigMap": (
        _name(),
        Column("Data", "Number of data entries", type="integer"),
        _AGE,
    ),
    "Namespace": (
        _name(),
        Column("Status", "The namespace's phase: Active or Terminating"),
        _AGE,
    ),
    "EndpointSlice": (
        _name(),
        Column("AddressType", "The kind of the addresses: IPv4"),
        Column("Ports", "The ports of the endpoints"),
        Column("Endpoints", "The first addresses"),
        _AGE,
    ),
}


def columns(kind: str, wide: bool = True) -> list[Column]:
    """The kind's columns; only the default ones unless `wide`."""
    return [c for c in COLUMNS[kind] if wide or c.priority == 0]


def table(
    kind: str, objs: Iterable[Mapping[str, Any]], now: float, *, wide: bool = True, lb_address: str = ""
) -> Obj:
    """A meta.k8s.io/v1 Table of `objs`, rows in the given order, each with its object.

    `wide=False` leaves out the priority 1 columns and their cells. `lb_address` is where the balancer
    serves ingresses (their Address column), when known.
    """
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "columnDefinitions": [c.definition() for c in columns(kind, wide)],
        "rows": [{"cells": cells(kind, o, now, wide=wide, lb_address=lb_address), "object": o} for o in objs],
    }


# ---------------------------------------------------------------- cells


def _or_none(value: Any) -> str:
    return str(value) if value not in (None, "", []) else "<none>"


def format_labels(labels: Mapping[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or "<none>"


def format_selector(selector: Mapping[str, Any] | None) -> str:
    """A LabelSelector as kubectl prints it: 'app=demo,tier in (a,b)'."""
    if not selector:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    ops = {"In": "in", "NotIn": "notin"}
    for e in selector.get("matchExpressions") or []:
        op = e.get("operator", "")
        if op in ops:
            parts.append(f"{e['key']} {ops[op]} ({','.join(e.get('values') or [])})")
        elif op == "Exists":
            parts.append(e["key"])
        else:
            parts.append(f"!{e['key']}")
    return ",".join(parts) or "<none>"


def _container_state(cs: Mapping[str, Any]) -> Mapping[str, Any]:
    return cs.get("state") or {}


def pod_status(pod: Mapping[str, Any]) -> str:
    """kubectl's STATUS column (printPod): Running, Pending, ContainerCreating, CrashLoopBackOff,
    Completed, Error, OOMKilled, ExitCode:N, Signal:N, NotReady, Terminating, Unknown."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    has_running = False
    for cs in reversed(status.get("containerStatuses") or []):
        state = _container_state(cs)
        waiting, terminated = state.get("waiting"), state.get("terminated")
        if waiting is not None and waiting.get("reason"):
            reason = waiting["reason"]
        elif terminated is not None and terminated.get("reason"):
            reason = terminated["reason"]
        elif terminated is not None:
            if terminated.get("signal"):
                reason = f"Signal:{terminated['signal']}"
            else:
                reason = f"ExitCode:{terminated.get('exitCode', 0)}"
        elif cs.get("ready") and state.get("running") is not None:
            has_running = True
    if reason == "Completed" and has_running:
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        )
        reason = "Running" if ready else "NotReady"
    if pod.get("metadata", {}).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason


def pod_ready(pod: Mapping[str, Any]) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or []) or len(statuses)
    return f"{sum(1 for c in statuses if c.get('ready'))}/{total}"


def pod_restarts(pod: Mapping[str, Any], now: float) -> str:
    """'0', or '3 (12s ago)' like kubectl 1.22+ when the last restart time is known."""
    restarts = 0
    last = 0.0
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        restarts += int(cs.get("restartCount") or 0)
        finished = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        if finished:
            last = max(last, parse_time(finished))
    if restarts and last:
        return f"{restarts} ({age(rfc3339(last), now)} ago)"
    return str(restarts)


def pod_ip(pod: Mapping[str, Any]) -> str:
    """Skiff's IP column: hostIP:hostPort of the pod's first port mapping (where it can be reached)."""
    status = pod.get("status") or {}
    for m in status.get("portMappings") or []:
        host = m.get("hostIP") or status.get("hostIP") or status.get("podIP")
        if host and m.get("hostPort"):
            return f"{host}:{m['hostPort']}"
    return status.get("podIP") or "<none>"


def node_status(node: Mapping[str, Any]) -> str:
    ready = "Unknown"
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            # kubectl: any Ready condition other than True (False or Unknown) reads NotReady.
            ready = "Ready" if c.get("status") == "True" else "NotReady"
    if (node.get("spec") or {}).get("unschedulable"):
        ready += ",SchedulingDisabled"
    return ready


def node_roles(node: Mapping[str, Any]) -> str:
    roles = []
    for k, v in labels_of(node).items():
        if k.startswith("node-role.kubernetes.io/"):
            roles.append(k.split("/", 1)[1])
        elif k == "kubernetes.io/role":
            roles.append(v)
    return ",".join(sorted(set(roles))) or "<none>"


def node_internal_ip(node: Mapping[str, Any]) -> str:
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP":
            return a.get("address", "<none>")
    return "<none>"


def service_ports(svc: Mapping[str, Any]) -> str:
    out = []
    for p in (svc.get("spec") or {}).get("ports") or []:
        proto = p.get("protocol") or "TCP"
        if p.get("nodePort"):
            out.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
        else:
            out.append(f"{p.get('port')}/{proto}")
    return ",".join(out) or "<none>"


def service_external_ip(svc: Mapping[str, Any]) -> str:
    spec = svc.get("spec") or {}
    ips = list(spec.get("externalIPs") or [])
    if spec.get("type") == "LoadBalancer":
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        ips += [i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")]
        if not ips:
            return "<pending>"
    return ",".join(ips) or "<none>"


def endpoint_addresses(ep: Mapping[str, Any], limit: int = 3) -> str:
    """'127.0.2.1:40001,127.0.2.2:40017 + 1 more...' (ready addresses only, like kubectl)."""
    items = []
    for subset in ep.get("subsets") or []:
        ports = subset.get("ports") or []
        for a in subset.get("addresses") or []:
            if not ports:
                items.append(a.get("ip", ""))
            for p in ports:
                items.append(f"{a.get('ip', '')}:{p.get('port')}")
    if not items:
        return "<none>"
    shown = ",".join(items[:limit])
    return shown + (f" + {len(items) - limit} more..." if len(items) > limit else "")


def ingress_hosts(ing: Mapping[str, Any]) -> str:
    hosts = [r.get("host") for r in (ing.get("spec") or {}).get("rules") or [] if r.get("host")]
    return ",".join(hosts) or "*"


def ingress_address(ing: Mapping[str, Any], lb_address: str) -> str:
    if lb_address:
        return lb_address
    ingress = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return ",".join(i.get("ip") or i.get("hostname", "") for i in ingress) or ""


def container_names(template_spec: Mapping[str, Any]) -> tuple[str, str]:
    containers = template_spec.get("containers") or []
    return (
        ",".join(c.get("name", "") for c in containers) or "<none>",
        ",".join(c.get("image", "") for c in containers) or "<none>",
    )


def event_object(ev: Mapping[str, Any]) -> str:
    ref = ev.get("involvedObject") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


def event_time(ev: Mapping[str, Any]) -> str:
    return (
        ev.get("lastTimestamp")
        or ev.get("firstTimestamp")
        or ev.get("metadata", {}).get("creationTimestamp")
        or ""
    )


# ---------------------------------------------------------------- rows


def cells(
    kind: str, obj: Mapping[str, Any], now: float, *, wide: bool = True, lb_address: str = ""
) -> list[Cell]:
    """The cells of `obj`'s row, one per column of `columns(kind, wide)`."""
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    created = age(meta.get("creationTimestamp", ""), now)
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if kind == "Pod":
        row: list[Cell] = [name, pod_ready(obj), pod_status(obj), pod_restarts(obj, now), created]
        if wide:
            nominated = status.get("nominatedNodeName") or "<none>"
            row += [pod_ip(obj), spec.get("nodeName") or "<none>", nominated, "<none>"]
        return row
    if kind == "Deployment":
        desired = spec.get("replicas", 1)
        row = [
            name,
            f"{status.get('readyReplicas', 0)}/{desired}",
            status.get("updatedReplicas", 0),
            status.get("availableReplicas", 0),
            created,
        ]
        if wide:
            tspec = (spec.get("template") or {}).get("spec") or {}
            row += [*container_names(tspec), format_selector(spec.get("selector"))]
            row += [desired, status.get("replicas", 0)]
        return row
    if kind == "ReplicaSet":
        row = [
            name,
            spec.get("replicas", 1),
            status.get("replicas", 0),
            status.get("readyReplicas", 0),
            created,
        ]
        if wide:
            tspec = (spec.get("template") or {}).get("spec") or {}
            row += [*container_names(tspec), format_selector(spec.get("selector"))]
        return row
    if kind == "Service":
        row = [
            name,
            spec.get("type") or "ClusterIP",
            _or_none(spec.get("clusterIP")),
            service_external_ip(obj),
            service_ports(obj),
            created,
        ]
        if wide:
            row.append(format_labels(spec.get("selector")))
        return row
    if kind == "Endpoints":
        return [name, endpoint_addresses(obj), created]
    if kind == "Ingress":
        ports = "80, 443" if spec.get("tls") else "80"
        return [
            name,
            spec.get("ingressClassName") or "<none>",
            ingress_hosts(obj),
            ingress_address(obj, lb_address),
            ports,
            created,
        ]
    if kind == "Node":
        info = status.get("nodeInfo") or {}
        row = [name, node_status(obj), node_roles(obj), created, info.get("kubeletVersion") or ""]
        if wide:
            row += [
                node_internal_ip(obj),
                info.get("osImage") or "<unknown>",
                info.get("kernelVersion") or "<unknown>",
                info.get("containerRuntimeVersion") or "<unknown>",
            ]
        return row
    if kind == "Event":
        row = [
            age(event_time(obj), now),
            obj.get("type") or "Normal",
            obj.get("reason") or "",
            event_object(obj),
            " ".join(str(obj.get("message") or "").split()),
        ]
        if wide:
            src = obj.get("source") or {}
            source = ", ".join(x for x in (src.get("component"), src.get("host")) if x)
            row += [
                (obj.get("involvedObject") or {}).get("fieldPath") or "",
                source or obj.get("reportingComponent") or "",
                age(obj.get("firstTimestamp") or meta.get("creationTimestamp", ""), now),
                obj.get("count") or 1,
                name,
            ]
        return row
    if kind == "ConfigMap":
        return [name, len(obj.get("data") or {}), created]
    if kind == "Namespace":
        return [name, status.get("phase") or "Active", created]
    if kind == "EndpointSlice":
        ports = ",".join(str(p.get("port")) for p in obj.get("ports") or []) or "<unset>"
        addresses = [a for e in obj.get("endpoints") or [] for a in e.get("addresses") or []]
        shown = ",".join(addresses[:3]) + (f" + {len(addresses) - 3} more..." if len(addresses) > 3 else "")
        return [name, obj.get("addressType", ""), ports, shown or "<unset>", created]
    raise ValueError(f"no table for kind {kind}")
