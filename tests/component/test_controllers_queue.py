"""WorkQueue: de-duplication, processing exclusivity, backoff and holds with an injected clock; a
controller holding a key whose reconcile is costly."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from orchestrator.controllers import base
from orchestrator.controllers.base import Action, ControllerActor
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


def test_adds_during_a_hold_coalesce_at_its_end() -> None:
    clock = FakeClock(0.0)
    q: WorkQueue[str] = WorkQueue(clock=clock.now)
    q.add("a")
    assert q.get_nowait() == "a"
    q.hold("a", 2.0)
    q.add("a")  # while processing: queued again at done, but not before the hold ends
    q.done("a")
    q.add("b")
    assert q.get_nowait() == "b"  # another key is not held
    q.done("b")
    clock.advance(1.0)
    q.add("a")
    assert q.get_nowait() is None
    clock.advance(1.0)
    assert q.get_nowait() == "a"  # the adds came out as one
    q.done("a")
    assert q.get_nowait() is None
    q.add("a")  # the hold has ended: at once
    assert q.get_nowait() == "a"


def test_a_hold_does_not_lose_an_add_after() -> None:
    clock = FakeClock(0.0)
    q: WorkQueue[str] = WorkQueue(clock=clock.now)
    q.hold("a", 5.0)
    q.add_after("a", 1.0)
    clock.advance(1.0)
    assert q.get_nowait() is None
    clock.advance(4.0)
    assert q.get_nowait() == "a"


class _Slow(ControllerActor):
    """A controller whose reconcile takes `cost` seconds of a fake clock and does nothing."""

    def __init__(self, clock: FakeClock, cost: float) -> None:
        super().__init__(None, None, queue=WorkQueue(clock=clock.now))  # type: ignore[arg-type]
        self.clock, self.cost, self.reconciled = clock, cost, 0

    def keys_for(self, event_type: str, obj: dict[str, Any]) -> list[str]:
        return []

    def reconcile(self, key: str) -> list[Action]:
        self.clock.advance(self.cost)
        self.reconciled += 1
        return []


async def test_a_costly_key_is_held_for_pace_times_its_reconcile(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(0.0)
    monkeypatch.setattr(base, "time", SimpleNamespace(perf_counter=clock.now))
    slow = _Slow(clock, 0.05)
    slow.queue.add("rs")
    key = slow.queue.get_nowait()
    assert key == "rs"
    await slow.sync(key)
    slow.queue.done(key)
    slow.queue.add("rs")
    clock.advance(base.PACE * 0.05 - 0.001)
    assert slow.queue.get_nowait() is None
    clock.advance(0.002)
    assert slow.queue.get_nowait() == "rs"
    cheap = _Slow(clock, base.PACE_MIN_SYNC / 2)  # a cheap reconcile leaves its key free
    cheap.queue.add("svc")
    await cheap.sync(cheap.queue.get_nowait() or "")
    cheap.queue.done("svc")
    cheap.queue.add("svc")
    assert cheap.queue.get_nowait() == "svc" and cheap.reconciled == 1


def test_ended_holds_of_keys_never_added_again_are_dropped() -> None:
    """A hold ends when its key is added again; the keys of deleted objects never are. The queue
    drops ended holds as they accumulate, and keeps the live ones."""
    from orchestrator.controllers.queue import HOLDS_BEFORE_SWEEP

    clock = FakeClock(0.0)
    q: WorkQueue[str] = WorkQueue(clock=clock.now)
    for i in range(10 * HOLDS_BEFORE_SWEEP):
        q.hold(f"gone-{i}", 1.0)
        clock.advance(0.01)  # each hold has ended 100 holds later
    assert len(q._held) <= 2 * HOLDS_BEFORE_SWEEP + 1
    q.hold("live", 100.0)
    for i in range(4 * HOLDS_BEFORE_SWEEP):
        q.hold(f"later-{i}", 0.001)
        clock.advance(0.01)
    q.add("live")  # still held: it waits for the hold's end
    assert len(q) == 0 and "live" in q._held
