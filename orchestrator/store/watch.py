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

from orchestrator import errors
from orchestrator.store.query import Filter
from orchestrator.store.raft import LEADERLESS_WATCH_BOUND, Store

Obj = dict[str, Any]
BOOKMARK = "BOOKMARK"
CATCH_UP_WAIT = 3.0  # seconds a replica may take to reach a revision asked for, as Kubernetes' cache waits


def parse_revision(text: str, field: str = "resourceVersion") -> int:
    """A revision as a client writes it: ASCII decimal digits only (" 5", "+5", "5_0", "٣" are refused)."""
    if not (text.isascii() and text.isdigit()):
        raise errors.Invalid(f"{field}: {text[:40]!r} is not a valid resource version")
    return int(text)


async def fresh(store: Store, resource_version: str) -> None:
    """Make this replica fit to serve a read asked for at `resource_version`, as Kubernetes reads:
    "" (the default) is linearizable, confirmed with the Raft leader first (Store.read_barrier;
    errors.Unavailable on a master that cannot); "0" is any state, this replica's at once (possibly
    stale); a revision N is any state at least as new as N (the replica may wait to reach it).

    "Any state" is a state the cluster had: a master that has not caught up with a leader once since
    it started (its snapshot not yet loaded, its journal not yet replayed) holds none, and answers
    errors.Unavailable after CATCH_UP_WAIT, as Kubernetes serves no read from a cache that has not
    synced (a restarted master answered an existing Deployment NotFound)."""
    if resource_version == "":
        await store.read_barrier()
    elif resource_version != "0":
        await caught_up(store, parse_revision(resource_version))
    elif not store.ready():
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CATCH_UP_WAIT
        while not store.ready():
            if loop.time() > deadline:
                raise errors.Unavailable(
                    "this master has not caught up with the cluster since it started; retry"
                )
            await asyncio.sleep(0.05)


async def caught_up(store: Store, revision: int, wait: float = CATCH_UP_WAIT) -> None:
    """Wait (at most `wait` seconds) for this replica to reach `revision`: a watch resumed on another
    master may name a revision this one has not applied yet. errors.RevisionAhead if it stays behind
    (a revision from the future, or a replica that lags: the client retries elsewhere)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while revision > store.revision:
        changed = store.change_event()
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise errors.RevisionAhead(f"Too large resource version: {revision}, current: {store.revision}")
        try:
            await asyncio.wait_for(changed.wait(), remaining)
        except TimeoutError:
            pass


async def changes(
    store: Store, keep: Filter, revision: int, *, bookmark_interval: float = 2.0
) -> AsyncGenerator[tuple[str, Obj | None, int], None]:
    """(event type, object, revision) after `revision`; (BOOKMARK, None, revision) when quiet.

    On a master that has known no Raft leader for LEADERLESS_WATCH_BOUND seconds (cut off from the
    quorum: its replica no longer follows the cluster) the watch ends with errors.Unavailable, so the
    watcher resumes on another master from the last revision it saw, instead of waiting on a replica
    that has stopped."""
    prefix = keep.kind + "/"
    loop = asyncio.get_running_loop()
    last_sent = loop.time()
    check = min(bookmark_interval, 0.25)
    while True:
        if (alone := store.leaderless_for()) > LEADERLESS_WATCH_BOUND:
            raise errors.Unavailable(
                f"this master has known no Raft leader for {alone:.1f}s; resume elsewhere"
            )
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
            await asyncio.wait_for(changed.wait(), check)
        except TimeoutError:
            pass
