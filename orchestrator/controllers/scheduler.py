"""Scheduler actor: binds pending pods to nodes chosen by orchestrator.scheduling.

Pending pods (no spec.nodeName, not terminating) are queued by key. One task takes them in batches: it
builds per-node usage from the snapshot once per batch, adds the pods it bound but the snapshot does not
show yet ("assumed", as in kube-scheduler's cache), then places each pod and updates that node's usage
in place, so a burst spreads correctly without waiting for the watch. Binds (a patch of spec.nodeName)
run concurrently, at most `max_in_flight` at a time.

A pod that fits nowhere gets a Warning FailedScheduling event and a PodScheduled=False condition, and
is retried when a node changes in a way that matters, when a pod stops holding resources, and every
`retry_interval` seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from orchestrator import errors, model
from orchestrator.controllers.base import DELETED, Cluster, Emit, EventRecorder, Obj, split_key
from orchestrator.controllers.queue import WorkQueue
from orchestrator.scheduling import (
    Choice,
    NodeInfo,
    StaticCache,
    choose,
    node_is_ready,
    occupies_node,
)

log = logging.getLogger(__name__)

_RETRY = "\x00retry"  # queue sentinels; never valid pod keys
_WAKE = "\x00wake"


def is_pending(pod: Obj) -> bool:
    return not pod.get("spec", {}).get("nodeName") and not model.pod_is_terminating(pod)


def unschedulable_condition_patch(pod: Obj, message: str, now: float) -> Obj | None:
    """The status patch setting PodScheduled=False/Unschedulable, or None when it already says so."""
    conditions = pod.get("status", {}).get("conditions") or []
    old = next((c for c in conditions if c.get("type") == "PodScheduled"), None)
    if old is not None and old.get("status") == "False" and old.get("message") == message:
        return None
    stamp = model.rfc3339(now)
    condition = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
        "lastProbeTime": stamp,
        "lastTransitionTime": old.get("lastTransitionTime", stamp)
        if old and old.get("status") == "False"
        else stamp,
    }
    others = [c for c in conditions if c.get("type") != "PodScheduled"]
    return {"status": {"conditions": [*others, condition]}}


def scheduled_condition_patch(pod: Obj, now: float) -> Obj | None:
    """After binding: flip an earlier PodScheduled=False to True (None when there was none)."""
    conditions = pod.get("status", {}).get("conditions") or []
    if not any(c.get("type") == "PodScheduled" and c.get("status") != "True" for c in conditions):
        return None
    stamp = model.rfc3339(now)
    others = [c for c in conditions if c.get("type") != "PodScheduled"]
    return {
        "status": {
            "conditions": [*others, {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp}]
        }
    }


def _node_signature(node: Obj) -> tuple[Any, ...]:
    """What about a node can change a scheduling decision (heartbeats cannot)."""
    return (
        node_is_ready(node),
        bool(node.get("spec", {}).get("unschedulable")),
        json.dumps(node.get("spec", {}).get("taints") or [], sort_keys=True),
        tuple(sorted(model.labels_of(node).items())),
        tuple(sorted((node.get("status", {}).get("allocatable") or {}).items())),
    )


class SchedulerController:
    """The scheduler actor. `handle` is fed every store event; `run` is its one task (plus bind tasks)."""

    component = "default-scheduler"

    def __init__(
        self,
        cluster: Cluster,
        recorder: EventRecorder,
        *,
        max_in_flight: int = 64,
        retry_interval: float = 5.0,
        batch_size: int = 1024,
    ) -> None:
        self.cluster = cluster
        self.recorder = recorder
        self.queue: WorkQueue[str] = WorkQueue()
        self._max_in_flight = max_in_flight
        self._retry_interval = retry_interval
        self._batch_size = batch_size
        self._unschedulable: set[str] = set()
        self._assumed: dict[str, tuple[Obj, str]] = {}
        self._next_start = 0  # where the next pod's search for feasible nodes begins (scheduling.choose)
        self._node_signatures: dict[str, tuple[Any, ...]] = {}
        # Every node's usage, kept from the events one pod at a time: the pods the store shows bound
        # there and not finished, plus the ones this scheduler placed whose binding it has not seen
        # yet. `_counted` says where each pod is counted and `_on_node` what each node counts, so an
        # event adds or removes one pod and a batch reads no pod it does not place (recounting the
        # nodes that changed cost the leader 8% at 30,000 pods; reading every pod, a quarter).
        self._usage: dict[str, NodeInfo] | None = None
        self._counted: dict[str, str] = {}  # pod key -> node
        self._on_node: dict[str, dict[str, Obj]] = {}  # node -> pod key -> the pod as counted
        self._tasks: set[asyncio.Task[None]] = set()
        self._fenced: errors.Fenced | None = None
        self.bound = 0

    # ------------------------------------------------------------ events

    def handle(self, event_type: str, obj: Obj) -> None:
        kind = obj.get("kind")
        if kind == "Pod":
            key = f"{model.namespace_of(obj)}/{model.name_of(obj)}"
            if event_type == DELETED:
                self._assumed.pop(key, None)
                self._unschedulable.discard(key)
                if obj.get("spec", {}).get("nodeName"):
                    self._retry_unschedulable()
            elif obj.get("spec", {}).get("nodeName"):
                self._assumed.pop(key, None)
                if obj.get("status", {}).get("phase") in ("Succeeded", "Failed") or model.pod_is_terminating(
                    obj
                ):
                    self._retry_unschedulable()
            elif is_pending(obj) and key not in self._unschedulable:
                self.queue.add(key)
            if self._usage is not None:
                self._count(key, None if event_type == DELETED else obj)
        elif kind == "Node":
            name = model.name_of(obj)
            if event_type == DELETED:
                self._node_signatures.pop(name, None)
                if self._usage is not None:
                    self._usage.pop(name, None)
                return
            if self._usage is not None:
                self._usage[name] = info = NodeInfo.of(obj)
                for pod in self._on_node.get(name, {}).values():
                    info.add(pod)
            signature = _node_signature(obj)
            if self._node_signatures.get(name) != signature:
                self._node_signatures[name] = signature
                self._retry_unschedulable()

    def forget_usage(self) -> None:
        """Count every node again at the next batch: the events the cache follows were lost."""
        self._usage = None

    def _count(self, key: str, pod: Obj | None) -> None:
        """Follow one pod in the usage: `pod` as the store now holds it (None: gone). A pod placed
        by this scheduler stays counted where it was placed until the store shows it bound."""
        usage = self._usage
        assert usage is not None
        node = pod["spec"]["nodeName"] if pod is not None and occupies_node(pod) else None
        was_on = self._counted.get(key)
        if was_on is not None:
            if was_on == node or (node is None and pod is not None and key in self._assumed):
                return
            del self._counted[key]
            was = self._on_node[was_on].pop(key)
            if (info := usage.get(was_on)) is not None:
                info.remove(was)
        if node is not None and pod is not None:
            self._add_to(node, key, pod)

    def _add_to(self, node: str, key: str, pod: Obj) -> None:
        assert self._usage is not None
        self._counted[key] = node
        self._on_node.setdefault(node, {})[key] = pod
        if (info := self._usage.get(node)) is not None:
            info.add(pod)

    def _retry_unschedulable(self) -> None:
        for key in self._unschedulable:
            self.queue.add(key)
        self._unschedulable.clear()

    # ------------------------------------------------------------ the loop

    async def run(self) -> None:
        """Schedule until cancelled or fenced (errors.Fenced propagates); bind tasks end with it."""
        log.info("scheduler started max_in_flight=%d", self._max_in_flight)
        slots = asyncio.Semaphore(self._max_in_flight)
        self.queue.add_after(_RETRY, self._retry_interval)
        try:
            while True:
                keys = [await self.queue.get()]
                while len(keys) < self._batch_size and (key := self.queue.get_nowait()) is not None:
                    keys.append(key)
                try:
                    if self._fenced is not None:
                        raise self._fenced
                    await self._schedule_batch([k for k in keys if not k.startswith("\x00")], slots)
                    if _RETRY in keys:
                        self._retry_unschedulable()
                        self.queue.add_after(_RETRY, self._retry_interval)
                finally:
                    for key in keys:
                        self.queue.done(key)
        except errors.Fenced:
            log.info("scheduler fenced: lease lost, stopping")
            raise
        finally:
            for task in self._tasks:
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    def _current_usage(self) -> dict[str, NodeInfo]:
        """The usage cache, counted from the store when there is none yet (or it was forgotten).

        The events it follows arrive a little after the store changed. A pod deleted meanwhile is
        still counted (the safe side) until its event comes."""
        if self._usage is not None:
            return self._usage
        self._usage = {model.name_of(n): NodeInfo.of(n) for n in self.cluster.list("Node")}
        self._counted, self._on_node = {}, {}
        for pod in self.cluster.list("Pod"):
            self._count(f"{model.namespace_of(pod)}/{model.name_of(pod)}", pod)
        for key, (pod, placed_on) in list(self._assumed.items()):
            current = self.cluster.get("Pod", *split_key(key))
            if current is None or current.get("spec", {}).get("nodeName"):
                self._assumed.pop(key, None)
            else:
                self._add_to(placed_on, key, pod)
        return self._usage

    def _unassume(self, key: str) -> None:
        """A placement whose bind did not happen: the pod counts as the store holds it again."""
        if self._assumed.pop(key, None) is not None and self._usage is not None:
            self._count(key, self.cluster.get("Pod", *split_key(key)))

    async def _schedule_batch(self, keys: list[str], slots: asyncio.Semaphore) -> None:
        if not keys:
            return
        started = time.perf_counter()
        infos = self._current_usage()
        cache: StaticCache = {}
        placed = failed = 0
        for key in keys:
            if key in self._assumed:
                continue
            pod = self.cluster.get("Pod", *split_key(key))
            if pod is None or not is_pending(pod):
                continue
            choice = choose(pod, infos, cache, self._next_start)
            self._next_start += choice.examined
            await slots.acquire()
            if self._fenced is not None:
                slots.release()
                raise self._fenced
            if choice.node_name is not None:
                self._assumed[key] = (pod, choice.node_name)
                self._add_to(choice.node_name, key, pod)
                self._spawn(self._bind(key, pod, choice.node_name), slots)
                placed += 1
            else:
                self._unschedulable.add(key)
                self._spawn(self._mark_unschedulable(pod, choice), slots)
                failed += 1
        log.info(
            "scheduler batch pods=%d placed=%d unschedulable=%d nodes=%d ms=%.1f",
            len(keys),
            placed,
            failed,
            len(infos),
            (time.perf_counter() - started) * 1000,
        )

    def _spawn(self, coro: Any, slots: asyncio.Semaphore) -> None:
        async def guarded() -> None:
            try:
                await coro
            except errors.Fenced as e:
                self._fenced = e
                self.queue.add(_WAKE)
            finally:
                slots.release()

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _bind(self, key: str, pod: Obj, node: str) -> None:
        ns, name = split_key(key)
        try:
            await self.cluster.bind(ns, name, node)
        except errors.Fenced:
            raise
        except (errors.Conflict, errors.NotFound, errors.Invalid, errors.Precondition) as e:
            log.info("scheduler bind dropped pod=%s node=%s error=%r", key, node, e)
            self._unassume(key)
            return
        except errors.SkiffError as e:
            log.info("scheduler bind failed pod=%s node=%s error=%r; retrying", key, node, e)
            self._unassume(key)
            self.queue.add_rate_limited(key)
            return
        self.bound += 1
        log.debug("scheduler bound pod=%s node=%s", key, node)
        self.queue.forget(key)
        self.recorder.emit(
            Emit.about(pod, "Scheduled", f"Successfully assigned {ns}/{name} to {node}"), self.component
        )
        patch = scheduled_condition_patch(pod, self.cluster.now())
        if patch is not None:
            try:
                await self.cluster.patch("Pod", ns, name, patch, status=True)
            except (errors.Conflict, errors.NotFound, errors.Unavailable):
                pass

    async def _mark_unschedulable(self, pod: Obj, choice: Choice) -> None:
        ns, name = model.namespace_of(pod), model.name_of(pod)
        message = choice.message()
        log.info("scheduler unschedulable pod=%s/%s reason=%r", ns, name, message)
        self.recorder.emit(Emit.about(pod, "FailedScheduling", message, "Warning"), self.component)
        patch = unschedulable_condition_patch(pod, message, self.cluster.now())
        if patch is None:
            return
        try:
            await self.cluster.patch("Pod", ns, name, patch, status=True)
        except (errors.Conflict, errors.NotFound, errors.Unavailable) as e:
            log.debug("scheduler condition patch skipped pod=%s/%s error=%r", ns, name, e)
