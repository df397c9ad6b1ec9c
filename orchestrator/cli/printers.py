"""kubectl-style output: tables per kind, `-o name|yaml|json`, resource names. Pure: `now` is an argument."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from orchestrator.model import KINDS, age, labels_of, name_of, namespace_of, parse_time

Obj = dict[str, Any]

# The API group kubectl shows for each kind ("deployment.apps/demo"); "" for the core group.
DEFAULT_GROUP = {"Deployment": "apps", "ReplicaSet": "apps", "Ingress": "networking.k8s.io"}


def group_of(kind: str, obj: Mapping[str, Any] | None = None) -> str:
    api_version = (obj or {}).get("apiVersion", "")
    if "/" in api_version:
        return api_version.split("/", 1)[0]
    return DEFAULT_GROUP.get(kind, "")


def singular(kind: str, obj: Mapping[str, Any] | None = None) -> str:
    """'deployment.apps', 'pod', 'ingress.networking.k8s.io' (the `-o name` / apply prefix)."""
    group = group_of(kind, obj)
    return f"{kind.lower()}.{group}" if group else kind.lower()


def plural(kind: str, obj: Mapping[str, Any] | None = None) -> str:
    """'deployments.apps', 'pods', 'endpoints' (kubectl's NotFound message names)."""
    base = KINDS[kind].names[0] if kind in KINDS else kind.lower() + "s"
    group = group_of(kind, obj)
    return f"{base}.{group}" if group else base


def object_name(obj: Mapping[str, Any]) -> str:
    """`-o name`: 'deployment.apps/demo'."""
    return f"{singular(obj.get('kind', ''), obj)}/{name_of(obj)}"


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
        from orchestrator.model import rfc3339

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


# ---------------------------------------------------------------- tables


@dataclass(frozen=True)
class TableOptions:
    wide: bool = False
    all_namespaces: bool = False
    show_labels: bool = False
    no_headers: bool = False
    with_kind: bool = False  # NAME as 'pod/x' (get all, several kinds)
    lb_address: str = ""  # the balancer's http address (ingress ADDRESS)


def columns(kind: str, wide: bool = False) -> list[str]:
    base = {
        "Pod": ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "Deployment": ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "ReplicaSet": ["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
        "Service": ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
        "Endpoints": ["NAME", "ENDPOINTS", "AGE"],
        "Ingress": ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"],
        "Node": ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
        "Event": ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "ConfigMap": ["NAME", "DATA", "AGE"],
    }[kind]
    if not wide:
        return base
    extra = {
        "Pod": ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
        # kubectl's wide columns, then the seed era's DESIRED CURRENT (kept last so kubectl's prefix holds).
        "Deployment": ["CONTAINERS", "IMAGES", "SELECTOR", "DESIRED", "CURRENT"],
        "ReplicaSet": ["CONTAINERS", "IMAGES", "SELECTOR"],
        "Service": ["SELECTOR"],
        "Node": ["INTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"],
        "Event": ["SUBOBJECT", "SOURCE", "FIRST SEEN", "COUNT", "NAME"],
    }.get(kind, [])
    return base + extra


def row(kind: str, obj: Mapping[str, Any], now: float, opts: TableOptions = TableOptions()) -> list[str]:
    """One table row for `obj` (without NAMESPACE / LABELS, which `table` adds)."""
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    if opts.with_kind:
        name = object_name({**obj, "kind": kind})
    created = age(meta.get("creationTimestamp", ""), now)
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    wide = opts.wide
    if kind == "Pod":
        cells = [name, pod_ready(obj), pod_status(obj), pod_restarts(obj, now), created]
        if wide:
            nominated = status.get("nominatedNodeName") or "<none>"
            cells += [pod_ip(obj), spec.get("nodeName") or "<none>", nominated, "<none>"]
        return cells
    if kind == "Deployment":
        desired = spec.get("replicas", 1)
        cells = [
            name,
            f"{status.get('readyReplicas', 0)}/{desired}",
            str(status.get("updatedReplicas", 0)),
            str(status.get("availableReplicas", 0)),
            created,
        ]
        if wide:
            tspec = (spec.get("template") or {}).get("spec") or {}
            cells += [*container_names(tspec), format_selector(spec.get("selector"))]
            cells += [str(desired), str(status.get("replicas", 0))]
        return cells
    if kind == "ReplicaSet":
        cells = [
            name,
            str(spec.get("replicas", 1)),
            str(status.get("replicas", 0)),
            str(status.get("readyReplicas", 0)),
            created,
        ]
        if wide:
            tspec = (spec.get("template") or {}).get("spec") or {}
            cells += [*container_names(tspec), format_selector(spec.get("selector"))]
        return cells
    if kind == "Service":
        cells = [
            name,
            spec.get("type") or "ClusterIP",
            _or_none(spec.get("clusterIP")),
            service_external_ip(obj),
            service_ports(obj),
            created,
        ]
        if wide:
            cells.append(format_labels(spec.get("selector")))
        return cells
    if kind == "Endpoints":
        return [name, endpoint_addresses(obj), created]
    if kind == "Ingress":
        ports = "80, 443" if spec.get("tls") else "80"
        return [
            name,
            spec.get("ingressClassName") or "<none>",
            ingress_hosts(obj),
            ingress_address(obj, opts.lb_address),
            ports,
            created,
        ]
    if kind == "Node":
        info = status.get("nodeInfo") or {}
        cells = [name, node_status(obj), node_roles(obj), created, info.get("kubeletVersion") or ""]
        if wide:
            cells += [
                node_internal_ip(obj),
                info.get("osImage") or "<unknown>",
                info.get("kernelVersion") or "<unknown>",
                info.get("containerRuntimeVersion") or "<unknown>",
            ]
        return cells
    if kind == "Event":
        cells = [
            age(event_time(obj), now),
            obj.get("type") or "Normal",
            obj.get("reason") or "",
            event_object(obj),
            " ".join(str(obj.get("message") or "").split()),
        ]
        if wide:
            src = obj.get("source") or {}
            source = ", ".join(x for x in (src.get("component"), src.get("host")) if x)
            cells += [
                (obj.get("involvedObject") or {}).get("fieldPath") or "",
                source or obj.get("reportingComponent") or "",
                age(obj.get("firstTimestamp") or meta.get("creationTimestamp", ""), now),
                str(obj.get("count") or 1),
                name,
            ]
        return cells
    if kind == "ConfigMap":
        return [name, str(len(obj.get("data") or {})), created]
    raise ValueError(f"no table for kind {kind}")


def format_table(headers: Sequence[str] | None, rows: Iterable[Sequence[str]]) -> str:
    """Columns padded to their widest cell plus three spaces (kubectl's tabwriter); no trailing spaces."""
    all_rows = ([list(headers)] if headers else []) + [list(r) for r in rows]
    if not all_rows:
        return ""
    ncols = max(len(r) for r in all_rows)
    widths = [max((len(r[i]) for r in all_rows if i < len(r)), default=0) for i in range(ncols)]
    lines = []
    for r in all_rows:
        cells = [c.ljust(widths[i]) if i < len(r) - 1 else c for i, c in enumerate(r)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


def table_headers(kind: str, opts: TableOptions) -> list[str]:
    headers = columns(kind, opts.wide)
    if opts.all_namespaces and KINDS[kind].namespaced:
        headers = ["NAMESPACE", *headers]
    if opts.show_labels:
        headers = [*headers, "LABELS"]
    return headers


def table_row(kind: str, obj: Mapping[str, Any], now: float, opts: TableOptions) -> list[str]:
    cells = row(kind, obj, now, opts)
    if opts.all_namespaces and KINDS[kind].namespaced:
        cells = [namespace_of(obj), *cells]
    if opts.show_labels:
        cells = [*cells, format_labels(labels_of(obj))]
    return cells


def sort_objects(kind: str, objs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if kind == "Event":
        return sorted(objs, key=lambda e: (parse_time(event_time(e)), name_of(e)))
    return sorted(objs, key=lambda o: (namespace_of(o), name_of(o)))


def table(
    kind: str, objs: Iterable[Mapping[str, Any]], now: float, opts: TableOptions = TableOptions()
) -> str:
    rows = [table_row(kind, o, now, opts) for o in sort_objects(kind, objs)]
    headers = None if opts.no_headers else table_headers(kind, opts)
    return format_table(headers, rows)


# ---------------------------------------------------------------- -o yaml / json / name


def as_list(objs: Sequence[Mapping[str, Any]]) -> Obj:
    return {"apiVersion": "v1", "kind": "List", "items": list(objs), "metadata": {"resourceVersion": ""}}


def to_json(objs: Sequence[Mapping[str, Any]], single: bool) -> str:
    data = objs[0] if single and len(objs) == 1 else as_list(objs)
    return json.dumps(data, indent=4)


def to_yaml(objs: Sequence[Mapping[str, Any]], single: bool) -> str:
    data = objs[0] if single and len(objs) == 1 else as_list(objs)
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=True).rstrip("\n")
