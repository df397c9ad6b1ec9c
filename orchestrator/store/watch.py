"""A watch over the local replica, shared by every edge that streams changes (gRPC and REST).

`changes` yields the selected objects' events after a revision, in revision order, then waits for
more; every `bookmark_interval` without a selected event it yields a bookmark, so that a quiet filtered
watch can resume from a recent revision instead of one the history has dropped. errors.TooOld when the
history no longer holds the revision asked for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from orchestrator.store.query import Filter
from orchestrator.store.raft import Store

Obj = dict[str, Any]
BOOKMARK = "BOOKMARK"


async def changes(
    store: Store, keep: Filter, revision: int, *, bookmark_interval: float = 2.0
) -> AsyncGenerator[tuple[str, Obj | None, int], None]:
    """(event type, object, revision) after `revision`; (BOOKMARK, None, revision) when quiet."""
    prefix = keep.kind + "/"
    loop = asyncio.get_running_loop()
    last_sent = loop.time()
    while True:
        changed = store.change_event()
        for ev in store.events_after(revision):
            revision = ev.revision
            if ev.key.startswith(prefix) and keep(ev.obj):
                yield ev.type, ev.obj, revision
                last_sent = loop.time()
        if loop.time() - last_sent >= bookmark_interval:
            yield BOOKMARK, None, revision
            last_sent = loop.time()
        try:
            await asyncio.wait_for(changed.wait(), bookmark_interval)
        except TimeoutError:
            pass
