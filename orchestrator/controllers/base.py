"""What every controller shares: the Cluster interface, the Action vocabulary, the actor shell, events.

A controller is a pure reconcile function (state in, actions out) under a thin actor: watch events only
enqueue keys; one task takes a key, re-reads the current state, calls the pure function and performs the
actions it returns (see STYLE.md, "A pure core under a thin async shell").
"""

from __future__ import annotations

import abc
import asyncio
import builtins
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from orchestrator import errors, model
from orchestrator.controllers.queue import WorkQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]
EventHandler = Callable[[str, Obj], None]

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
SYNC = "SYNC"  # not a store event: the manager's (re)list at start and on resync
RESYNC = "RESYNC"  # from the store, with no object: events were lost (orchestrator.store.raft.RESYNC)


class Cluster(Protocol):
    """The master's interface to its controllers. Reads are snapshots; writes are fenced by the lease.

    Errors: writes raise errors.Fenced once the lease is lost (the controller must stop acting) and
    errors.Unavailable when they should be retried later (a retried write is idempotent).
    """

    def now(self) -> float:
        """The injected clock, seconds since the epoch."""
        ...

    def list(self, kind: str, namespace: str = "") -> list[Obj]:
        """The current objects of `kind` ("" = all namespaces). Callers never mutate them."""
        ...

    def get(self, kind: str, namespace: str, name: str) -> Obj | None: ...

    def pods_on_node(self, node: str) -> builtins.list[Obj]:
        """The pods bound to `node` (an index: no scan of every pod)."""
        ...

    def pods_controlled_by(self, namespace: str, kind: str, name: str) -> builtins.list[Obj]:
        """The pods whose controller ownerReference names kind/name (any uid; an index)."""
        ...

    def heartbeats(self) -> dict[str, float]:
        """Each node's latest heartbeat, seconds since the epoch. Kept apart from the Node objects
        (as Kubernetes keeps them in Lease objects), so that heartbeats do not churn Node watches."""
        ...

    def subscribe(self, handler: EventHandler) -> Any:
        """Call handler(event_type, obj) on the event loop for every committed change of any kind.

        event_type is ADDED, MODIFIED or DELETED (with the last state). It may return a callable that
        unsubscribes; the manager calls it when it stops.
        """
        ...

    async def create(self, obj: Obj) -> Obj:
        """Create; the server sets uid, resourceVersion, creationTimestamp and completes generateName.

        Raises errors.AlreadyExists.
        """
        ...

    async def update(self, obj: Obj) -> Obj:
        """Replace, compare-and-set on metadata.resourceVersion. Raises errors.Conflict, errors.NotFound."""
        ...

    async def patch(self, kind: str, namespace: str, name: str, patch: Obj, *, status: bool = False) -> Obj:
        """A JSON merge patch (RFC 7386) of the whole object; with status=True only patch["status"] applies."""
        ...

    async def bind(self, namespace: str, name: str, node: str) -> Obj:
        """Set a pending pod's spec.nodeName (Kubernetes' pods/binding). Raises errors.NotFound, and
        errors.Invalid when the pod is already bound to another node."""
        ...

    async def delete(
        self, kind: str, namespace: str, name: str, *, force: bool = False, grace_seconds: int | None = None
    ) -> None:
        """Delete. A pod bound to a node gets metadata.deletionTimestamp and its agent removes it after
        stopping the containers; unbound pods, other kinds and force=True are removed at once.
        Raises errors.NotFound.
        """
        ...


# ---------------------------------------------------------------- actions


@dataclass(frozen=True)
class Create:
    obj: Obj


@dataclass(frozen=True)
class Update:
    """Replace `obj`, compare-and-set on the resourceVersion it carries."""

    obj: Obj


@dataclass(frozen=True)
class Patch:
    kind: str
    namespace: str
    name: str
    patch: Obj
    status: bool = False


@dataclass(frozen=True)
class Delete:
    kind: str
    namespace: str
    name: str
    grace: int | None = None
    force: bool = False


@dataclass(frozen=True)
class Emit:
    """Record a Kubernetes Event about `ref` (an ObjectReference dict, see `object_ref`)."""

    ref: Obj
    reason: str
    message: str
    type: str = "Normal"

    @classmethod
    def about(cls, obj: Obj, reason: str, message: str, type: str = "Normal") -> Emit:
        return cls(object_ref(obj), reason, message, type)


@dataclass(frozen=True)
class RequeueAfter:
    """Sync this key again after `seconds` (time-driven state such as minReadySeconds)."""

    seconds: float


Action = Create | Update | Patch | Delete | Emit | RequeueAfter


def object_ref(obj: Obj) -> Obj:
    meta = obj.get("metadata", {})
    ref = {
        "kind": obj.get("kind", ""),
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
    }
    if obj.get("apiVersion"):
        ref["apiVersion"] = obj["apiVersion"]
    return ref


def describe(action: Action) -> str:
    """A short line for logs: 'Create Pod default/web-abc-'."""
    match action:
        case Create(obj) | Update(obj):
            meta = obj["metadata"]
            return f"{type(action).__name__} {obj['kind']} {meta.get('namespace', '')}/{meta.get('name') or meta.get('generateName', '')}"
        case Patch(kind, ns, name, _, status):
            return f"Patch{'Status' if status else ''} {kind} {ns}/{name}"
        case Delete(kind, ns, name, _, force):
            return f"Delete{'(force)' if force else ''} {kind} {ns}/{name}"
        case Emit(ref, reason, _, _):
            return f"Emit {reason} {ref.get('kind')} {ref.get('name')}"
        case RequeueAfter(seconds):
            return f"RequeueAfter {seconds:.2f}s"
    return repr(action)


# ---------------------------------------------------------------- events


@dataclass
class _EventRecord:
    namespace: str
    name: str
    body: Obj
    count: int = 1
    written: int = 0  # the count the store has


class EventRecorder:
    """Records Kubernetes Events, aggregating repeats, off the controllers' critical path.

    `emit` never blocks and never fails: an event with the same involved object, type, reason and message
    as a recent one bumps that event's count and lastTimestamp instead of creating another, like
    Kubernetes' event correlator. Writes run on `workers` tasks; each event is written by one at a time.
    Errors other than Fenced are logged and the event dropped (events are best-effort).
    """

    def __init__(self, cluster: Cluster, component: str, *, workers: int = 4, cache_size: int = 4096) -> None:
        self._cluster = cluster
        self._component = component
        self._workers = workers
        self._cache_size = cache_size
        self._records: OrderedDict[tuple[str, ...], _EventRecord] = OrderedDict()
        self._queue: WorkQueue[tuple[str, ...]] = WorkQueue()
        self._seq = itertools.count()

    def emit(self, e: Emit, component: str | None = None) -> None:
        ref = e.ref
        key = (
            ref.get("kind", ""),
            ref.get("namespace", ""),
            ref.get("name", ""),
            ref.get("uid", ""),
            e.type,
            e.reason,
            e.message,
        )
        now = model.rfc3339(self._cluster.now())
        record = self._records.get(key)
        if record is not None:
            record.count += 1
            record.body["lastTimestamp"] = now
            self._records.move_to_end(key)
        else:
            namespace = ref.get("namespace") or model.DEFAULT_NAMESPACE
            stamp = int(self._cluster.now() * 1e9) + next(self._seq)
            name = f"{ref.get('name', 'unknown')}.{stamp:x}"
            body = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": dict(ref),
                "reason": e.reason,
                "message": e.message,
                "type": e.type,
                "source": {"component": component or self._component},
                "reportingComponent": component or self._component,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
            }
            self._records[key] = _EventRecord(namespace, name, body)
            while len(self._records) > self._cache_size:
                self._records.popitem(last=False)
        self._queue.add(key)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for _ in range(self._workers):
                tg.create_task(self._work())

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            try:
                await self._write(key)
            except errors.Fenced:
                raise
            except errors.SkiffError as e:
                log.debug("event dropped key=%s error=%r", key, e)
            finally:
                self._queue.done(key)

    async def _write(self, key: tuple[str, ...]) -> None:
        record = self._records.get(key)
        if record is None or record.count == record.written:
            return
        count, last = record.count, record.body["lastTimestamp"]
        if record.written:
            try:
                await self._cluster.patch(
                    "Event", record.namespace, record.name, {"count": count, "lastTimestamp": last}
                )
                record.written = count
                return
            except errors.NotFound:
                pass
        await self._cluster.create({**record.body, "count": count, "lastTimestamp": last})
        record.written = count


# ---------------------------------------------------------------- performing actions

_PARALLEL = 64  # pod deletes performed concurrently within one sync
SLOW_START_FIRST = 1  # the first batch of pod creates; each batch that fully succeeds doubles the next
SLOW_START_MAX = 256  # the largest batch of creates (one Raft entry holds up to 256 commands)


async def perform(cluster: Cluster, recorder: EventRecorder, action: Action, component: str) -> None:
    """Perform one action. A Delete of an object already gone is success."""
    match action:
        case Create(obj):
            await cluster.create(obj)
        case Update(obj):
            await cluster.update(obj)
        case Patch(kind, ns, name, body, status):
            await cluster.patch(kind, ns, name, body, status=status)
        case Delete(kind, ns, name, grace, force):
            try:
                await cluster.delete(kind, ns, name, force=force, grace_seconds=grace)
            except errors.NotFound:
                pass
        case Emit():
            recorder.emit(action, component)
        case RequeueAfter():
            pass


def _batches(actions: Sequence[Action], first: int = SLOW_START_FIRST) -> Iterable[list[Action]]:
    """Consecutive pod creates, or pod deletes, form concurrent batches; everything else runs alone.

    Creates go in Kubernetes' slow start (client-go's slowStartBatch): 1, 2, 4, ... at a time, the
    next batch only after the last one fully succeeded (perform_all stops at a failed batch), so a
    create that fails for every pod (a quota, a bad template) is tried a few times, not 500. Deletes
    go _PARALLEL at a time. `first`: the first batch's size (ControllerActor.perform_all carries it
    over from the key's last sync), at most SLOW_START_MAX."""
    batch: list[Action] = []
    size = min(first, SLOW_START_MAX)
    for a in actions:
        kind = _batch_kind(a)
        limit = size if kind == "create" else _PARALLEL
        if batch and (kind is None or kind != _batch_kind(batch[0]) or len(batch) >= limit):
            if _batch_kind(batch[0]) == "create":
                size = min(2 * size, SLOW_START_MAX)
            yield batch
            batch = []
        batch.append(a)
        if kind is None:
            yield batch
            batch = []
    if batch:
        yield batch


def _batch_kind(a: Action) -> str | None:
    if isinstance(a, Create) and a.obj.get("kind") == "Pod":
        return "create"
    if isinstance(a, Delete) and a.kind == "Pod":
        return "delete"
    return None


PACE = 4.0  # a key is held for this many times its last reconcile took (ControllerActor.paced_reconcile)
PACE_MIN_SYNC = 0.002  # syncs cheaper than this are not held


class ControllerActor(abc.ABC):
    """The shell around one pure reconcile function.

    `handle(event_type, obj)` (called by the manager on the event loop for every store event) maps the
    event to keys and enqueues them; nothing else happens on the event path. `run()` is the one task
    that takes keys, calls `sync(key)`, requeues with per-key backoff on transient errors (Conflict,
    Unavailable, AlreadyExists, unexpected exceptions, all logged) and returns Fenced to its caller,
    which stops the controllers. Subclasses implement `keys_for` and `reconcile`.
    """

    component: ClassVar[str] = "controller"

    def __init__(
        self, cluster: Cluster, recorder: EventRecorder, *, queue: WorkQueue[str] | None = None
    ) -> None:
        self.cluster = cluster
        self.recorder = recorder
        self.queue: WorkQueue[str] = queue if queue is not None else WorkQueue()
        self._slow_start: dict[str, int] = {}  # key -> the first batch of its next sync's pod creates

    def handle(self, event_type: str, obj: Obj) -> None:
        for key in self.keys_for(event_type, obj):
            self.queue.add(key)

    @abc.abstractmethod
    def keys_for(self, event_type: str, obj: Obj) -> Iterable[str]:
        """The keys an event concerns (often none)."""

    @abc.abstractmethod
    def reconcile(self, key: str) -> list[Action]:
        """Read the current state for `key` from the cluster and call the pure reconcile function."""

    def paced_reconcile(self, key: str) -> list[Action]:
        """`reconcile(key)`, then the key is held for PACE times the time that took: the changes
        meanwhile coalesce into its next sync, so one busy key takes at most 1 / (1 + PACE) of the
        event loop (a ReplicaSet of 30,000 pods, whose every sync counts them all, cannot starve
        the other keys and controllers)."""
        started = time.perf_counter()
        actions = self.reconcile(key)
        spent = time.perf_counter() - started
        if spent > PACE_MIN_SYNC:
            self.queue.hold(key, PACE * spent)
        return actions

    async def sync(self, key: str) -> None:
        """Re-read, reconcile, perform. Idempotent: running it twice on the same state writes nothing new."""
        actions = self.paced_reconcile(key)
        await self.perform_all(key, actions)

    def on_result(self, key: str, action: Action, error: BaseException | None) -> None:
        """Called after each write action; subclasses track expectations here."""
        return None

    def on_skipped(self, key: str, actions: Sequence[Action]) -> None:
        """Called with the actions a failed batch left unperformed (they will not be observed)."""
        return None

    async def perform_all(self, key: str, actions: Sequence[Action]) -> None:
        """Perform actions in order (pod creates/deletes in concurrent batches); raise the first error
        after its batch has finished, Fenced before any other.

        The slow start of pod creates goes on where the key's last sync left it: each batch waits for
        a Raft commit, and a sync of 500 starting again at 1 waits for nine of them in a row (in a
        scale-up to 30,000 pods the ReplicaSet's key was mid-sync at most of the queue logs). A failed
        batch starts the key again at 1, so a create that always fails costs one try per sync after
        at most one batch of SLOW_START_MAX."""
        for a in actions:
            if isinstance(a, RequeueAfter):
                self.queue.add_after(key, a.seconds)
            elif not isinstance(a, Emit):
                log.debug("%s key=%s %s", self.component, key, describe(a))
        performed = 0
        for batch in _batches(actions, self._slow_start.get(key, SLOW_START_FIRST)):
            performed += len(batch)
            creates = _batch_kind(batch[0]) == "create"
            results = await asyncio.gather(
                *(perform(self.cluster, self.recorder, a, self.component) for a in batch),
                return_exceptions=True,
            )
            failures: list[BaseException] = []
            for a, r in zip(batch, results, strict=True):
                error = r if isinstance(r, BaseException) else None
                if not isinstance(a, Emit | RequeueAfter):
                    self.on_result(key, a, error)
                if error is not None:
                    failures.append(error)
            if creates:
                if failures:
                    self._slow_start.pop(key, None)
                else:  # a small sync (a few pods) does not bring a key's allowance down
                    carried = self._slow_start.get(key, SLOW_START_FIRST)
                    self._slow_start[key] = max(carried, min(2 * len(batch), SLOW_START_MAX))
            if failures:
                self.on_skipped(key, actions[performed:])
                for f in failures:
                    if isinstance(f, asyncio.CancelledError | errors.Fenced):
                        raise f
                raise failures[0]

    async def run(self) -> None:
        """Process keys until cancelled or fenced (errors.Fenced propagates)."""
        log.info("%s controller started", self.component)
        while True:
            key = await self.queue.get()
            try:
                await self.sync(key)
            except errors.Fenced:
                log.info("%s controller fenced: lease lost, stopping", self.component)
                raise
            except (errors.Conflict, errors.Unavailable, errors.AlreadyExists, errors.NotFound) as e:
                log.debug("%s key=%s retry after %r", self.component, key, e)
                self.queue.add_rate_limited(key)
            except Exception:
                log.exception("%s key=%s sync failed; retrying", self.component, key)
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
            finally:
                self.queue.done(key)


def split_key(key: str) -> tuple[str, str]:
    """'ns/name' -> (ns, name)."""
    ns, _, name = key.partition("/")
    return ns, name


def ns_key(obj: Obj) -> str:
    return f"{model.namespace_of(obj)}/{model.name_of(obj)}"


def owned_by(obj: Obj, owner: Obj) -> bool:
    """obj's controller ownerReference points at owner (by uid)."""
    ref = model.controller_of(obj)
    return ref is not None and ref.get("uid") == owner.get("metadata", {}).get("uid")


@dataclass
class Expectations:
    """Writes issued but not yet seen in the snapshot, per key (client-go's ControllerExpectations).

    A controller raises them before it writes and lowers them when the watch shows the result (or the
    write definitely failed); they expire after `ttl` seconds so a lost event cannot wedge a key.
    """

    ttl: float = 30.0
    _adds: dict[str, tuple[int, float]] = field(default_factory=dict)
    _deletes: dict[str, tuple[set[str], float]] = field(default_factory=dict)

    def expect(self, key: str, now: float, *, creates: int = 0, deletes: Iterable[str] = ()) -> None:
        if creates:
            n, _ = self._adds.get(key, (0, now))
            self._adds[key] = (n + creates, now)
        names = set(deletes)
        if names:
            pending, _ = self._deletes.get(key, (set(), now))
            self._deletes[key] = (pending | names, now)

    def creation_observed(self, key: str) -> None:
        n, t = self._adds.get(key, (0, 0.0))
        if n <= 1:
            self._adds.pop(key, None)
        else:
            self._adds[key] = (n - 1, t)

    def deletion_observed(self, key: str, name: str) -> None:
        pending, t = self._deletes.get(key, (set(), 0.0))
        pending.discard(name)
        if not pending:
            self._deletes.pop(key, None)

    def pending(self, key: str, now: float) -> tuple[int, frozenset[str]]:
        """(creates not yet observed, names whose deletion is not yet observed), expired ones dropped."""
        n, t = self._adds.get(key, (0, now))
        if n and now - t > self.ttl:
            log.info("expectations expired key=%s creates=%d", key, n)
            self._adds.pop(key, None)
            n = 0
        names, t = self._deletes.get(key, (set(), now))
        if names and now - t > self.ttl:
            self._deletes.pop(key, None)
            names = set()
        return n, frozenset(names)

    def clear(self, key: str) -> None:
        self._adds.pop(key, None)
        self._deletes.pop(key, None)
