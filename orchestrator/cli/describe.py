"""kubectl-style `describe` text. Pure: callers fetch the object and its related objects and pass `now`."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from orchestrator.cli.printers import format_table
from orchestrator.model import (
    age,
    controller_of,
    format_bytes,
    format_cpu,
    labels_of,
    name_of,
    namespace_of,
    parse_bytes,
    parse_cpu,
    parse_time,
    pod_is_active,
    resolve_int_or_percent,
)
from orchestrator.tables import (
    endpoint_addresses,
    event_time,
    format_labels,
    format_selector,
    node_roles,
    pod_ip,
    pod_status,
    service_external_ip,
)
from orchestrator.workloads import newest_replicaset, owned_replicasets

KEY_WIDTH = 24


def kube_time(ts: str) -> str:
    """RFC 3339 -> 'Sat, 28 Nov 2026 04:41:02 +0000' (kubectl's describe format)."""
    if not ts:
        return "<unknown>"
    return _dt.datetime.fromtimestamp(parse_time(ts), _dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


class _Writer:
    def __init__(self, width: int = KEY_WIDTH) -> None:
        self.lines: list[str] = []
        self.width = width

    def kv(self, key: str, value: Any, indent: int = 0) -> None:
        label = " " * indent + f"{key}:"
        label = label.ljust(self.width) if len(label) < self.width else label + " "
        self.lines.append(f"{label}{value}".rstrip())

    def multi(self, key: str, values: Sequence[str], indent: int = 0) -> None:
        """A key with one value per line (Labels, Annotations); '<none>' when empty."""
        if not values:
            self.kv(key, "<none>", indent)
            return
        self.kv(key, values[0], indent)
        for v in values[1:]:
            self.lines.append(" " * self.width + v)

    def line(self, text: str = "", indent: int = 0) -> None:
        self.lines.append((" " * indent + text).rstrip())

    def block(self, text: str, indent: int) -> None:
        for ln in text.splitlines():
            self.line(ln, indent)

    def text(self) -> str:
        return "\n".join(self.lines)


def _labels(labels: Mapping[str, str] | None) -> list[str]:
    return [f"{k}={v}" for k, v in sorted((labels or {}).items())]


def _annotations(ann: Mapping[str, str] | None) -> list[str]:
    return [f"{k}: {v}" for k, v in sorted((ann or {}).items())]


def _header(w: _Writer, obj: Mapping[str, Any], namespaced: bool = True) -> None:
    meta = obj.get("metadata") or {}
    w.kv("Name", meta.get("name", ""))
    if namespaced:
        w.kv("Namespace", meta.get("namespace", ""))
    w.multi("Labels", _labels(meta.get("labels")))
    w.multi("Annotations", _annotations(meta.get("annotations")))


def events_for(obj: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The events whose involvedObject is `obj` (by uid when both have one, else kind+namespace+name)."""
    uid = (obj.get("metadata") or {}).get("uid")
    out = []
    for ev in events:
        ref = ev.get("involvedObject") or {}
        if ref.get("kind") != obj.get("kind") or ref.get("name") != name_of(obj):
            continue
        if obj.get("kind") != "Node" and (ref.get("namespace") or "") != namespace_of(obj):
            continue
        if uid and ref.get("uid") and ref["uid"] != uid:
            continue
        out.append(ev)
    return sorted(out, key=lambda e: parse_time(event_time(e)))


def _events(w: _Writer, events: Sequence[Mapping[str, Any]], now: float) -> None:
    if not events:
        w.kv("Events", "<none>")
        return
    w.line("Events:")
    rows = []
    for ev in events:
        last = age(event_time(ev), now)
        count = int(ev.get("count") or 1)
        if count > 1 and ev.get("firstTimestamp"):
            last = f"{last} (x{count} over {age(ev['firstTimestamp'], now)})"
        src = ev.get("source") or {}
        rows.append(
            [
                ev.get("type") or "Normal",
                ev.get("reason") or "",
                last,
                src.get("component") or ev.get("reportingComponent") or "",
                " ".join(str(ev.get("message") or "").split()),
            ]
        )
    table = format_table(
        ["Type", "Reason", "Age", "From", "Message"],
        [["----", "------", "----", "----", "-------"], *rows],
    )
    w.block(table, 2)


def _probe(p: Mapping[str, Any]) -> str:
    if p.get("httpGet"):
        h = p["httpGet"]
        what = f"http-get {h.get('scheme', 'http').lower()}://{h.get('host', '')}:{h.get('port')}{h.get('path', '/')}"
    elif p.get("tcpSocket"):
        what = f"tcp-socket {p['tcpSocket'].get('host', '')}:{p['tcpSocket'].get('port')}"
    elif p.get("exec"):
        what = f"exec [{' '.join(p['exec'].get('command') or [])}]"
    else:
        what = "unknown"
    return (
        f"{what} delay={p.get('initialDelaySeconds', 0)}s timeout={p.get('timeoutSeconds', 1)}s "
        f"period={p.get('periodSeconds', 10)}s #success={p.get('successThreshold', 1)} "
        f"#failure={p.get('failureThreshold', 3)}"
    )


def _state(w: _Writer, title: str, state: Mapping[str, Any] | None, indent: int) -> None:
    state = state or {}
    if state.get("running") is not None:
        w.kv(title, "Running", indent)
        w.kv("Started", kube_time(state["running"].get("startedAt", "")), indent + 2)
    elif state.get("waiting") is not None:
        w.kv(title, "Waiting", indent)
        w.kv("Reason", state["waiting"].get("reason", ""), indent + 2)
        if state["waiting"].get("message"):
            w.kv("Message", state["waiting"]["message"], indent + 2)
    elif state.get("terminated") is not None:
        t = state["terminated"]
        w.kv(title, "Terminated", indent)
        w.kv("Reason", t.get("reason", ""), indent + 2)
        if t.get("message"):
            w.kv("Message", t["message"], indent + 2)
        w.kv("Exit Code", t.get("exitCode", 0), indent + 2)
        if t.get("signal"):
            w.kv("Signal", t["signal"], indent + 2)
        w.kv("Started", kube_time(t.get("startedAt", "")), indent + 2)
        w.kv("Finished", kube_time(t.get("finishedAt", "")), indent + 2)
    else:
        w.kv(title, "<none>" if title == "Last State" else "Waiting", indent)


def _container(
    w: _Writer,
    c: Mapping[str, Any],
    cs: Mapping[str, Any] | None,
    mappings: Sequence[Mapping[str, Any]],
    indent: int,
) -> None:
    w.line(f"{c.get('name', '')}:", indent)
    i = indent + 2
    if cs is not None:
        w.kv("Container ID", cs.get("containerID", ""), i)
    w.kv("Image", c.get("image", ""), i)
    ports = c.get("ports") or []
    if ports:
        w.kv("Port", ", ".join(f"{p.get('containerPort')}/{p.get('protocol') or 'TCP'}" for p in ports), i)
        hosts = []
        for p in ports:
            m = next((m for m in mappings if m.get("containerPort") == p.get("containerPort")), None)
            hosts.append(f"{(m or {}).get('hostPort', p.get('hostPort', 0))}/{p.get('protocol') or 'TCP'}")
        w.kv("Host Port", ", ".join(hosts), i)
    else:
        w.kv("Port", "<none>", i)
    if c.get("command"):
        w.line("Command:", i)
        for part in c["command"]:
            w.line(part, i + 2)
    if c.get("args"):
        w.line("Args:", i)
        for part in c["args"]:
            w.line(part, i + 2)
    if cs is not None:
        _state(w, "State", cs.get("state"), i)
        _state(w, "Last State", cs.get("lastState"), i)
        w.kv("Ready", str(bool(cs.get("ready"))), i)
        w.kv("Restart Count", cs.get("restartCount", 0), i)
    resources = c.get("resources") or {}
    for key in ("limits", "requests"):
        if resources.get(key):
            w.line(f"{key.capitalize()}:", i)
            for res, q in sorted(resources[key].items()):
                w.kv(res, q, i + 2)
    if c.get("livenessProbe"):
        w.kv("Liveness", _probe(c["livenessProbe"]), i)
    if c.get("readinessProbe"):
        w.kv("Readiness", _probe(c["readinessProbe"]), i)
    env = c.get("env") or []
    if env:
        w.line("Environment:", i)
        for e in env:
            w.kv(e.get("name", ""), e.get("value", ""), i + 2)
    else:
        w.kv("Environment", "<none>", i)


def describe_pod(pod: Mapping[str, Any], events: Sequence[Mapping[str, Any]], now: float) -> str:
    w = _Writer()
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    w.kv("Name", meta.get("name", ""))
    w.kv("Namespace", meta.get("namespace", ""))
    node = spec.get("nodeName")
    w.kv("Node", f"{node}/{status.get('hostIP', '')}" if node and status.get("hostIP") else node or "<none>")
    w.kv("Start Time", kube_time(status.get("startTime", "")) if status.get("startTime") else "<unset>")
    w.multi("Labels", _labels(meta.get("labels")))
    w.multi("Annotations", _annotations(meta.get("annotations")))
    shown = pod_status(pod)
    w.kv("Status", shown if shown == "Terminating" else status.get("phase", "Pending"))
    if shown == "Terminating":
        w.kv("Termination Grace Period", f"{spec.get('terminationGracePeriodSeconds', 30)}s")
    if status.get("reason"):
        w.kv("Reason", status["reason"])
    if status.get("message"):
        w.kv("Message", status["message"])
    w.kv("IP", pod_ip(pod))
    owner = controller_of(pod)
    if owner:
        w.kv("Controlled By", f"{owner.get('kind')}/{owner.get('name')}")
    w.line("Containers:")
    statuses = {cs.get("name"): cs for cs in status.get("containerStatuses") or []}
    for c in spec.get("containers") or []:
        _container(w, c, statuses.get(c.get("name")), status.get("portMappings") or [], 2)
    conditions = status.get("conditions") or []
    if conditions:
        w.line("Conditions:")
        w.block(
            format_table(["Type", "Status"], [[c.get("type", ""), c.get("status", "")] for c in conditions]),
            2,
        )
    selector = spec.get("nodeSelector")
    w.kv("Node-Selectors", format_labels(selector) if selector else "<none>")
    tolerations = [
        f"{t.get('key', '')}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect', '')}"
        for t in spec.get("tolerations") or []
    ]
    w.multi("Tolerations", tolerations)
    _events(w, events_for(pod, events), now)
    return w.text()


def _percent(part: int, whole: int) -> str:
    return f"{int(part * 100 / whole) if whole else 0}%"


def _pod_limits(pod: Mapping[str, Any]) -> tuple[int, int]:
    cpu = mem = 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        lim = (c.get("resources") or {}).get("limits") or {}
        cpu += parse_cpu(lim["cpu"]) if "cpu" in lim else 0
        mem += parse_bytes(lim["memory"]) if "memory" in lim else 0
    return cpu, mem


def _pod_requests_only(pod: Mapping[str, Any]) -> tuple[int, int]:
    cpu = mem = 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        req = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        cpu += parse_cpu(req["cpu"]) if "cpu" in req else 0
        mem += parse_bytes(req["memory"]) if "memory" in req else 0
    return cpu, mem


def describe_node(
    node: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    now: float,
) -> str:
    w = _Writer()
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    w.kv("Name", meta.get("name", ""))
    w.kv("Roles", node_roles(node))
    w.multi("Labels", _labels(meta.get("labels")))
    w.multi("Annotations", _annotations(meta.get("annotations")))
    w.kv("CreationTimestamp", kube_time(meta.get("creationTimestamp", "")))
    taints = [
        f"{t.get('key')}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect')}"
        for t in spec.get("taints") or []
    ]
    w.multi("Taints", taints)
    w.kv("Unschedulable", str(bool(spec.get("unschedulable"))).lower())
    w.line("Conditions:")
    rows = [
        [
            c.get("type", ""),
            c.get("status", ""),
            kube_time(c.get("lastHeartbeatTime", "")),
            kube_time(c.get("lastTransitionTime", "")),
            c.get("reason", ""),
            c.get("message", ""),
        ]
        for c in status.get("conditions") or []
    ]
    w.block(
        format_table(
            ["Type", "Status", "LastHeartbeatTime", "LastTransitionTime", "Reason", "Message"],
            [["----", "------", "-----------------", "------------------", "------", "-------"], *rows],
        ),
        2,
    )
    w.line("Addresses:")
    for a in status.get("addresses") or []:
        w.kv(a.get("type", ""), a.get("address", ""), 2)
    for title, key in (("Capacity", "capacity"), ("Allocatable", "allocatable")):
        w.line(f"{title}:")
        for res, q in sorted((status.get(key) or {}).items()):
            w.kv(res, q, 2)
    info = status.get("nodeInfo") or {}
    if info:
        w.line("System Info:")
        for label, k in (
            ("Machine ID", "machineID"),
            ("Kernel Version", "kernelVersion"),
            ("OS Image", "osImage"),
            ("Operating System", "operatingSystem"),
            ("Architecture", "architecture"),
            ("Container Runtime Version", "containerRuntimeVersion"),
            ("Kubelet Version", "kubeletVersion"),
        ):
            if info.get(k):
                w.kv(label, info[k], 2)
    w.kv("Isolation", status.get("isolation") or "<unknown>")
    active = [p for p in pods if pod_is_active(p) or (p.get("status") or {}).get("phase") == "Running"]
    alloc = status.get("allocatable") or status.get("capacity") or {}
    cap_cpu = parse_cpu(alloc["cpu"]) if "cpu" in alloc else 0
    cap_mem = parse_bytes(alloc["memory"]) if "memory" in alloc else 0
    w.kv("Non-terminated Pods", f"({len(active)} in total)")
    prow = []
    tot = [0, 0, 0, 0]
    for p in sorted(active, key=lambda p: (namespace_of(p), name_of(p))):
        rc, rm = _pod_requests_only(p)
        lc, lm = _pod_limits(p)
        for i, v in enumerate((rc, lc, rm, lm)):
            tot[i] += v
        prow.append(
            [
                namespace_of(p),
                name_of(p),
                f"{format_cpu(rc)} ({_percent(rc, cap_cpu)})",
                f"{format_cpu(lc)} ({_percent(lc, cap_cpu)})",
                f"{format_bytes(rm)} ({_percent(rm, cap_mem)})",
                f"{format_bytes(lm)} ({_percent(lm, cap_mem)})",
                age((p.get("metadata") or {}).get("creationTimestamp", ""), now),
            ]
        )
    w.block(
        format_table(
            ["Namespace", "Name", "CPU Requests", "CPU Limits", "Memory Requests", "Memory Limits", "Age"],
            [
                [
                    "---------",
                    "----",
                    "------------",
                    "----------",
                    "---------------",
                    "-------------",
                    "---",
                ],
                *prow,
            ],
        ),
        2,
    )
    w.line("Allocated resources:")
    w.line("(Total limits may be over 100 percent, i.e., overcommitted.)", 2)
    w.block(
        format_table(
            ["Resource", "Requests", "Limits"],
            [
                ["--------", "--------", "------"],
                [
                    "cpu",
                    f"{format_cpu(tot[0])} ({_percent(tot[0], cap_cpu)})",
                    f"{format_cpu(tot[1])} ({_percent(tot[1], cap_cpu)})",
                ],
                [
                    "memory",
                    f"{format_bytes(tot[2])} ({_percent(tot[2], cap_mem)})",
                    f"{format_bytes(tot[3])} ({_percent(tot[3], cap_mem)})",
                ],
            ],
        ),
        2,
    )
    _events(w, events_for(node, events), now)
    return w.text()


def _strategy(spec: Mapping[str, Any], replicas: int) -> tuple[str, str]:
    strategy = spec.get("strategy") or {}
    kind = strategy.get("type") or "RollingUpdate"
    if kind != "RollingUpdate":
        return kind, ""
    ru = strategy.get("rollingUpdate") or {}
    unavailable = ru.get("maxUnavailable", "25%")
    surge = ru.get("maxSurge", "25%")
    del replicas  # shown as given, like kubectl
    return kind, f"{unavailable} max unavailable, {surge} max surge"


def _rs_summary(rs: Mapping[str, Any]) -> str:
    st = rs.get("status") or {}
    return f"{name_of(rs)} ({st.get('replicas', 0)}/{(rs.get('spec') or {}).get('replicas', 0)} replicas created)"


def describe_deployment(
    dep: Mapping[str, Any],
    replicasets: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    now: float,
) -> str:
    w = _Writer()
    meta = dep.get("metadata") or {}
    spec = dep.get("spec") or {}
    status = dep.get("status") or {}
    w.kv("Name", meta.get("name", ""))
    w.kv("Namespace", meta.get("namespace", ""))
    w.kv("CreationTimestamp", kube_time(meta.get("creationTimestamp", "")))
    w.multi("Labels", _labels(meta.get("labels")))
    w.multi("Annotations", _annotations(meta.get("annotations")))
    w.kv("Selector", format_selector(spec.get("selector")))
    desired = spec.get("replicas", 1)
    w.kv(
        "Replicas",
        f"{desired} desired | {status.get('updatedReplicas', 0)} updated | {status.get('replicas', 0)} total | "
        f"{status.get('availableReplicas', 0)} available | {status.get('unavailableReplicas', 0)} unavailable",
    )
    kind, rolling = _strategy(spec, desired)
    w.kv("StrategyType", kind)
    w.kv("MinReadySeconds", spec.get("minReadySeconds", 0))
    if rolling:
        w.kv("RollingUpdateStrategy", rolling)
    template = spec.get("template") or {}
    w.line("Pod Template:")
    tw = _Writer(16)
    tw.multi("Labels", _labels((template.get("metadata") or {}).get("labels")), 0)
    ann = (template.get("metadata") or {}).get("annotations")
    if ann:
        tw.multi("Annotations", _annotations(ann), 0)
    tw.line("Containers:")
    for c in (template.get("spec") or {}).get("containers") or []:
        _container(tw, c, None, [], 1)
    w.block(tw.text(), 2)
    conditions = status.get("conditions") or []
    if conditions:
        w.line("Conditions:")
        w.block(
            format_table(
                ["Type", "Status", "Reason"],
                [["----", "------", "------"]]
                + [[c.get("type", ""), c.get("status", ""), c.get("reason", "")] for c in conditions],
            ),
            2,
        )
    owned = owned_replicasets(dep, replicasets, orphans=False)
    new = newest_replicaset(dep, owned)
    old = [rs for rs in owned if rs is not new and (rs.get("spec") or {}).get("replicas", 0) > 0]
    w.kv("OldReplicaSets", ", ".join(_rs_summary(rs) for rs in old) or "<none>")
    w.kv("NewReplicaSet", _rs_summary(new) if new else "<none>")
    _events(w, events_for(dep, events), now)
    return w.text()


def describe_service(
    svc: Mapping[str, Any],
    endpoints: Mapping[str, Any] | None,
    events: Sequence[Mapping[str, Any]],
    now: float,
) -> str:
    w = _Writer()
    spec = svc.get("spec") or {}
    _header(w, svc)
    w.kv("Selector", format_labels(spec.get("selector")))
    w.kv("Type", spec.get("type") or "ClusterIP")
    w.kv("IP", spec.get("clusterIP") or "<none>")
    if spec.get("type") == "LoadBalancer":
        w.kv("LoadBalancer Ingress", service_external_ip(svc))
    for p in spec.get("ports") or []:
        proto = p.get("protocol") or "TCP"
        pname = p.get("name") or "<unset>"
        w.kv("Port", f"{pname}  {p.get('port')}/{proto}")
        target = p.get("targetPort", p.get("port"))
        w.kv("TargetPort", f"{target}/{proto}")
        if p.get("nodePort"):
            w.kv("NodePort", f"{pname}  {p['nodePort']}/{proto}")
        w.kv("Endpoints", endpoint_addresses(endpoints or {}, limit=10**6) if endpoints else "<none>")
    w.kv("Session Affinity", spec.get("sessionAffinity") or "None")
    if spec.get("type") in ("NodePort", "LoadBalancer"):
        w.kv("External Traffic Policy", spec.get("externalTrafficPolicy") or "Cluster")
    _events(w, events_for(svc, events), now)
    return w.text()


def describe_generic(obj: Mapping[str, Any], events: Sequence[Mapping[str, Any]], now: float) -> str:
    """Any other kind: the header, then its spec/status/data/subsets as indented YAML."""
    w = _Writer()
    _header(w, obj, namespaced=bool(namespace_of(obj)))
    if obj.get("kind") in ("ReplicaSet",):
        spec = obj.get("spec") or {}
        st = obj.get("status") or {}
        w.kv("Selector", format_selector(spec.get("selector")))
        owner = controller_of(obj)
        if owner:
            w.kv("Controlled By", f"{owner.get('kind')}/{owner.get('name')}")
        w.kv("Replicas", f"{st.get('replicas', 0)} current / {spec.get('replicas', 0)} desired")
    if obj.get("kind") == "Ingress":
        spec = obj.get("spec") or {}
        backend = spec.get("defaultBackend") or spec.get("backend")
        if backend:
            w.kv("Default backend", _ingress_backend(backend))
        w.line("Rules:")
        rows = [["----", "----", "--------"]]
        for r in spec.get("rules") or []:
            for p in ((r.get("http") or {}).get("paths")) or []:
                rows.append(
                    [r.get("host") or "*", p.get("path") or "/", _ingress_backend(p.get("backend") or {})]
                )
        if len(rows) == 1 and backend:
            rows.append(["*", "*", _ingress_backend(backend)])
        w.block(format_table(["Host", "Path", "Backends"], rows), 2)
    for key in ("spec", "data", "subsets", "status"):
        if obj.get("kind") in ("ReplicaSet", "Ingress") and key == "spec":
            continue
        if obj.get(key):
            w.line(f"{key[0].upper()}{key[1:]}:")
            w.block(yaml.safe_dump(obj[key], default_flow_style=False, sort_keys=True), 2)
    if obj.get("kind") != "Event":
        _events(w, events_for(obj, events), now)
    return w.text()


def _ingress_backend(b: Mapping[str, Any]) -> str:
    if b.get("service"):
        port = b["service"].get("port") or {}
        return f"{b['service'].get('name')}:{port.get('number') or port.get('name')}"
    return f"{b.get('serviceName')}:{b.get('servicePort')}"


def max_unavailable_text(spec: Mapping[str, Any]) -> int:
    """maxUnavailable resolved against replicas (used by rollout status messages)."""
    ru = ((spec.get("strategy") or {}).get("rollingUpdate")) or {}
    return resolve_int_or_percent(ru.get("maxUnavailable"), int(spec.get("replicas", 1)), round_up=False)


__all__ = [
    "describe_deployment",
    "describe_generic",
    "describe_node",
    "describe_pod",
    "describe_service",
    "events_for",
    "kube_time",
    "labels_of",
]
