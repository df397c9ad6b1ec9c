"""Leader-only work: the controllers' lease and the cluster view the controllers act through.

The Raft leader proposes a lease (holder, Raft term, expiry) every `renew` seconds (a quarter of its
duration: each renewal is a Raft write, so an idle cluster makes a few a second, not one per check).
Whether this master leads is checked every `poll` seconds, and a lease of a newer term always wins,
so after a failover the new leader takes it at once. The controllers run only while
this master holds an unexpired lease, and every write they make carries the lease as a fence: the
store rejects it once another master holds the lease, so two masters never act at the same time.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from orchestrator import errors, model
from orchestrator.store.raft import Store
from orchestrator.store.writer import Writer

log = logging.getLogger(__name__)

Obj = dict[str, Any]
RETRY_WINDOW = 5.0


class LocalCluster:
    """The controllers' view of the cluster (orchestrator.controllers.base.Cluster) on this master.

    Reads come from the local replica; nodes' heartbeats are kept apart from the Node objects, so
    that they do not churn watches (`heartbeats`). Writes are fenced
    by the lease and retried with the same request id while their outcome is unknown.
    """

    def __init__(self, store: Store, fence: tuple[str, int]) -> None:
        self.store = store
        self.writer = Writer(store, fence)

    def now(self) -> float:
        return time.time()

    def list(self, kind: str, namespace: str = "") -> list[Obj]:
        items, _ = self.store.list(kind, namespace)
        return items

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.store.get(kind, namespace if model.KINDS[kind].namespaced else "", name)

    def pods_on_node(self, node: str) -> builtins.list[Obj]:
        pods, _ = self.store.pods_on_node(node)
        return pods

    def pods_controlled_by(self, namespace: str, kind: str, name: str) -> builtins.list[Obj]:
        return self.store.pods_controlled_by(namespace, kind, name)

    def heartbeats(self) -> dict[str, float]:
        return self.store.heartbeats()

    def subscribe(self, handler: Callable[[str, Obj], None]) -> Callable[[], None]:
        return self.store.subscribe(handler)

    async def _retry(self, call: Callable[[str], Awaitable[Any]]) -> Any:
        rid = uuid.uuid4().hex
        deadline = time.monotonic() + RETRY_WINDOW
        while True:
            try:
                return await call(rid)
            except errors.Unavailable:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
            except errors.Precondition as e:
                lease = self.store.lease()
                if (lease.holder, lease.term) != self.writer.fence:
                    # The store refused the write for its fence: the controllers must stop acting.
                    raise errors.Fenced(str(e)) from None
                raise

    async def create(self, obj: Obj) -> Obj:
        return await self._retry(lambda rid: self.writer.create(obj, rid))

    async def update(self, obj: Obj) -> Obj:
        return await self._retry(lambda rid: self.writer.update(obj, rid))

    async def patch(self, kind: str, namespace: str, name: str, patch: Obj, *, status: bool = False) -> Obj:
        return await self._retry(lambda rid: self.writer.patch(kind, namespace, name, patch, status, rid))

    async def bind(self, namespace: str, name: str, node: str) -> Obj:
        return await self._retry(lambda rid: self.writer.bind(namespace, name, node, rid))

    async def delete(
        self, kind: str, namespace: str, name: str, *, force: bool = False, grace_seconds: int | None = None
    ) -> None:
        await self._retry(
            lambda rid: self.writer.delete(kind, namespace, name, rid, force=force, grace=grace_seconds)
        )


class LeaseKeeper:
    """Holds the controllers' lease while this master is the Raft leader; runs `work` while held."""

    def __init__(
        self,
        store: Store,
        name: str,
        work: Callable[[LocalCluster], Coroutine[Any, Any, None]],  # run as a task: a coroutine
        *,
        duration: float = 3.0,
        renew: float | None = None,  # default: a quarter of the duration
        poll: float = 0.25,
    ) -> None:
        self.store = store
        self.writer = Writer(store)
        self.name = name
        self.work = work
        self.duration = duration
        self.renew = duration / 4 if renew is None else renew
        self.poll = poll
        self._task: asyncio.Task | None = None
        self._held_until = 0.0
        self._renewed = float("-inf")  # when the last renewal that held was proposed
        self._term = 0

    @property
    def holding(self) -> bool:
        return self._task is not None and time.time() < self._held_until

    async def run(self) -> None:
        try:
            while True:
                await self._tick()
                await asyncio.sleep(self.poll)
        finally:
            await self._stop("shutting down")

    async def _tick(self) -> None:
        due = self._task is None or self._term != self.store.term or time.time() - self._renewed >= self.renew
        if self.store.is_leader() and due:
            term = self.store.term
            now = time.time()
            try:
                lease = await self.writer.lease(self.name, term, self.duration)
                if lease["holder"] == self.name and lease["term"] == term:
                    self._held_until = now + self.duration
                    self._renewed = now
                    if self._task is None or self._term != term:
                        await self._stop("new term")
                        self._start(term)
            except errors.Unavailable as e:
                log.info("lease renewal failed: %s", e)
        if self._task is not None and (time.time() >= self._held_until or self._task.done()):
            await self._stop("lease lost" if time.time() >= self._held_until else "controllers exited")

    def _start(self, term: int) -> None:
        self._term = term
        log.info("leader lease acquired holder=%s term=%d: starting controllers", self.name, term)
        self._task = asyncio.create_task(self.work(LocalCluster(self.store, (self.name, term))))

    async def _stop(self, reason: str) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        log.info("stopping controllers: %s", reason)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        if task.done() and not task.cancelled() and task.exception() is not None:
            failure = task.exception()
            if isinstance(failure, errors.Fenced):  # the expected end of a lost lease: one line
                log.info("controllers stopped: %s", failure)
            else:
                log.error("controllers failed", exc_info=failure)
