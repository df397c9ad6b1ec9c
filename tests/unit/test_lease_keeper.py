"""The controllers' lease keeper: it checks leadership at every poll but writes the lease only when it
must (a quarter of the duration since the last renewal, or a new term), so an idle leader makes a
few Raft writes a second and a new leader still takes the lease at its first check."""

from __future__ import annotations

import asyncio
import types
from typing import Any

import pytest

from orchestrator import leader


class FakeStore:
    def __init__(self) -> None:
        self.leader = True
        self.term = 1

    def is_leader(self) -> bool:
        return self.leader


class FakeWriter:
    def __init__(self) -> None:
        self.writes: list[tuple[str, int]] = []

    async def lease(self, holder: str, term: int, duration: float) -> dict[str, Any]:
        self.writes.append((holder, term))
        return {"holder": holder, "term": term}


async def test_lease_is_written_a_quarter_of_its_duration_apart_and_at_once_in_a_new_term(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(leader, "time", types.SimpleNamespace(time=lambda: clock[0]))
    started: list[int] = []

    async def work(cluster: Any) -> None:
        started.append(cluster.writer.fence[1])
        await asyncio.Event().wait()

    store = FakeStore()
    keeper = leader.LeaseKeeper(store, "m1", work, duration=3.0)  # type: ignore[arg-type]
    writer = FakeWriter()
    keeper.writer = writer  # type: ignore[assignment]
    try:
        await keeper._tick()  # the first check takes the lease
        assert writer.writes == [("m1", 1)] and keeper.holding
        await asyncio.sleep(0)  # the controllers' task starts
        for _ in range(2):  # two polls (0.25 s each) within the 0.75 s renewal interval: no write
            clock[0] += 0.25
            await keeper._tick()
        assert len(writer.writes) == 1
        clock[0] += 0.25
        await keeper._tick()
        assert len(writer.writes) == 2
        store.term = 2  # a new term: written at the next check, and the controllers restart
        clock[0] += 0.25
        await keeper._tick()
        assert writer.writes[-1] == ("m1", 2)
        await asyncio.sleep(0)
        assert started == [1, 2]
        store.leader = False  # a follower writes nothing, and stops once the lease runs out
        for _ in range(12):
            clock[0] += 0.25
            await keeper._tick()
        assert writer.writes[-1] == ("m1", 2) and len(writer.writes) == 3
        assert not keeper.holding
    finally:
        await keeper._stop("test over")
