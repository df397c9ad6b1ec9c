"""orchestrator.gcpause: the survivors are frozen out of the collector's walk, and a long collection
is logged with its duration."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from orchestrator.gcpause import Freezer


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


async def test_survivors_are_frozen_out_of_the_walk_and_new_garbage_is_still_collected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kept = [{"n": i, "labels": {"a": str(i)}} for i in range(200_000)]
    freezer = Freezer(every=0.05, logged=0.0)
    task = asyncio.create_task(freezer.run())
    try:
        await asyncio.sleep(0.2)
        assert freezer.freezes >= 1 and gc.get_freeze_count() >= len(kept)
        # What a collection walks (the objects in generations 0-2) no longer holds the survivors.
        assert len(gc.get_objects()) < len(kept)
        with caplog.at_level(logging.WARNING, "orchestrator.gcpause"):
            gc.collect()
        assert any("garbage collection of generation 2 took" in r.getMessage() for r in caplog.records)
        # Garbage made after a freeze is still collected.
        node = Node()
        del node
        assert gc.collect() >= 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        gc.unfreeze()
    assert freezer._on_gc not in gc.callbacks
    del kept
