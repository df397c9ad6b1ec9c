"""Node lifecycle controller: notices nodes whose agent went silent and moves their pods away.

Time-driven, so it runs on a tick rather than on events. For each node, silence = now - when this
controller last saw its heartbeat advance (never counted from before this controller started, so a new
leader or a control plane back from an outage does not evict everything at once). As Kubernetes' node
lifecycle controller keeps a probe timestamp per node, the time is the controller's own, not the one the
heartbeat carries: a renewal that took long to commit behind a loaded Raft log is news when it lands, and
the node is not judged by how long its news took to arrive. A heartbeat first seen counts at its own time.
- silence > grace: Ready becomes Unknown (NodeStatusUnknown), the node is tainted
  node.kubernetes.io/unreachable:NoSchedule, and its pods are marked not ready (so endpoints drop them);
- silence > grace + toleration: every pod on the node is force-deleted (its agent cannot stop it, so the
  object goes at once) and the owners replace them elsewhere;
- once the node is Ready with fresh heartbeats again the taint is removed.
Pods bound to a node that does not exist are force-deleted too (Kubernetes' pod GC).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping

from orchestrator import errors, model
from orchestrator.controllers.base import (
    Action,
    Cluster,
    Delete,
    Emit,
    EventRecorder,
    Obj,
    Patch,
    describe,
    perform,
)

log = logging.getLogger(__name__)

UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
DEFAULT_GRACE = 3.0
DEFAULT_TOLERATION = 2.0
ORPHAN_SWEEP = 5.0  # seconds between looks at every pod for those bound to a missing node


def ready_condition(node: Obj) -> Obj | None:
    for c in node.get("status", {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c
    return None


def last_heartbeat(node: Obj, beats: Mapping[str, float] | None = None) -> float:
    """The node's latest heartbeat: from `beats` (the store's, kept apart from the Node objects)
    when it is there, else the Ready condition's lastHeartbeatTime, or the creation time."""
    beat = beats.get(model.name_of(node)) if beats else None
    if beat is not None:
        return beat
    cond = ready_condition(node)
    beat = model.parse_time(cond.get("lastHeartbeatTime", "")) if cond else 0.0
    return beat or model.parse_time(node.get("metadata", {}).get("creationTimestamp", ""))


def _unknown_patch(node: Obj, now: float) -> Obj:
    stamp = model.rfc3339(now)
    conditions = []
    found = False
    for c in node.get("status", {}).get("conditions") or []:
        if c.get("type") == "Ready":
            found = True
            c = {
                **c,
                "status": "Unknown",
                "reason": "NodeStatusUnknown",
                "message": "Kubelet stopped posting node status.",
                "lastTransitionTime": stamp,
            }
        conditions.append(c)
    if not found:
        conditions.append(
            {
                "type": "Ready",
                "status": "Unknown",
                "reason": "NodeStatusUnknown",
                "message": "Kubelet never posted node status.",
                "lastTransitionTime": stamp,
            }
        )
    return {"status": {"conditions": conditions}}


def _wanted_taints(node: Obj, ready: bool, status: str, now: float) -> list[Obj]:
    current = node.get("spec", {}).get("taints") or []
    taints = [t for t in current if t.get("key") not in (UNREACHABLE, NOT_READY)]
    if not ready:
        key = UNREACHABLE if status == "Unknown" else NOT_READY
        old = next((t for t in current if t.get("key") == key and t.get("effect") == "NoSchedule"), None)
        taints.append(old or {"key": key, "effect": "NoSchedule", "timeAdded": model.rfc3339(now)})
    return taints


def _healthy(node: Obj) -> bool:
    """Ready and without the taints this controller adds: nothing to do while it is heard from."""
    cond = ready_condition(node)
    return cond is not None and cond.get("status") == "True" and not _has_our_taint(node)


def _has_our_taint(node: Obj) -> bool:
    return any(t.get("key") in (UNREACHABLE, NOT_READY) for t in node.get("spec", {}).get("taints") or [])


def _not_ready_patch(pod: Obj, now: float) -> Obj:
    conditions = []
    for c in pod.get("status", {}).get("conditions") or []:
        if c.get("type") == "Ready":
            c = {**c, "status": "False", "reason": "NodeNotReady", "lastTransitionTime": model.rfc3339(now)}
        conditions.append(c)
    return {"status": {"conditions": conditions}}


def reconcile_nodes(
    nodes: Iterable[Obj],
    pods: Iterable[Obj],
    now: float,
    grace: float = DEFAULT_GRACE,
    toleration: float = DEFAULT_TOLERATION,
    *,
    not_before: float = 0.0,
    beats: Mapping[str, float] | None = None,
) -> list[Action]:
    """Actions for silent nodes and their pods (see the module docstring). Idempotent per state.

    `pods` need only hold the pods of the silent nodes; pods bound to a node that does not exist are
    found among those given."""
    by_node: dict[str, list[Obj]] = defaultdict(list)
    for p in pods:
        if p.get("spec", {}).get("nodeName"):
            by_node[p["spec"]["nodeName"]].append(p)
    actions: list[Action] = []
    names = set()
    for node in sorted(nodes, key=model.name_of):
        name = model.name_of(node)
        names.add(name)
        cond = ready_condition(node)
        status = cond.get("status", "Unknown") if cond else "Unknown"
        silence = now - max(last_heartbeat(node, beats), not_before)
        if silence > grace and (cond is None or status != "Unknown"):
            log.info("node=%s not ready: no heartbeat for %.1fs", name, silence)
            actions.append(Patch("Node", "", name, _unknown_patch(node, now), status=True))
            actions.append(Emit.about(node, "NodeNotReady", f"Node {name} status is now: NodeNotReady"))
            status = "Unknown"
        ready = status == "True" and silence <= grace
        if ready and not _has_our_taint(node):
            continue  # the common case, and nothing to do: no taint to add or remove, no pod to move
        taints = _wanted_taints(node, ready, status, now)
        if taints != (node.get("spec", {}).get("taints") or []):
            log.info("node=%s taints=%s", name, [t["key"] for t in taints])
            actions.append(Patch("Node", "", name, {"spec": {"taints": taints}}))
        if silence <= grace:
            continue
        evict = silence > grace + toleration
        for p in sorted(by_node.get(name, []), key=model.name_of):
            ns, pod_name = model.namespace_of(p), model.name_of(p)
            if evict:
                log.info("node=%s evicting pod=%s/%s", name, ns, pod_name)
                actions.append(
                    Emit.about(p, "TaintManagerEviction", f"Marking for deletion Pod {ns}/{pod_name}")
                )
                actions.append(Delete("Pod", ns, pod_name, force=True))
            elif model.pod_is_terminating(p) and model.parse_time(p["metadata"]["deletionTimestamp"]) <= now:
                actions.append(Delete("Pod", ns, pod_name, force=True))
            elif model.pod_is_ready(p):
                actions.append(Patch("Pod", ns, pod_name, _not_ready_patch(p, now), status=True))
    for node_name, orphans in sorted(by_node.items()):
        if node_name not in names:
            for p in orphans:
                log.info(
                    "pod=%s/%s bound to missing node=%s: deleting",
                    model.namespace_of(p),
                    model.name_of(p),
                    node_name,
                )
                actions.append(Delete("Pod", model.namespace_of(p), model.name_of(p), force=True))
    return actions


class NodeLifecycleController:
    """Actor: every `tick` seconds, reconcile all nodes and perform the actions; failures are retried on
    the next tick, except Fenced, which stops it."""

    component = "node-controller"

    def __init__(
        self,
        cluster: Cluster,
        recorder: EventRecorder,
        *,
        grace: float = DEFAULT_GRACE,
        toleration: float = DEFAULT_TOLERATION,
        tick: float = 0.25,
    ) -> None:
        self.cluster = cluster
        self.recorder = recorder
        self.grace = grace
        self.toleration = toleration
        self.tick = tick
        self._swept = float("-inf")  # when all pods were last read (ORPHAN_SWEEP)
        self._fine: dict[str, Obj] = {}  # name -> the Node object last found Ready and untainted
        self._seen: dict[str, tuple[float, float]] = {}  # name -> (its heartbeat, when it changed)

    def handle(self, event_type: str, obj: Obj) -> None:
        """Nothing: the tick reads the current state."""

    async def run(self) -> None:
        started = self.cluster.now()
        log.info("node lifecycle started grace=%.1fs toleration=%.1fs", self.grace, self.toleration)
        while True:
            await self.sync(started)
            await asyncio.sleep(self.tick)

    async def sync(self, not_before: float = 0.0) -> None:
        """One pass. Linear in the nodes, with little work for a healthy one: a node that is heard
        from and is the same object last found Ready and untainted (objects are never changed in
        place) is skipped; only the pods of silent nodes are read (through the store's index),
        except every ORPHAN_SWEEP seconds, when all nodes and pods are, to find pods bound to a node
        that no longer exists."""
        now = self.cluster.now()
        nodes = self.cluster.list("Node")
        beats = self._observe(nodes, self.cluster.heartbeats(), now)
        if now - self._swept >= ORPHAN_SWEEP:
            self._swept = now
            look, pods = nodes, self.cluster.list("Pod")
        else:
            look, silent = [], []
            fine, self._fine = self._fine, {}
            heard_after = now - self.grace  # silent: not heard from since
            judging = not_before < heard_after  # within a grace of starting, no node is silent yet
            for n in nodes:
                name = n["metadata"]["name"]
                if judging and beats[name] < heard_after:
                    silent.append(name)
                    look.append(n)
                elif fine.get(name) is n or _healthy(n):
                    self._fine[name] = n
                else:
                    look.append(n)
            pods = [p for name in silent for p in self.cluster.pods_on_node(name)]
        actions = reconcile_nodes(
            look, pods, now, self.grace, self.toleration, not_before=not_before, beats=beats
        )
        for a in actions:
            try:
                await perform(self.cluster, self.recorder, a, self.component)
            except errors.Fenced:
                log.info("node lifecycle fenced: lease lost, stopping")
                raise
            except errors.SkiffError as e:
                log.info("node lifecycle %s failed: %r; retrying next tick", describe(a), e)

    def _observe(self, nodes: Iterable[Obj], beats: Mapping[str, float], now: float) -> dict[str, float]:
        """node name -> when its heartbeat (last_heartbeat) was last seen to change (the module
        docstring)."""
        seen, self._seen = self._seen, {}
        news: dict[str, float] = {}
        for n in nodes:
            name = n["metadata"]["name"]
            beat = beats.get(name)
            if beat is None:
                beat = last_heartbeat(n)
            old = seen.get(name)
            if old is None:
                old = (beat, beat)  # first seen: at its own time
            elif old[0] != beat:
                old = (beat, max(now, beat))  # news: now
            self._seen[name] = old
            news[name] = old[1]
        return news
