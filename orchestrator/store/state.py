"""The replicated state and its pure, deterministic apply function.

`apply(state, command) -> Result` is the only way the state changes. It runs on every master in the
same order (Raft's log), so it must be deterministic: time, UIDs and name suffixes are chosen by the
proposer and carried in the command; no clock, randomness or I/O here, and no iteration over sets
(string hashing differs between processes).

Objects are never mutated once stored: a write stores a new dict. Readers may therefore hold
references to stored objects without copying. `apply` takes the command as its own: the objects it
carries are stored as they are, not deep-copied (only the parts a handler fills in are copied), so
a caller must not change a command it has applied. Raft hands each master a copy of its own, freshly
unpickled from the log; deep-copying each created object again was half the cost of a replay.

Every stored change is one event with its own revision (revisions are contiguous), kept in a bounded
history for watches. Every write carries a request id; a retried id gets the first result back
(exactly-once writes over an at-least-once transport).
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from orchestrator.model import key_of, rfc3339

Obj = dict[str, Any]
# ("ok", obj | None) or ("err", grpc status code name, message)
Result = tuple

HISTORY_LIMIT = 20_000
REQUEST_TABLE_LIMIT = 100_000
NODE_PORT_RANGE = (30000, 32767)
CLUSTER_IP_NET = ipaddress.ip_network("127.1.0.0/16")


@dataclass
class Event:
    revision: int
    type: str  # ADDED, MODIFIED, DELETED
    key: str
    obj: Obj


@dataclass
class Lease:
    holder: str = ""
    term: int = 0
    expiry: float = 0.0


@dataclass(frozen=True)
class Renewal:
    """A master's renewal set (commands.renew): the nodes whose streams it holds, last heard `at`."""

    set_id: int
    nodes: tuple[str, ...]  # in the order sent (iterated: the same order on every master)
    members: frozenset[str]  # the same, to look names up in
    at: float


@dataclass
class State:
    """Plain data only: it is pickled whole when the Raft log is compacted."""

    revision: int = 0
    objects: dict[str, dict[str, Obj]] = field(default_factory=dict)  # kind -> key -> object
    history: deque = field(default_factory=lambda: deque(maxlen=HISTORY_LIMIT))
    # request id -> (the request's fingerprint or None, its Result)
    requests: OrderedDict = field(default_factory=OrderedDict)
    lease: Lease = field(default_factory=Lease)
    heartbeats: dict[str, float] = field(default_factory=dict)  # node name -> last heartbeat time
    # master -> its renewal set: a node's liveness is its heartbeat or its holder's renewal (liveness)
    renewals: dict[str, Renewal] = field(default_factory=dict)
    unready: dict[str, None] = field(default_factory=dict)  # nodes whose Ready condition is not True
    pods_by_node: dict[str, dict[str, None]] = field(default_factory=dict)  # node -> pod keys (ordered)
    # "namespace/Kind/name" of a controller (its ownerReference) -> pod keys, ordered
    pods_by_owner: dict[str, dict[str, None]] = field(default_factory=dict)

    def __setstate__(self, data: dict[str, Any]) -> None:
        """Unpickling a snapshot: one written before an index existed gets it built."""
        self.__dict__.update(data)
        if "pods_by_owner" not in data:
            self.pods_by_owner = {}
            for key, pod in self.objects.get("Pod", {}).items():
                _index_pod(self, key, None, pod)
        if "renewals" not in data:
            self.renewals = {}
            self.unready = {
                n["metadata"]["name"]: None for n in self.objects.get("Node", {}).values() if not _ready(n)
            }

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.objects.get(kind, {}).get(key_of(kind, namespace, name))

    def copy(self) -> State:
        """A copy of the containers, sharing the objects (never changed in place): what a snapshot
        pickles while this state moves on."""
        return State(
            revision=self.revision,
            objects={kind: dict(m) for kind, m in self.objects.items()},
            history=deque(self.history, maxlen=self.history.maxlen),
            requests=OrderedDict(self.requests),
            lease=self.lease,
            heartbeats=dict(self.heartbeats),
            renewals=dict(self.renewals),
            unready=dict(self.unready),
            pods_by_node={node: dict(keys) for node, keys in self.pods_by_node.items()},
            pods_by_owner={owner: dict(keys) for owner, keys in self.pods_by_owner.items()},
        )

    def first_revision(self) -> int:
        """The oldest revision a watch may resume after."""
        return self.history[0].revision - 1 if self.history else self.revision


def ok(obj: Obj | None) -> Result:
    return ("ok", obj)


def err(code: str, message: str) -> Result:
    return ("err", code, message)


def _resource(kind: str) -> str:
    return {
        "Deployment": "deployments.apps",
        "ReplicaSet": "replicasets.apps",
        "Ingress": "ingresses.networking.k8s.io",
        "Endpoints": "endpoints",
    }.get(kind, kind.lower() + "s")


def not_found(kind: str, name: str) -> Result:
    return err("NOT_FOUND", f'{_resource(kind)} "{name}" not found')


# ---------------------------------------------------------------- entry point


def apply(state: State, cmd: dict[str, Any]) -> Result:
    """Apply one command; return its result. A command whose request id was seen returns that result.

    A "batch" command (several proposals grouped into one Raft entry) returns ("batch", [results]),
    each sub-command keeping its own request id and fence.
    """
    if cmd["op"] == "batch":
        return ("batch", [apply(state, c) for c in cmd["cmds"]])
    rid = cmd.get("rid")
    fp = cmd.get("fp")
    if rid:
        seen = state.requests.get(rid)
        if seen is not None:
            seen_fp, seen_result = seen
            if fp is not None and seen_fp is not None and fp != seen_fp:
                return err(
                    "INVALID_ARGUMENT", f"request id {rid[:64]!r} was already used by a different request"
                )
            return seen_result
    fence = cmd.get("fence")
    if fence is not None and (state.lease.holder, state.lease.term) != tuple(fence):
        result = err("FAILED_PRECONDITION", f"leader lease {fence} is no longer held")
    else:
        handler = _HANDLERS.get(cmd["op"])
        if handler is None:
            result = err("INVALID_ARGUMENT", f"unknown op {cmd['op']!r}")
        else:
            try:
                result = handler(state, cmd)
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                # A malformed command fails alone, the same way on every master (deterministic).
                result = err("INVALID_ARGUMENT", f"malformed {cmd['op']} command: {e!r}")
    if rid:
        state.requests[rid] = (fp, result)
        while len(state.requests) > REQUEST_TABLE_LIMIT:
            state.requests.popitem(last=False)
    return result


# ---------------------------------------------------------------- storing


def _emit(state: State, etype: str, obj: Obj) -> Obj:
    """Store `obj` (or delete it) as the next revision and record the event."""
    state.revision += 1
    kind = obj["kind"]
    meta = obj["metadata"]
    key = key_of(kind, meta.get("namespace", ""), meta["name"])
    if kind == "Pod":
        _index_pod(state, key, state.objects.get(kind, {}).get(key), obj if etype != "DELETED" else None)
    elif kind == "Node":
        if etype == "DELETED" or _ready(obj):
            state.unready.pop(meta["name"], None)
        else:
            state.unready[meta["name"]] = None
    if etype != "DELETED":
        obj = {**obj, "metadata": {**meta, "resourceVersion": str(state.revision)}}
        state.objects.setdefault(kind, {})[key] = obj
    else:
        state.objects.get(kind, {}).pop(key, None)
    state.history.append(Event(state.revision, etype, key, obj))
    return obj


def owner_key(namespace: str, kind: str, name: str) -> str:
    return f"{namespace}/{kind}/{name}"


def _owner_of(pod: Obj) -> str | None:
    for ref in pod.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return owner_key(pod["metadata"].get("namespace", ""), ref.get("kind", ""), ref.get("name", ""))
    return None


def _index_pod(state: State, key: str, prev: Obj | None, pod: Obj | None) -> None:
    """Keep the indexes of pods by node and by controller (emptied entries are dropped).

    Most writes of a pod change only its status and share its spec and owner references with the
    version before (objects are replaced, never changed in place): then neither index moves, and
    it is not looked at (a fifth of a journal replay's time at 30,000 pods went here)."""
    if (
        prev is not None
        and pod is not None
        and prev.get("spec") is pod.get("spec")
        and prev["metadata"].get("ownerReferences") is pod["metadata"].get("ownerReferences")
    ):
        return
    for index, of in ((state.pods_by_node, _node_of), (state.pods_by_owner, _owner_of)):
        old = of(prev) if prev is not None else None
        new = of(pod) if pod is not None else None
        if old == new:
            continue
        if old is not None:
            keys = index.get(old, {})
            keys.pop(key, None)
            if not keys:
                index.pop(old, None)
        if new is not None:
            index.setdefault(new, {})[key] = None


def _node_of(pod: Obj) -> str | None:
    return pod.get("spec", {}).get("nodeName") or None


def _existing(state: State, obj: Obj) -> Obj | None:
    meta = obj["metadata"]
    return state.get(obj["kind"], meta.get("namespace", ""), meta["name"])


def _spec_of(obj: Obj) -> Any:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


# ---------------------------------------------------------------- handlers


def _own(obj: Obj) -> Obj:
    """The command's object with its own top level and metadata, which handlers fill in (and, for a
    Service, its own spec, where addresses and ports are allocated); the rest is shared."""
    obj = {**obj, "metadata": dict(obj.get("metadata") or {})}
    if obj.get("kind") == "Service" and isinstance(obj.get("spec"), dict):
        obj["spec"] = dict(obj["spec"])
    return obj


def _create(state: State, cmd: dict[str, Any]) -> Result:
    obj = _own(cmd["obj"])
    meta = obj["metadata"]
    if not meta.get("name"):
        meta["name"] = meta.get("generateName", "") + cmd.get("suffix", "")
    if _existing(state, obj) is not None:
        return err("ALREADY_EXISTS", f'{_resource(obj["kind"])} "{meta["name"]}" already exists')
    meta["uid"] = cmd["uid"]
    meta["creationTimestamp"] = rfc3339(cmd["now"])
    meta["generation"] = 1
    meta.pop("resourceVersion", None)
    meta.pop("deletionTimestamp", None)
    if obj["kind"] == "Service":
        problem = _allocate_service(state, obj, None)
        if problem:
            return err("INVALID_ARGUMENT", problem)
    return ok(_emit(state, "ADDED", obj))


def _update(state: State, cmd: dict[str, Any]) -> Result:
    """Replace spec and metadata (not status). mode 'apply' creates a missing object."""
    new = cmd["obj"]
    old = _existing(state, new)
    if old is None:
        if cmd.get("mode") == "apply":
            return _create(state, cmd)
        return not_found(new["kind"], new["metadata"]["name"])
    rv = new["metadata"].get("resourceVersion")
    if rv and rv != old["metadata"]["resourceVersion"]:
        return _conflict(new)
    obj = _own(new)
    meta = obj["metadata"]
    for k in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "ownerReferences"):
        if k in old["metadata"] and (k != "ownerReferences" or k not in meta):
            meta[k] = old["metadata"][k]
    meta.pop("resourceVersion", None)
    if "status" in old:
        obj["status"] = old["status"]
    else:
        obj.pop("status", None)
    if obj["kind"] == "Service":
        problem = _allocate_service(state, obj, old)
        if problem:
            return err("INVALID_ARGUMENT", problem)
    if _spec_of(obj) != _spec_of(old):
        meta["generation"] = old["metadata"].get("generation", 1) + 1
    if _same(obj, old):
        return ok(old)
    return ok(_emit(state, "MODIFIED", obj))


def _same(a: Obj, b: Obj) -> bool:
    ma = {k: v for k, v in a["metadata"].items() if k != "resourceVersion"}
    mb = {k: v for k, v in b["metadata"].items() if k != "resourceVersion"}
    return ma == mb and {k: v for k, v in a.items() if k != "metadata"} == {
        k: v for k, v in b.items() if k != "metadata"
    }


def _conflict(obj: Obj) -> Result:
    return err(
        "ABORTED",
        f'Operation cannot be fulfilled on {_resource(obj["kind"])} "{obj["metadata"]["name"]}": '
        "the object has been modified; please apply your changes to the latest version and try again",
    )


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch; returns a new value, never mutates its arguments."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _patch(state: State, cmd: dict[str, Any]) -> Result:
    old = state.get(cmd["kind"], cmd["namespace"], cmd["name"])
    if old is None:
        return not_found(cmd["kind"], cmd["name"])
    rv = cmd.get("rv")
    if rv and rv != old["metadata"]["resourceVersion"]:
        return _conflict(old)
    patch = cmd["patch"]
    if cmd.get("status"):
        obj = {**old, "status": merge_patch(old.get("status") or {}, patch.get("status", patch))}
    else:
        patch = {k: v for k, v in patch.items() if k != "status"}
        meta_patch = {
            k: v
            for k, v in (patch.get("metadata") or {}).items()
            if k in ("labels", "annotations", "ownerReferences")
        }
        obj = merge_patch(old, {**patch, "metadata": meta_patch})
        if _spec_of(obj) != _spec_of(old):
            obj["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        if obj["kind"] == "Pod":
            old_node = old.get("spec", {}).get("nodeName")
            if old_node and obj.get("spec", {}).get("nodeName") != old_node:
                return err("INVALID_ARGUMENT", "spec.nodeName: a bound pod cannot move to another node")
        if obj["kind"] == "Service":
            problem = _allocate_service(state, obj, old)
            if problem:
                return err("INVALID_ARGUMENT", problem)
    if obj == old:
        return ok(old)
    return ok(_emit(state, "MODIFIED", obj))


def _delete(state: State, cmd: dict[str, Any]) -> Result:
    old = state.get(cmd["kind"], cmd["namespace"], cmd["name"])
    if old is None:
        return not_found(cmd["kind"], cmd["name"])
    rv = cmd.get("rv")
    if rv and rv != old["metadata"]["resourceVersion"]:
        return _conflict(old)
    return ok(_delete_obj(state, old, cmd["now"], bool(cmd.get("force")), cmd.get("grace")))


def _delete_obj(state: State, old: Obj, now: float, force: bool, grace: int | None) -> Obj:
    """Delete `old` and, recursively, what it owns. A running bound pod is only marked (graceful)."""
    if old["kind"] == "Pod" and not force and _needs_graceful_stop(old):
        if old["metadata"].get("deletionTimestamp"):
            return old
        if grace is None:
            grace = old.get("spec", {}).get("terminationGracePeriodSeconds", 30)
        # Kubernetes' meaning: the deadline by which the pod must be gone (request time + grace).
        meta = {
            **old["metadata"],
            "deletionTimestamp": rfc3339(now + int(grace)),
            "deletionGracePeriodSeconds": int(grace),
        }
        return _emit(state, "MODIFIED", {**old, "metadata": meta})
    _emit(state, "DELETED", old)
    uid = old["metadata"].get("uid")
    if uid and old["kind"] in ("Deployment", "ReplicaSet"):
        for kind in ("ReplicaSet", "Pod"):
            for child in list(state.objects.get(kind, {}).values()):
                refs = child["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == uid for r in refs):
                    _delete_obj(state, child, now, force, grace)
    if old["kind"] == "Service":
        ep = state.get("Endpoints", old["metadata"]["namespace"], old["metadata"]["name"])
        if ep is not None:
            _emit(state, "DELETED", ep)
    if old["kind"] == "Node":
        state.heartbeats.pop(old["metadata"]["name"], None)
    if old["kind"] == "Namespace":
        # Kubernetes' namespace controller empties a deleted namespace; here the same apply does it.
        name = old["metadata"]["name"]
        for kind, objs in list(state.objects.items()):
            for obj in list(objs.values()):
                if obj["metadata"].get("namespace") == name and state.get(
                    kind, name, obj["metadata"]["name"]
                ):
                    _delete_obj(state, obj, now, force, grace)
    return old


def _needs_graceful_stop(pod: Obj) -> bool:
    return bool(pod.get("spec", {}).get("nodeName")) and pod.get("status", {}).get("phase") not in (
        "Succeeded",
        "Failed",
    )


# ---------------------------------------------------------------- services


def _allocate_service(state: State, svc: Obj, old: Obj | None) -> str:
    """Fill spec.clusterIP and every NodePort (keeping earlier allocations). Returns a problem or ''."""
    spec = svc.setdefault("spec", {})
    others = [
        s
        for s in state.objects.get("Service", {}).values()
        if old is None or s["metadata"]["uid"] != old["metadata"]["uid"]
    ]
    old_spec = (old or {}).get("spec", {})
    if not spec.get("clusterIP"):
        spec["clusterIP"] = old_spec.get("clusterIP") or _free_cluster_ip(others)
    spec["clusterIPs"] = [spec["clusterIP"]]
    used = {int(p.get("nodePort", 0)) for s in others for p in s.get("spec", {}).get("ports") or []}
    old_ports = {(p.get("name", ""), p.get("port")): p.get("nodePort") for p in old_spec.get("ports") or []}
    wants_node_port = spec.get("type") in ("NodePort", "LoadBalancer")
    ports = []
    for p in spec.get("ports") or []:
        p = dict(p)
        if wants_node_port:
            if p.get("nodePort"):
                if int(p["nodePort"]) in used:
                    return f"spec.ports[].nodePort: Invalid value: {p['nodePort']}: provided port is already allocated"
            else:
                p["nodePort"] = old_ports.get((p.get("name", ""), p.get("port"))) or _free_node_port(used)
            used.add(int(p["nodePort"]))
        else:
            p.pop("nodePort", None)
        ports.append(p)
    spec["ports"] = ports
    return ""


def _free_cluster_ip(services: list[Obj]) -> str:
    used = {s.get("spec", {}).get("clusterIP") for s in services}
    for host in CLUSTER_IP_NET.hosts():
        if str(host) not in used:
            return str(host)
    raise RuntimeError("service address range exhausted")


def _free_node_port(used: set[int]) -> int:
    for port in range(NODE_PORT_RANGE[0], NODE_PORT_RANGE[1] + 1):
        if port not in used:
            return port
    raise RuntimeError("node port range exhausted")


# ---------------------------------------------------------------- nodes


def _ready(node: Obj) -> bool:
    """Whether a Node's Ready condition is True."""
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def _ready_condition(old: list[Obj], now: float) -> list[Obj]:
    """Node conditions with Ready=True (a transition if it was not)."""
    conditions = [c for c in old if c.get("type") != "Ready"]
    prev = next((c for c in old if c.get("type") == "Ready"), None)
    transition = prev["lastTransitionTime"] if prev and prev.get("status") == "True" else rfc3339(now)
    conditions.append(
        {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "skiff agent is posting ready status",
            "lastHeartbeatTime": rfc3339(now),
            "lastTransitionTime": transition,
        }
    )
    return conditions


def _register_node(state: State, cmd: dict[str, Any]) -> Result:
    node = _own(cmd["obj"])
    name = node["metadata"]["name"]
    old = state.get("Node", "", name)
    status = dict(node.get("status") or {})
    status["conditions"] = _ready_condition((old or {}).get("status", {}).get("conditions") or [], cmd["now"])
    node["status"] = status
    state.heartbeats[name] = cmd["now"]
    if old is None:
        meta = node["metadata"]
        meta["uid"] = cmd["uid"]
        meta["creationTimestamp"] = rfc3339(cmd["now"])
        meta.pop("namespace", None)
        return ok(_emit(state, "ADDED", node))
    merged = {
        **old,
        "metadata": {
            **old["metadata"],
            "labels": {**(old["metadata"].get("labels") or {}), **(node["metadata"].get("labels") or {})},
        },
        "status": status,
    }
    return ok(_emit(state, "MODIFIED", merged))


def _heartbeat(state: State, cmd: dict[str, Any]) -> Result:
    """An agent's heartbeat: its liveness, changed node status, and pod status updates, in one write."""
    name = cmd["node"]
    node = state.get("Node", "", name)
    if node is None:
        return not_found("Node", name)
    _alive(state, node, cmd["now"], cmd.get("node_status"))
    for update in cmd.get("pods") or []:
        pod = state.get("Pod", update["namespace"], update["name"])
        if pod is None or pod["metadata"].get("uid") != update["uid"]:
            continue
        if pod.get("spec", {}).get("nodeName") != name:
            continue
        if update.get("deleted") and pod["metadata"].get("deletionTimestamp"):
            _emit(state, "DELETED", pod)
            continue
        if update.get("status") is not None and update["status"] != pod.get("status"):
            _emit(state, "MODIFIED", {**pod, "status": update["status"]})
    return ok(None)


def _alive(state: State, node: Obj, now: float, status: Obj | None) -> None:
    """A node was heard from at `now` (with its changed status, if any): record the time, and mark
    it Ready when it was not."""
    name = node["metadata"]["name"]
    # A heartbeat held by a partitioned master can commit after newer ones: time never goes back.
    state.heartbeats[name] = max(now, state.heartbeats.get(name, 0.0))
    if status is not None or name in state.unready:
        conditions = (node.get("status") or {}).get("conditions") or []
        new_status = {**(node.get("status") or {}), **(status or {})}
        new_status["conditions"] = _ready_condition(conditions, now)
        _emit(state, "MODIFIED", {**node, "status": new_status})


def _renew(state: State, cmd: dict[str, Any]) -> Result:
    """Batched liveness (commands.renew): the holder's renewal set was heard at the command's time.

    A renewal naming its nodes replaces the holder's set (the times of the set it replaces stay
    with their nodes); one naming only the set's id renews the stored set, in time independent of
    its size: only the nodes both in the set and not Ready are visited, to mark them Ready again."""
    if "beats" in cmd:  # the form before renewal sets, in a journal an older master wrote
        for name, beat in cmd["beats"].items():
            node = state.get("Node", "", name)
            if node is not None:
                _alive(state, node, float(beat), None)
        return ok(None)
    holder, set_id, now = cmd["holder"], cmd["set"], float(cmd["now"])
    held = state.renewals.get(holder)
    if "nodes" in cmd:
        names = tuple(cmd["nodes"])
        if held is not None:
            _keep_times(state, held)
            if held.set_id == set_id:  # the same set sent again: a late commit does not turn time back
                now = max(now, held.at)
    elif held is None or held.set_id != set_id:
        return err(
            "FAILED_PRECONDITION", f"renewal set {set_id} of {holder} is not the one stored: send its nodes"
        )
    else:
        names, now = held.nodes, max(now, held.at)
    members = held.members if held is not None and held.nodes is names else frozenset(names)
    state.renewals[holder] = Renewal(set_id, names, members, now)
    if state.unready:
        for name in sorted(members.intersection(state.unready)):  # sorted: the same order everywhere
            node = state.get("Node", "", name)
            if node is not None:
                _alive(state, node, now, None)
    return ok(None)


def _keep_times(state: State, held: Renewal) -> None:
    """A renewal set about to be replaced: each of its nodes keeps the time it renewed them at."""
    for name in held.nodes:
        if state.get("Node", "", name) is not None and state.heartbeats.get(name, 0.0) < held.at:
            state.heartbeats[name] = held.at


def liveness(state: State) -> dict[str, float]:
    """Each node's last heartbeat: its own (registration, an agent's heartbeat, a renewal set it
    left), or the newest renewal set holding it. Nodes that do not exist are left out."""
    beats = dict(state.heartbeats)
    nodes, prefix = state.objects.get("Node", {}), key_of("Node", "", "")
    for held in state.renewals.values():
        at = held.at
        for name in held.nodes:
            if beats.get(name, 0.0) < at and prefix + name in nodes:
                beats[name] = at
    return beats


def _lease(state: State, cmd: dict[str, Any]) -> Result:
    """Grant the controllers' lease to the Raft leader of the newest term; renew for its holder.

    A newer Raft term always takes the lease (the old leader can no longer commit anything); within
    a term only the holder renews, and an expired lease of an older term may be taken.
    """
    lease = state.lease
    term, holder, now = cmd["term"], cmd["holder"], cmd["now"]
    if term > lease.term or (term == lease.term and (holder == lease.holder or now > lease.expiry)):
        state.lease = Lease(holder, term, now + cmd["duration"])
    return ok({"holder": state.lease.holder, "term": state.lease.term, "expiry": state.lease.expiry})


def _barrier(state: State, cmd: dict[str, Any]) -> Result:
    """A read's confirmation (Store.read_barrier): applying it changes nothing; its commit is the point."""
    return ok(None)


_HANDLERS = {
    "create": _create,
    "update": _update,
    "patch": _patch,
    "delete": _delete,
    "register_node": _register_node,
    "heartbeat": _heartbeat,
    "lease": _lease,
    "barrier": _barrier,
    "renew": _renew,
}


# ---------------------------------------------------------------- digest


def digest(state: State) -> str:
    """A hash of every stored object and the revision: equal on masters that hold identical state."""
    return Digester().digest(state.revision, snapshot(state))


def snapshot(state: State) -> list[tuple[str, Obj]]:
    """Every stored object with its key (in no set order: the digest does not depend on it). Objects
    are replaced, never changed in place, so the list may be hashed after the state has moved on."""
    return [item for objects in state.objects.values() for item in objects.items()]


class Digester:
    """The state's digest, as masters compare it: equal states at equal revisions give equal digests.

    Each object's hash is kept with the object it was computed from (objects are replaced, never
    changed in place), so a digest encodes only the objects that changed since the last one; the
    digest combines the objects' hashes by a sum, which does not depend on their order. Hashing every
    object each time cost a restarted master, asked for its status every 0.1 s while catching up, over
    40% of its CPU at 30,000 pods."""

    def __init__(self) -> None:
        self._hashes: dict[str, tuple[Obj, int]] = {}

    def cached(self) -> int:
        """How many objects' hashes are kept from the last digest."""
        return len(self._hashes)

    def digest(self, revision: int, objects: list[tuple[str, Obj]]) -> str:
        total = 0
        hashes: dict[str, tuple[Obj, int]] = {}
        for key, obj in objects:
            cached = self._hashes.get(key)
            if cached is None or cached[0] is not obj:
                encoded = key.encode() + b"\0" + json.dumps(obj, sort_keys=True).encode()
                cached = (obj, int.from_bytes(hashlib.blake2b(encoded, digest_size=8).digest(), "big"))
            hashes[key] = cached
            total = (total + cached[1]) & 0xFFFF_FFFF_FFFF_FFFF
        self._hashes = hashes
        return hashlib.sha256(f"{revision}:{total}".encode()).hexdigest()[:16]
