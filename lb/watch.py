"""The control side: keeps the proxy's routing table current.

`RouteWatcher` runs Informers on Services, Endpoints and Ingresses through an ApiClient (which fails
over between masters and resumes watches) and, after any change, recomputes the table and hands it to
the proxy. Bursts coalesce without a timer: changes that arrive while a table is being computed and
applied are folded into the next computation, so a lone change is applied within one loop turn.

`StaticRoutes` does the same from a JSON file {"services": [...], "endpoints": [...],
"ingresses": [...]} (objects in the API's shape), polled for changes: a balancer without masters, for
tests and the benchmark.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from lb.routes import FixedService, RoutingTable, compute_table
from orchestrator.client import ApiClient, Informer

log = logging.getLogger(__name__)

OnTable = Callable[[RoutingTable], Awaitable[None]]


def _log_table(table: RoutingTable, previous: RoutingTable | None) -> None:
    ready = sum(len(b.endpoints) for b in table.backends.values())
    log.debug(
        "routing table listeners=%d backends=%d ready_endpoints=%d",
        len(table.listeners),
        len(table.backends),
        ready,
    )
    new_problems = set(table.problems) - set(previous.problems if previous else ())
    for p in sorted(new_problems):
        log.warning("routing problem: %s", p)


class RouteWatcher:
    """Informers on Service, Endpoints and Ingress -> a RoutingTable on every change."""

    def __init__(
        self,
        client: ApiClient,
        on_table: OnTable,
        *,
        address: str,
        http_port: int | None,
        fixed: tuple[FixedService, ...] = (),
    ) -> None:
        self.address = address
        self.http_port = http_port
        self.fixed = fixed
        self.on_table = on_table
        self.changed = asyncio.Event()
        self.informers = {
            kind: Informer(client, kind, on_change=self._on_change)
            for kind in ("Service", "Endpoints", "Ingress")
        }
        self.table: RoutingTable | None = None
        self.synced = asyncio.Event()

    def _on_change(self, event_type: str, obj: Any) -> None:
        self.changed.set()

    async def run(self) -> None:
        """Run until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for kind, inf in self.informers.items():
                tg.create_task(inf.run(), name=f"informer-{kind}")
            tg.create_task(self._apply_loop(), name="route-apply")

    async def _apply_loop(self) -> None:
        for inf in self.informers.values():
            await inf.synced.wait()
        log.info("informers synced; routing")
        while True:
            self.changed.clear()
            table = compute_table(
                self.informers["Service"].cache.values(),
                self.informers["Endpoints"].cache.values(),
                self.informers["Ingress"].cache.values(),
                address=self.address,
                http_port=self.http_port,
                fixed=self.fixed,
            )
            _log_table(table, self.table)
            self.table = table
            await self.on_table(table)
            self.synced.set()
            await self.changed.wait()


def load_static(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    data = json.loads(Path(path).read_text())
    return {k: list(data.get(k) or []) for k in ("services", "endpoints", "ingresses")}


class StaticRoutes:
    """Routes from a JSON file, re-read when its mtime or size changes (polled every `interval`)."""

    def __init__(
        self,
        path: str | Path,
        on_table: OnTable,
        *,
        address: str,
        http_port: int | None,
        interval: float = 0.1,
        fixed: tuple[FixedService, ...] = (),
    ) -> None:
        self.fixed = fixed
        self.path = Path(path)
        self.on_table = on_table
        self.address = address
        self.http_port = http_port
        self.interval = interval
        self.table: RoutingTable | None = None
        self.synced = asyncio.Event()

    async def run(self) -> None:
        seen: tuple[int, int] | None = None
        while True:
            try:
                st = os.stat(self.path)
                stamp = (st.st_mtime_ns, st.st_size)
                if stamp != seen:
                    data = load_static(self.path)
                    seen = stamp
                    table = compute_table(
                        data["services"],
                        data["endpoints"],
                        data["ingresses"],
                        address=self.address,
                        http_port=self.http_port,
                        fixed=self.fixed,
                    )
                    _log_table(table, self.table)
                    self.table = table
                    await self.on_table(table)
                    self.synced.set()
            except (OSError, ValueError) as e:
                log.warning("static routes %s unreadable: %s", self.path, e)
            await asyncio.sleep(self.interval)
