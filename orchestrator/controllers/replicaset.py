"""ReplicaSet controller: keeps `spec.replicas` active pods from the template, and the RS status.

Level-triggered: every sync counts the pods the store holds now (after a leader failover the new
controller starts from the store alone). Pods created in this process but not yet visible in the
snapshot are "expected" (see base.Expectations) and count as active, so a sync that runs before the
watch catches up never over-creates; one sync never creates more than desired - active.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from orchestrator import errors, model
from orchestrator.controllers.base import (
    DELETED,
    SYNC,
    Action,
    Cluster,
    ControllerActor,
    Create,
    Delete,
    Emit,
    EventRecorder,
    Expectations,
    Obj,
    Patch,
    RequeueAfter,
    owned_by,
    split_key,
)

log = logging.getLogger(__name__)

BURST = 500  # most pods created or deleted by one sync (client-go's burstReplicas)


def desired_replicas(obj: Obj) -> int:
    replicas = obj.get("spec", {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def ready_since(pod: Obj) -> float | None:
    """When the pod last became Ready (its Ready condition's lastTransitionTime), None if not ready."""
    for c in pod.get("status", {}).get("conditions") or []:
        if c.get("type") == "Ready":
            if c.get("status") != "True":
                return None
            return model.parse_time(c.get("lastTransitionTime", ""))
    return None


def pod_is_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    """Ready for at least min_ready_seconds (Kubernetes' "available")."""
    since = ready_since(pod)
    return since is not None and (min_ready_seconds <= 0 or since + min_ready_seconds <= now)


def pod_from_template(rs: Obj) -> Obj:
    """A new pod for `rs`: the template's metadata and spec, a generated name, a controller reference."""
    template = rs["spec"].get("template") or {}
    tmeta = template.get("metadata") or {}
    meta: dict[str, Any] = {
        "generateName": f"{model.name_of(rs)}-",
        "namespace": model.namespace_of(rs),
        "labels": dict(tmeta.get("labels") or {}),
        "ownerReferences": [model.owner_ref(rs)],
    }
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def deletion_order(pod: Obj) -> tuple[Any, ...]:
    """Sort key: pods that sort first are deleted first on scale-down (Kubernetes' ActivePods order):
    unscheduled before scheduled, Pending before Unknown before Running, not ready before ready,
    more restarts before fewer, newer before older."""
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}
    status = pod.get("status", {})
    restarts = sum(int(c.get("restartCount", 0)) for c in status.get("containerStatuses") or [])
    created = model.parse_time(pod.get("metadata", {}).get("creationTimestamp", ""))
    return (
        bool(pod.get("spec", {}).get("nodeName")),
        phase_rank.get(status.get("phase", "Pending"), 0),
        model.pod_is_ready(pod),
        -restarts,
        -created,
        model.name_of(pod),
    )


def replicaset_status(rs: Obj, owned: Iterable[Obj], now: float) -> dict[str, int]:
    min_ready = int(rs["spec"].get("minReadySeconds", 0))
    active = [p for p in owned if model.pod_is_active(p)]
    selector = (rs["spec"].get("selector") or {}).get("matchLabels") or {}
    return {
        "replicas": len(active),
        "fullyLabeledReplicas": sum(
            1 for p in active if all(model.labels_of(p).get(k) == v for k, v in selector.items())
        ),
        "readyReplicas": sum(1 for p in active if model.pod_is_ready(p)),
        "availableReplicas": sum(1 for p in active if pod_is_available(p, min_ready, now)),
        "observedGeneration": int(rs["metadata"].get("generation", 0)),
    }


def reconcile_replicaset(
    rs: Obj,
    pods: Iterable[Obj],
    now: float,
    *,
    pending_creates: int = 0,
    pending_deletes: frozenset[str] = frozenset(),
    burst: int = BURST,
) -> list[Action]:
    """Actions that move `rs` toward spec.replicas active pods, then its status.

    `pods` may be all pods of the namespace: only those whose controller reference is this RS (by uid)
    count. `pending_creates` pods were created but are not in `pods` yet; `pending_deletes` names were
    deleted but may still look active. Creates at most desired - (active + pending) pods; deletes only when
    no create is pending. Pods of an earlier RS with the same name (a stale uid) are deleted.
    """
    name, ns = model.name_of(rs), model.namespace_of(rs)
    pods = list(pods)
    owned = [p for p in pods if owned_by(p, rs)]
    active = [p for p in owned if model.pod_is_active(p) and model.name_of(p) not in pending_deletes]
    desired = desired_replicas(rs)
    actions: list[Action] = []

    diff = desired - len(active) - pending_creates
    if diff > 0:
        n = min(diff, burst)
        log.info(
            "replicaset=%s/%s scale up desired=%d active=%d pending=%d create=%d",
            ns,
            name,
            desired,
            len(active),
            pending_creates,
            n,
        )
        for _ in range(n):
            actions.append(Create(pod_from_template(rs)))
        actions.append(Emit.about(rs, "SuccessfulCreate", f"Created {n} pod(s) for replica set {name}"))
    elif diff <= 0 < desired - len(active):
        log.info(
            "replicaset=%s/%s waiting for %d expected creations desired=%d active=%d",
            ns,
            name,
            pending_creates,
            desired,
            len(active),
        )
    elif len(active) > desired and pending_creates == 0:
        victims = sorted(active, key=deletion_order)[: min(len(active) - desired, burst)]
        log.info(
            "replicaset=%s/%s scale down desired=%d active=%d delete=%d",
            ns,
            name,
            desired,
            len(active),
            len(victims),
        )
        for p in victims:
            actions.append(Delete("Pod", ns, model.name_of(p)))
            actions.append(Emit.about(rs, "SuccessfulDelete", f"Deleted pod: {model.name_of(p)}"))

    for p in pods:
        ref = model.controller_of(p)
        if (
            ref is not None
            and ref.get("kind") == "ReplicaSet"
            and ref.get("name") == name
            and not owned_by(p, rs)
            and not model.pod_is_terminating(p)
        ):
            actions.append(Delete("Pod", ns, model.name_of(p)))

    status = replicaset_status(rs, owned, now)
    current = rs.get("status") or {}
    if any(current.get(k, 0) != v for k, v in status.items()):
        actions.append(Patch("ReplicaSet", ns, name, {"status": status}, status=True))

    waits = [
        since + int(rs["spec"].get("minReadySeconds", 0)) - now
        for p in active
        if (since := ready_since(p)) is not None
        and not pod_is_available(p, int(rs["spec"].get("minReadySeconds", 0)), now)
    ]
    if waits:
        actions.append(RequeueAfter(max(0.0, min(waits)) + 0.01))
    return actions


def orphaned_pods(namespace: str, name: str, pods: Iterable[Obj]) -> list[Action]:
    """A deleted ReplicaSet's pods (Kubernetes' garbage collector does this with cascading deletion)."""
    return [
        Delete("Pod", namespace, model.name_of(p))
        for p in pods
        if (ref := model.controller_of(p)) is not None
        and ref.get("kind") == "ReplicaSet"
        and ref.get("name") == name
        and not model.pod_is_terminating(p)
    ]


class ReplicaSetController(ControllerActor):
    """Actor: keys are 'namespace/name' of ReplicaSets; pod events map to their controlling RS."""

    component = "replicaset-controller"

    def __init__(self, cluster: Cluster, recorder: EventRecorder, *, expectations_ttl: float = 30.0) -> None:
        super().__init__(cluster, recorder)
        self.expectations = Expectations(ttl=expectations_ttl)

    def keys_for(self, event_type: str, obj: Obj) -> Iterable[str]:
        kind = obj.get("kind")
        if kind == "ReplicaSet":
            return [f"{model.namespace_of(obj)}/{model.name_of(obj)}"]
        if kind != "Pod":
            return []
        ref = model.controller_of(obj)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return []
        key = f"{model.namespace_of(obj)}/{ref.get('name', '')}"
        if event_type == "ADDED":
            self.expectations.creation_observed(key)
        if event_type == DELETED or (event_type != SYNC and model.pod_is_terminating(obj)):
            self.expectations.deletion_observed(key, model.name_of(obj))
        return [key]

    def reconcile(self, key: str) -> list[Action]:
        ns, name = split_key(key)
        rs = self.cluster.get("ReplicaSet", ns, name)
        pods = self.cluster.pods_controlled_by(ns, "ReplicaSet", name)  # an index: no scan of all pods
        if rs is None:
            self.expectations.clear(key)
            self._slow_start.pop(key, None)
            return orphaned_pods(ns, name, pods)
        creates, deletes = self.expectations.pending(key, self.cluster.now())
        return reconcile_replicaset(
            rs, pods, self.cluster.now(), pending_creates=creates, pending_deletes=deletes
        )

    async def sync(self, key: str) -> None:
        actions = self.paced_reconcile(key)
        creates = sum(1 for a in actions if isinstance(a, Create))
        deletes = [a.name for a in actions if isinstance(a, Delete)]
        self.expectations.expect(key, self.cluster.now(), creates=creates, deletes=deletes)
        await self.perform_all(key, actions)

    def on_skipped(self, key: str, actions: Sequence[Action]) -> None:
        # Creates a failed slow-start batch left untried will never be observed (client-go lowers
        # the expectations by the skipped pods the same way), or the next sync would wait the ttl.
        for action in actions:
            if isinstance(action, Create):
                self.expectations.creation_observed(key)

    def on_result(self, key: str, action: Action, error: BaseException | None) -> None:
        # A write that definitely failed will never be observed; one with an unknown outcome
        # (Unavailable, cancelled) may still land, so its expectation waits for the watch or the ttl.
        if not isinstance(error, errors.SkiffError) or isinstance(error, errors.Unavailable):
            return
        if isinstance(action, Create):
            self.expectations.creation_observed(key)
        elif isinstance(action, Delete):
            self.expectations.deletion_observed(key, action.name)
