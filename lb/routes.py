"""The routing table: which listening socket leads to which backend, computed from the API's objects.

Pure: `compute_table(services, endpoints, ingresses, address=..., http_port=...)` turns the current
Services, Endpoints and Ingresses (dicts in Kubernetes' JSON shape) into a `RoutingTable`:

- a *backend* per Service port ("namespace/name:port"): its ready endpoints (pod host ip:port) in a
  stable order, and the endpoints that are terminating (draining: no new connections);
- a *listener* per (address, port) the balancer must accept on: every `clusterIP:port`, every
  `nodePort` (and every LoadBalancer service's port) on the balancer's own address, and the HTTP entry
  port, whose connections are routed by the Ingress rules;
- the Ingress rules of all Ingresses merged (both the extensions/v1beta1 and the networking.k8s.io/v1
  form), matched by Host and path: exact host before wildcard host before rules without a host; within
  them the longest matching path wins, Exact before Prefix at equal length; then the default backend.

`draining(old, new)` names the endpoints that left a backend's ready set between two tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lb.balancer import DEFAULT_AFFINITY_TIMEOUT, Endpoint

Obj = dict[str, Any]

EXACT = "Exact"
PREFIX = "Prefix"


@dataclass(frozen=True)
class Backend:
    """A Service port's endpoints. `draining` holds keys ("ip:port") of terminating endpoints."""

    name: str
    endpoints: tuple[Endpoint, ...] = ()
    draining: frozenset[str] = frozenset()
    affinity_timeout: float | None = None
    ready_keys: frozenset[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ready_keys", frozenset(ep.key for ep in self.endpoints))


@dataclass(frozen=True)
class Listener:
    """A socket to accept on. `backend` is None for the HTTP entry port (routed by Ingress)."""

    address: str
    port: int
    backend: str | None

    @property
    def key(self) -> tuple[str, int]:
        return (self.address, self.port)


@dataclass(frozen=True)
class PathRule:
    path: str
    exact: bool
    backend: str


def path_matches(rule: PathRule, path: str) -> bool:
    """Kubernetes' semantics: Exact compares whole paths; Prefix matches whole path segments
    ("/foo" matches "/foo", "/foo/" and "/foo/bar" but not "/foobar"; "/" matches everything)."""
    if rule.exact:
        return path == rule.path
    prefix = rule.path.rstrip("/")
    if not prefix:
        return True
    if not path.startswith(prefix):
        return False
    return len(path) == len(prefix) or path[len(prefix)] == "/"


def _order(rules: Iterable[PathRule]) -> tuple[PathRule, ...]:
    # Longest path first; Exact before Prefix at equal length; then by backend for determinism.
    return tuple(
        sorted(rules, key=lambda r: (-len(r.path.rstrip("/") or "/"), not r.exact, r.path, r.backend))
    )


@dataclass(frozen=True)
class IngressRoutes:
    exact_hosts: Mapping[str, tuple[PathRule, ...]] = field(default_factory=dict)
    # (".example.com", rules) for host "*.example.com": matches exactly one more label.
    wildcard_hosts: tuple[tuple[str, tuple[PathRule, ...]], ...] = ()
    any_host: tuple[PathRule, ...] = ()
    default: str | None = None

    def match(self, host: str, path: str) -> str | None:
        """The backend name for a request, or None (404)."""
        host = host.lower()
        candidates: list[tuple[PathRule, ...]] = []
        rules = self.exact_hosts.get(host)
        if rules:
            candidates.append(rules)
        for suffix, wrules in self.wildcard_hosts:
            if host.endswith(suffix) and "." not in host[: -len(suffix)] and len(host) > len(suffix):
                candidates.append(wrules)
        candidates.append(self.any_host)
        for group in candidates:
            for rule in group:
                if path_matches(rule, path):
                    return rule.backend
        return self.default


@dataclass(frozen=True)
class RoutingTable:
    listeners: Mapping[tuple[str, int], Listener] = field(default_factory=dict)
    backends: Mapping[str, Backend] = field(default_factory=dict)
    ingress: IngressRoutes = field(default_factory=IngressRoutes)
    # Conflicts and dangling references found while computing, for the logs.
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class FixedService:
    """A port the balancer serves on its address whatever the cluster holds, to a fixed set of
    endpoints: the masters' Kubernetes API (kind fronts an HA control plane the same way). A failed
    connect ejects the endpoint for a while and the connection tries the next one, so a dead master
    costs a client nothing but a refused connect."""

    name: str
    port: int
    endpoints: tuple[tuple[str, int], ...]

    @property
    def backend(self) -> str:
        return f"fixed/{self.name}"


def parse_fixed(text: str) -> FixedService:
    """'kube-api=6443:127.0.1.1:41000,127.0.1.2:41001' -> FixedService; ValueError naming the part."""
    name, sep, rest = text.partition("=")
    port_text, sep2, targets = rest.partition(":")
    if not sep or not sep2 or not name or not port_text.isdigit():
        raise ValueError(f"{text!r}: expected NAME=PORT:HOST:PORT[,HOST:PORT...]")
    endpoints = []
    for target in filter(None, targets.split(",")):
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{text!r}: {target!r} is not HOST:PORT")
        endpoints.append((host, int(port)))
    if not endpoints:
        raise ValueError(f"{text!r}: no endpoints")
    return FixedService(name, int(port_text), tuple(endpoints))


def backend_name(namespace: str, service: str, port: int) -> str:
    return f"{namespace}/{service}:{port}"


def _meta(obj: Obj) -> tuple[str, str]:
    m = obj.get("metadata") or {}
    return m.get("namespace") or "default", m.get("name") or ""


def _endpoint_port(subset: Obj, port_name: str, single: bool) -> int | None:
    ports = subset.get("ports") or []
    for p in ports:
        if (p.get("name") or "") == port_name and p.get("port"):
            return int(p["port"])
    if single and len(ports) == 1 and ports[0].get("port"):
        return int(ports[0]["port"])
    return None


def _pod_of(addr: Obj, namespace: str) -> str:
    ref = addr.get("targetRef") or {}
    name = ref.get("name") or ""
    return f"{ref.get('namespace') or namespace}/{name}" if name else ""


def _affinity(spec: Obj) -> float | None:
    if spec.get("sessionAffinity") != "ClientIP":
        return None
    cfg = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
    return float(cfg.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)


def _service_backends(svc: Obj, eps: Obj | None) -> list[tuple[Obj, Backend]]:
    namespace, name = _meta(svc)
    spec = svc.get("spec") or {}
    ports = spec.get("ports") or []
    affinity = _affinity(spec)
    out = []
    for sp in ports:
        if (sp.get("protocol") or "TCP") != "TCP" or not sp.get("port"):
            continue
        ready: dict[str, Endpoint] = {}
        draining: set[str] = set()
        for subset in (eps or {}).get("subsets") or []:
            port = _endpoint_port(subset, sp.get("name") or "", len(ports) == 1)
            if port is None:
                continue
            for addr in subset.get("addresses") or []:
                if addr.get("ip"):
                    ep = Endpoint(addr["ip"], port, _pod_of(addr, namespace))
                    ready[ep.key] = ep
            for addr in subset.get("notReadyAddresses") or []:
                if addr.get("ip") and addr.get("terminating"):
                    draining.add(f"{addr['ip']}:{port}")
        endpoints = tuple(sorted(ready.values(), key=lambda e: (e.ip, e.port)))
        out.append(
            (
                sp,
                Backend(
                    backend_name(namespace, name, int(sp["port"])),
                    endpoints,
                    frozenset(draining - ready.keys()),
                    affinity,
                ),
            )
        )
    return out


def _ingress_backend(
    backend: Obj | None, namespace: str, services: Mapping[tuple[str, str], Obj], problems: list[str]
) -> str | None:
    """Both forms: {serviceName, servicePort} (v1beta1) and {service: {name, port: {number|name}}} (v1)."""
    if not backend:
        return None
    if backend.get("service"):
        svc_name = backend["service"].get("name") or ""
        port_ref = backend["service"].get("port") or {}
        port: Any = port_ref.get("number") or port_ref.get("name") or ""
    else:
        svc_name = backend.get("serviceName") or ""
        port = backend.get("servicePort") or ""
    if not svc_name:
        return None
    svc = services.get((namespace, svc_name))
    ports = ((svc or {}).get("spec") or {}).get("ports") or []
    if isinstance(port, float):
        port = int(port)
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if isinstance(port, int) and port:
        return backend_name(namespace, svc_name, port)
    for sp in ports:
        if port and sp.get("name") == port:
            return backend_name(namespace, svc_name, int(sp["port"]))
    if not port and len(ports) == 1:
        return backend_name(namespace, svc_name, int(ports[0]["port"]))
    problems.append(f"ingress backend {namespace}/{svc_name}:{port or '?'}: no such service port")
    return backend_name(namespace, svc_name, 0)


def _ingress_routes(
    ingresses: Iterable[Obj], services: Mapping[tuple[str, str], Obj], problems: list[str]
) -> IngressRoutes:
    exact: dict[str, list[PathRule]] = {}
    wildcard: dict[str, list[PathRule]] = {}
    any_host: list[PathRule] = []
    default: str | None = None
    for ing in sorted(ingresses, key=_meta):
        namespace, _ = _meta(ing)
        spec = ing.get("spec") or {}
        d = _ingress_backend(spec.get("defaultBackend") or spec.get("backend"), namespace, services, problems)
        if d is not None and default is None:
            default = d
        for rule in spec.get("rules") or []:
            host = (rule.get("host") or "").lower()
            paths = ((rule.get("http") or {}).get("paths")) or []
            if host.startswith("*."):
                bucket = wildcard.setdefault(host[1:], [])
            elif host:
                bucket = exact.setdefault(host, [])
            else:
                bucket = any_host
            for p in paths:
                target = _ingress_backend(p.get("backend"), namespace, services, problems)
                if target is None:
                    continue
                path = p.get("path") or "/"
                # ImplementationSpecific and the v1beta1 form (no pathType) are treated as Prefix.
                bucket.append(PathRule(path, p.get("pathType") == EXACT, target))
    return IngressRoutes(
        exact_hosts={h: _order(r) for h, r in exact.items()},
        wildcard_hosts=tuple(sorted(((s, _order(r)) for s, r in wildcard.items()), key=lambda x: -len(x[0]))),
        any_host=_order(any_host),
        default=default,
    )


def compute_table(
    services: Iterable[Obj],
    endpoints: Iterable[Obj],
    ingresses: Iterable[Obj],
    *,
    address: str,
    http_port: int | None,
    fixed: Iterable[FixedService] = (),
) -> RoutingTable:
    """The routing table for these objects and the fixed services; deterministic (every worker
    computes the same one). A fixed service's port is taken before any Service's."""
    problems: list[str] = []
    svcs = {_meta(s): s for s in services}
    eps = {_meta(e): e for e in endpoints}
    backends: dict[str, Backend] = {}
    listeners: dict[tuple[str, int], Listener] = {}

    def listen(addr: str, port: int, backend: str | None, what: str) -> None:
        key = (addr, port)
        have = listeners.get(key)
        if have is not None:
            problems.append(f"{addr}:{port} wanted by {what} is taken by {have.backend or 'the HTTP entry'}")
            return
        listeners[key] = Listener(addr, port, backend)

    if http_port:
        listen(address, http_port, None, "the HTTP entry")
    for f in fixed:
        backends[f.backend] = Backend(
            f.backend, tuple(Endpoint(host, port, f.name) for host, port in f.endpoints)
        )
        listen(address, f.port, f.backend, f.backend)
    for key in sorted(svcs):
        svc = svcs[key]
        spec = svc.get("spec") or {}
        kind = spec.get("type") or "ClusterIP"
        cluster_ip = spec.get("clusterIP") or ""
        for sp, backend in _service_backends(svc, eps.get(key)):
            backends[backend.name] = backend
            if cluster_ip and cluster_ip != "None":
                listen(cluster_ip, int(sp["port"]), backend.name, backend.name)
            if kind in ("NodePort", "LoadBalancer") and sp.get("nodePort"):
                listen(address, int(sp["nodePort"]), backend.name, backend.name)
            if kind == "LoadBalancer":
                listen(address, int(sp["port"]), backend.name, backend.name)
    ingress = _ingress_routes(ingresses, svcs, problems)
    return RoutingTable(listeners, backends, ingress, tuple(problems))


def draining(old: RoutingTable, new: RoutingTable) -> dict[str, frozenset[str]]:
    """backend name -> endpoint keys that were ready in `old` and are not ready in `new`."""
    out: dict[str, frozenset[str]] = {}
    for name, b in old.backends.items():
        nb = new.backends.get(name)
        gone = b.ready_keys - (nb.ready_keys if nb is not None else frozenset())
        if gone:
            out[name] = gone
    return out
