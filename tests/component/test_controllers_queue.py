"""WorkQueue: de-duplication, processing exclusivity, backoff with an injected clock."""

from __future__ import annotations

import asyncio

from orchestrator.controllers.queue import WorkQueue
from tests.component.fake_cluster import FakeClock


def test_adds_are_deduplicated_and_fifo() -> None:
    q: WorkQueue[str] = WorkQueue()
    for k in ["a", "b", "a", "c", "b"]:
        q.add(k)
    assert len(q) == 3
    assert [q.get_nowait(), q.get_nowait(), q.get_nowait(), q.get_nowait()] == ["a", "b", "c", None]


def test_key_added_while_processing_is_processed_again_after_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert q.get_nowait() == "a"
    q.add("a")
    assert q.get_nowait() is None
    q.done("a")
    assert q.get_nowait() == "a"
    q.done("a")
    assert q.get_nowait() is None


def test_rate_limited_backoff_doubles_and_forget_resets() -> None:
    clock = FakeClock(0.0)
    q: WorkQueue[str] = WorkQueue(clock=clock.now, base_delay=1.0, max_delay=4.0)
    delays = []
    for _ in range(4):
        delays.append(q.backoff("a"))
        q.add_rate_limited("a")
        clock.advance(delays[-1] - 0.001)
        assert q.get_nowait() is None
        clock.advance(0.001)
        assert q.get_nowait() == "a"
        q.done("a")
    assert delays == [1.0, 2.0, 4.0, 4.0]
    assert q.num_requeues("a") == 4
    q.forget("a")
    assert q.backoff("a") == 1.0


def test_add_after_keeps_the_earliest() -> None:
    clock = FakeClock(0.0)
    q: WorkQueue[str] = WorkQueue(clock=clock.now)
    q.add_after("a", 5)
    q.add_after("a", 1)
    q.add_after("a", 3)
    clock.advance(1)
    assert q.get_nowait() == "a"
    q.done("a")
    clock.advance(10)
    assert q.get_nowait() is None


async def test_get_waits_for_add_and_for_delays() -> None:
    q: WorkQueue[str] = WorkQueue()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.add("x")
    assert await asyncio.wait_for(getter, 1) == "x"
    q.add_after("y", 0.02)
    assert await asyncio.wait_for(q.get(), 1) == "y"
