"""ControllerManager: every controller, fed the cluster's events, run in one TaskGroup.

The master runs `ControllerManager(cluster, options).run()` only while it holds the leader lease and
cancels it when it loses the lease. `run` subscribes to the cluster's events, then lists every kind the
controllers care about and hands each object to them (event type SYNC), so a new leader starts from the
store's state alone; it relists every `resync_interval` seconds as a safety net, and at once when the
store says events were lost (RESYNC: this loop fell behind the store's history). It ends by raising
errors.Fenced when a write found the lease gone, or CancelledError when cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator import errors
from orchestrator.controllers.base import RESYNC, SYNC, Cluster, EventRecorder, Obj
from orchestrator.controllers.deployment import DeploymentController
from orchestrator.controllers.endpoints import EndpointsController
from orchestrator.controllers.nodelifecycle import NodeLifecycleController
from orchestrator.controllers.replicaset import ReplicaSetController
from orchestrator.controllers.scheduler import SchedulerController

log = logging.getLogger(__name__)

WATCHED_KINDS = ("Node", "Pod", "ReplicaSet", "Deployment", "Service", "Endpoints")


@dataclass(frozen=True)
class ControllerOptions:
    """Knobs, with Skiff's fast defaults (seconds, not Kubernetes' minutes)."""

    node_grace: float = 3.0  # silence before a node is NotReady (Ready=Unknown)
    node_toleration: float = 2.0  # further silence before its pods are evicted
    node_tick: float = 0.25
    scheduler_max_in_flight: int = 64
    scheduler_retry_interval: float = 5.0  # unschedulable pods are retried at least this often
    expectations_ttl: float = 30.0
    resync_interval: float = 30.0
    event_workers: int = 4


class Actor(Protocol):
    def handle(self, event_type: str, obj: Obj) -> None: ...

    async def run(self) -> None: ...


class ControllerManager:
    """Builds the controllers; `run()` runs them until cancelled or fenced. One use per instance."""

    def __init__(self, cluster: Cluster, options: ControllerOptions | None = None) -> None:
        self.cluster = cluster
        self.options = options = options or ControllerOptions()
        self.recorder = EventRecorder(cluster, "controller-manager", workers=options.event_workers)
        self.replicasets = ReplicaSetController(
            cluster, self.recorder, expectations_ttl=options.expectations_ttl
        )
        self.deployments = DeploymentController(cluster, self.recorder)
        self.scheduler = SchedulerController(
            cluster,
            self.recorder,
            max_in_flight=options.scheduler_max_in_flight,
            retry_interval=options.scheduler_retry_interval,
        )
        self.nodes = NodeLifecycleController(
            cluster,
            self.recorder,
            grace=options.node_grace,
            toleration=options.node_toleration,
            tick=options.node_tick,
        )
        self.endpoints = EndpointsController(cluster, self.recorder)
        self.controllers: list[Actor] = [
            self.deployments,
            self.replicasets,
            self.scheduler,
            self.nodes,
            self.endpoints,
        ]
        self._active = False

    def handle(self, event_type: str, obj: Obj) -> None:
        """Fan one store event out to every controller (only enqueues; never raises into the store)."""
        if not self._active:
            return
        if event_type == RESYNC:  # events were lost: what was built from them is rebuilt
            log.warning("controller manager missed events; relisting")
            self.scheduler.forget_usage()
            self.resync()
            return
        for c in self.controllers:
            try:
                c.handle(event_type, obj)
            except Exception:
                log.exception("%s failed to handle %s %s", type(c).__name__, event_type, obj.get("kind"))

    def resync(self) -> None:
        """Hand every current object to the controllers, as if each had just changed."""
        for kind in WATCHED_KINDS:
            for obj in self.cluster.list(kind):
                self.handle(SYNC, obj)

    async def run(self) -> None:
        log.info("controller manager starting")
        self._active = True
        unsubscribe: Callable[[], Any] | None = self.cluster.subscribe(self.handle)
        try:
            self.resync()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.recorder.run(), name="events")
                for c in self.controllers:
                    tg.create_task(c.run(), name=type(c).__name__)
                tg.create_task(self._resync_loop(), name="resync")
        except BaseExceptionGroup as eg:
            fenced = eg.subgroup(errors.Fenced)
            if fenced is not None:
                log.info("controller manager stopping: lease lost")
                raise _first_leaf(fenced) from None
            raise
        finally:
            self._active = False
            if callable(unsubscribe):
                unsubscribe()
            log.info("controller manager stopped")

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.resync_interval)
            for c in self.controllers:
                queue = getattr(c, "queue", None)
                if queue is not None:
                    log.info("%s queue: %s", getattr(c, "component", type(c).__name__), queue.describe())
            self.resync()


def _first_leaf(eg: BaseExceptionGroup[Any]) -> BaseException:
    first = eg.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first
