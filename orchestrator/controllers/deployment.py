"""Deployment controller: one ReplicaSet per pod template, rolled from old to new.

The new ReplicaSet is the one whose `pod-template-hash` label equals the hash of the deployment's
template (computed without that label, so a template copied back from an old RS by `rollout undo`
finds that RS again, which then gets the next revision). A rolling update alternates two steps, as
Kubernetes' does: scale the new RS up while the total stays within replicas + maxSurge, else scale old
RSs down while the available pods stay at least replicas - maxUnavailable. Recreate scales every old RS
to zero, waits for their pods to be gone, then scales the new one up.

Pod counts per RS are max(spec.replicas, active pods): a pod the RS controller has not yet deleted
still counts, so the deployment never has more than replicas + maxSurge active pods even while the
two controllers' views lag each other. RS scaling uses compare-and-set updates, so a decision made on a
stale snapshot fails with Conflict and is retried on fresh state.
"""

from __future__ import annotations

import copy
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from orchestrator import model
from orchestrator.controllers.base import (
    Action,
    ControllerActor,
    Create,
    Delete,
    Emit,
    Obj,
    Patch,
    RequeueAfter,
    Update,
    owned_by,
    split_key,
)
from orchestrator.controllers.replicaset import desired_replicas, ready_since
from orchestrator.workloads import HASH_LABEL, REVISION, deployment_template_hash, revision_of

log = logging.getLogger(__name__)

DEFAULT_HISTORY = 10
DEFAULT_PROGRESS_DEADLINE = 600


def surge_and_unavailable(deployment: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) resolved against replicas: surge rounds up, unavailable down; never both 0.

    Recreate is (0, replicas).
    """
    spec = deployment["spec"]
    replicas = desired_replicas(deployment)
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, replicas
    rolling = strategy.get("rollingUpdate") or {}
    surge = model.resolve_int_or_percent(rolling.get("maxSurge"), replicas, True)
    unavailable = model.resolve_int_or_percent(rolling.get("maxUnavailable"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def new_replica_set(deployment: Obj, pod_hash: str, revision: int, replicas: int) -> Obj:
    spec = deployment["spec"]
    template = copy.deepcopy(spec.get("template") or {})
    tmeta = template.setdefault("metadata", {})
    tmeta["labels"] = {**(tmeta.get("labels") or {}), HASH_LABEL: pod_hash}
    selector = copy.deepcopy(spec.get("selector") or {})
    selector["matchLabels"] = {
        **(selector.get("matchLabels") or {k: v for k, v in tmeta["labels"].items() if k != HASH_LABEL}),
        HASH_LABEL: pod_hash,
    }
    rs_spec: dict[str, Any] = {"replicas": replicas, "selector": selector, "template": template}
    if spec.get("minReadySeconds"):
        rs_spec["minReadySeconds"] = spec["minReadySeconds"]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{model.name_of(deployment)}-{pod_hash}",
            "namespace": model.namespace_of(deployment),
            "labels": dict(tmeta["labels"]),
            "annotations": {REVISION: str(revision)},
            "ownerReferences": [model.owner_ref(deployment)],
        },
        "spec": rs_spec,
    }


@dataclass
class _RSView:
    """One owned ReplicaSet with its pods, and the changed copy to write (if any)."""

    rs: Obj
    active: int
    ready: int
    available: int
    existing: int  # any pod, terminating ones included
    changed: Obj | None = None

    @property
    def name(self) -> str:
        return model.name_of(self.rs)

    @property
    def spec(self) -> int:
        obj = self.changed or self.rs
        return desired_replicas(obj)

    @property
    def count(self) -> int:
        return max(self.spec, self.active)

    @property
    def staying(self) -> int:
        """Available pods that stay: those above the set's size are about to be deleted (its
        controller may not have done it yet) and so cannot count toward availability."""
        return min(self.available, self.spec)

    def edit(self) -> Obj:
        if self.changed is None:
            self.changed = copy.deepcopy(self.rs)
        return self.changed


def _scale(view: _RSView, replicas: int, deployment: Obj, actions: list[Action]) -> None:
    old = view.spec
    if replicas == old:
        return
    view.edit()["spec"]["replicas"] = replicas
    verb = "up" if replicas > old else "down"
    log.info(
        "deployment=%s scale %s replicaset=%s %d->%d",
        model.name_of(deployment),
        verb,
        view.name,
        old,
        replicas,
    )
    actions.append(
        Emit.about(
            deployment, "ScalingReplicaSet", f"Scaled {verb} replica set {view.name} to {replicas} from {old}"
        )
    )


def _rolling(d: Obj, new: _RSView, olds: list[_RSView], actions: list[Action]) -> None:
    replicas = desired_replicas(d)
    surge, unavailable = surge_and_unavailable(d)
    everyone = [new, *olds]

    if new.spec > replicas:
        _scale(new, replicas, d, actions)
        return
    if new.spec < replicas:
        room = replicas + surge - sum(v.count for v in everyone)
        if room > 0:
            _scale(new, new.spec + min(room, replicas - new.spec), d, actions)
            return

    if sum(v.spec for v in olds) == 0:
        return
    min_available = replicas - unavailable
    new_unavailable = new.spec - new.staying
    budget = sum(v.spec for v in everyone) - min_available - new_unavailable
    if budget <= 0:
        return
    # First the old pods that are not available anyway: removing them costs no availability.
    for v in olds:
        unhealthy = v.spec - v.available
        if budget <= 0:
            break
        if unhealthy > 0:
            n = min(budget, unhealthy)
            _scale(v, v.spec - n, d, actions)
            budget -= n
    excess = sum(v.staying for v in everyone) - min_available
    for v in olds:
        if excess <= 0:
            break
        n = min(v.spec, excess)
        if n > 0:
            _scale(v, v.spec - n, d, actions)
            excess -= n


def _recreate(d: Obj, new: _RSView, olds: list[_RSView], actions: list[Action]) -> None:
    if any(v.spec > 0 for v in olds):
        for v in olds:
            _scale(v, 0, d, actions)
        return
    if any(v.existing > 0 for v in olds):
        return
    _scale(new, desired_replicas(d), d, actions)


def _condition(
    current: list[Obj],
    ctype: str,
    status: str,
    reason: str,
    message: str,
    now: float,
    progressed: bool = False,
) -> Obj:
    """A condition keeping its timestamps unless it changed (or, for Progressing, progress was made)."""
    stamp = model.rfc3339(now)
    old = next((c for c in current if c.get("type") == ctype), None)
    if old is None:
        return {
            "type": ctype,
            "status": status,
            "reason": reason,
            "message": message,
            "lastUpdateTime": stamp,
            "lastTransitionTime": stamp,
        }
    same = (old.get("status"), old.get("reason"), old.get("message")) == (status, reason, message)
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": old.get("lastUpdateTime", stamp) if same and not progressed else stamp,
        "lastTransitionTime": old.get("lastTransitionTime", stamp) if old.get("status") == status else stamp,
    }


@dataclass(frozen=True, slots=True)
class PodFacts:
    """What a Deployment's sync asks of each of its pods."""

    owner: str  # the controller ownerReference's uid ("" without one)
    active: bool
    ready: bool
    ready_since: float | None

    @classmethod
    def of(cls, pod: Obj) -> PodFacts:
        ref = model.controller_of(pod)
        return cls(
            ref.get("uid", "") if ref else "",
            model.pod_is_active(pod),
            model.pod_is_ready(pod),
            ready_since(pod),
        )

    def available(self, min_ready: int, now: float) -> bool:
        return self.ready_since is not None and (min_ready <= 0 or self.ready_since + min_ready <= now)


class FactsMemo:
    """PodFacts per pod, computed once per version of it: stored objects are never changed in place,
    so a pod that is the same object as at the last call has the same facts. Holds only the pods of
    the last call. (At 26,000 pods, computing them afresh at every sync was a third of the leader.)"""

    def __init__(self) -> None:
        self._last: dict[str, tuple[Obj, PodFacts]] = {}

    def __call__(self, pods: Iterable[Obj]) -> list[PodFacts]:
        last, self._last = self._last, {}
        out = []
        for p in pods:
            uid = p["metadata"].get("uid", "")
            hit = last.get(uid)
            facts = hit[1] if hit is not None and hit[0] is p else PodFacts.of(p)
            self._last[uid] = (p, facts)
            out.append(facts)
        return out


def reconcile_deployment(
    deployment: Obj,
    replica_sets: Iterable[Obj],
    pods: Iterable[Obj],
    now: float,
    facts: Callable[[Iterable[Obj]], Iterable[PodFacts]] | None = None,
) -> list[Action]:
    """Actions that move a Deployment one step toward its template at `replicas`, then its status.

    `replica_sets` and `pods` may be all of the namespace; only those owned (by uid, through the
    ReplicaSets for pods) count. `facts`: the pods' PodFacts (a FactsMemo), computed afresh without.
    Pure and idempotent: the same state gives the same actions.
    """
    d = deployment
    name, ns = model.name_of(d), model.namespace_of(d)
    spec = d["spec"]
    replicas = desired_replicas(d)
    min_ready = int(spec.get("minReadySeconds", 0))
    owned = [rs for rs in replica_sets if owned_by(rs, d)]
    uids = {rs["metadata"].get("uid"): rs for rs in owned}
    by_rs: dict[str, list[PodFacts]] = defaultdict(list)
    for f in facts(pods) if facts is not None else map(PodFacts.of, pods):
        if f.owner in uids:
            by_rs[f.owner].append(f)

    def view(rs: Obj) -> _RSView:
        fs = by_rs.get(rs["metadata"].get("uid"), [])
        active = [f for f in fs if f.active]
        return _RSView(
            rs,
            active=len(active),
            ready=sum(1 for f in active if f.ready),
            available=sum(1 for f in active if f.available(min_ready, now)),
            existing=len(fs),
        )

    pod_hash = deployment_template_hash(d)
    views = [view(rs) for rs in owned]
    new = next((v for v in views if model.labels_of(v.rs).get(HASH_LABEL) == pod_hash), None)
    olds = sorted((v for v in views if v is not new), key=lambda v: (revision_of(v.rs), v.name))
    max_old_revision = max((revision_of(v.rs) for v in olds), default=0)
    actions: list[Action] = []
    created = False

    if new is None:
        surge, _ = surge_and_unavailable(d)
        if spec.get("paused"):
            initial = 0
        elif (spec.get("strategy") or {}).get("type") == "Recreate":
            initial = 0 if any(v.existing or v.spec for v in olds) else replicas
        else:
            initial = max(0, min(replicas, replicas + surge - sum(v.count for v in olds)))
        rs = new_replica_set(d, pod_hash, max_old_revision + 1, initial)
        log.info(
            "deployment=%s/%s new replicaset=%s revision=%d replicas=%d",
            ns,
            name,
            model.name_of(rs),
            max_old_revision + 1,
            initial,
        )
        actions.append(Create(rs))
        actions.append(
            Emit.about(d, "ScalingReplicaSet", f"Scaled up replica set {model.name_of(rs)} to {initial}")
        )
        new = _RSView(rs, 0, 0, 0, 0)
        created = True
        if initial == 0 and not spec.get("paused") and (spec.get("strategy") or {}).get("type") == "Recreate":
            for v in olds:
                _scale(v, 0, d, actions)
    else:
        if revision_of(new.rs) <= max_old_revision:
            log.info(
                "deployment=%s/%s reuse replicaset=%s as revision %d",
                ns,
                name,
                new.name,
                max_old_revision + 1,
            )
            meta = new.edit()["metadata"]
            meta["annotations"] = {**(meta.get("annotations") or {}), REVISION: str(max_old_revision + 1)}
        if not spec.get("paused"):
            if (spec.get("strategy") or {}).get("type") == "Recreate":
                _recreate(d, new, olds, actions)
            else:
                _rolling(d, new, olds, actions)

    for v in views:
        if v.changed is not None:
            actions.append(Update(v.changed))

    history = spec.get("revisionHistoryLimit")
    limit = DEFAULT_HISTORY if history is None else int(history)
    spent = [v for v in olds if v.spec == 0 and v.existing == 0 and v.changed is None]
    for v in spent[: max(0, len(spent) - limit)]:
        log.info("deployment=%s/%s prune replicaset=%s revision=%d", ns, name, v.name, revision_of(v.rs))
        actions.append(Delete("ReplicaSet", ns, v.name))

    revision = revision_of(new.changed if new.changed is not None else new.rs)
    if revision and (d["metadata"].get("annotations") or {}).get(REVISION) != str(revision):
        # Kubernetes' deployment controller keeps the current revision on the Deployment too;
        # `kubectl rollout undo` patches /metadata/annotations and needs it to exist.
        actions.append(
            Patch("Deployment", ns, name, {"metadata": {"annotations": {REVISION: str(revision)}}})
        )
    status, requeue = deployment_status(d, new, olds, created, now)
    current = d.get("status") or {}
    if _status_differs(current, status):
        actions.append(Patch("Deployment", ns, name, {"status": status}, status=True))
    waits = [
        since + min_ready - now
        for f in (f for fs in by_rs.values() for f in fs)
        if f.active and (since := f.ready_since) is not None and since + min_ready > now
    ]
    if requeue is not None:
        waits.append(requeue)
    if waits:
        actions.append(RequeueAfter(max(0.0, min(waits)) + 0.01))
    return actions


def _status_differs(current: Obj, status: Obj) -> bool:
    return any(current.get(k, 0 if k != "conditions" else []) != v for k, v in status.items())


def deployment_status(
    d: Obj, new: _RSView, olds: list[_RSView], created: bool, now: float
) -> tuple[dict[str, Any], float | None]:
    """The Deployment's status and, when a progress deadline is running, seconds until it expires."""
    replicas = desired_replicas(d)
    _, unavailable = surge_and_unavailable(d)
    everyone = [new, *olds]
    total = sum(v.active for v in everyone)
    available = sum(v.available for v in everyone)
    current = d.get("status") or {}
    conditions: list[Obj] = list(current.get("conditions") or [])
    generation = int(d["metadata"].get("generation", 0))
    counts = {
        "observedGeneration": generation,
        "replicas": total,
        "updatedReplicas": new.active,
        "readyReplicas": sum(v.ready for v in everyone),
        "availableReplicas": available,
        "unavailableReplicas": max(0, replicas - available),
    }
    progressed = any(current.get(k, 0) != v for k, v in counts.items())

    min_available = replicas - (
        0 if (d["spec"].get("strategy") or {}).get("type") == "Recreate" else unavailable
    )
    if available >= min_available:
        avail = _condition(
            conditions,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            now,
        )
    else:
        avail = _condition(
            conditions,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            now,
        )

    complete = new.active == replicas and total == replicas and available == replicas and new.spec == replicas
    deadline = d["spec"].get("progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE)
    requeue: float | None = None
    if d["spec"].get("paused"):
        prog = _condition(
            conditions, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", now
        )
    elif complete:
        prog = _condition(
            conditions,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{new.name}" has successfully progressed.',
            now,
        )
    elif created:
        prog = _condition(
            conditions,
            "Progressing",
            "True",
            "NewReplicaSetCreated",
            f'Created new replica set "{new.name}"',
            now,
            progressed=True,
        )
    elif not progressed and any(
        c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded" for c in conditions
    ):
        prog = next(c for c in conditions if c.get("type") == "Progressing")
    else:
        prog = _condition(
            conditions,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            f'ReplicaSet "{new.name}" is progressing.',
            now,
            progressed,
        )
        started = model.parse_time(prog["lastUpdateTime"])
        if started + deadline <= now:
            prog = _condition(
                conditions,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{new.name}" has timed out progressing.',
                now,
            )
        else:
            requeue = started + deadline - now
    others = [c for c in conditions if c.get("type") not in ("Available", "Progressing")]
    return {**counts, "conditions": [avail, prog, *others]}, requeue


def orphaned_replica_sets(namespace: str, name: str, replica_sets: Iterable[Obj]) -> list[Action]:
    """A deleted Deployment's ReplicaSets (their pods follow through the ReplicaSet controller)."""
    return [
        Delete("ReplicaSet", namespace, model.name_of(rs))
        for rs in replica_sets
        if (ref := model.controller_of(rs)) is not None
        and ref.get("kind") == "Deployment"
        and ref.get("name") == name
    ]


class DeploymentController(ControllerActor):
    """Actor: keys are 'namespace/name' of Deployments; RS and pod events map to their owner."""

    component = "deployment-controller"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._memos: dict[str, FactsMemo] = {}  # Deployment key -> its pods' facts

    def keys_for(self, event_type: str, obj: Obj) -> Iterable[str]:
        kind = obj.get("kind")
        ns = model.namespace_of(obj)
        if kind == "Deployment":
            return [f"{ns}/{model.name_of(obj)}"]
        ref = model.controller_of(obj)
        if ref is None:
            return []
        if kind == "ReplicaSet" and ref.get("kind") == "Deployment":
            return [f"{ns}/{ref.get('name', '')}"]
        if kind == "Pod" and ref.get("kind") == "ReplicaSet":
            rs = self.cluster.get("ReplicaSet", ns, ref.get("name", ""))
            owner = model.controller_of(rs) if rs is not None else None
            if owner is not None and owner.get("kind") == "Deployment":
                return [f"{ns}/{owner.get('name', '')}"]
        return []

    def reconcile(self, key: str) -> list[Action]:
        ns, name = split_key(key)
        d = self.cluster.get("Deployment", ns, name)
        replica_sets = self.cluster.list("ReplicaSet", ns)
        if d is None:
            self._memos.pop(key, None)
            return orphaned_replica_sets(ns, name, replica_sets)
        pods = [
            p
            for rs in replica_sets
            if owned_by(rs, d)
            for p in self.cluster.pods_controlled_by(ns, "ReplicaSet", model.name_of(rs))
        ]
        memo = self._memos.setdefault(key, FactsMemo())
        return reconcile_deployment(d, replica_sets, pods, self.cluster.now(), memo)
