"""ReadIndex's rules, driven message by message on a stand-in for PySyncObj's state (no threads)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from orchestrator.store import readindex
from orchestrator.store.readindex import INDEX, INDEX_ACK, PROBE, PROBE_ACK, ReadIndex


class FakeRaft:
    """The few attributes of a SyncObj that ReadIndex reads, and a transport that records sends."""

    def __init__(self, others: tuple[str, ...] = ("b", "c"), leader: str | None = "a", me: str = "a") -> None:
        self.me, self.leader, self.term = me, leader, 3
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self._SyncObj__transport = self
        self._SyncObj__otherNodes = set(others)
        self._SyncObj__noopIDx = 10
        self._SyncObj__raftCommitIndex = 12
        self._SyncObj__raftLastApplied = 12
        self._SyncObj__raftElectionDeadline = 0.0

    def send(self, node: str, message: dict[str, Any]) -> bool:
        self.sent.append((node, message))
        return True

    def addOnTickCallback(self, cb: Any) -> None:
        pass

    def _isLeader(self) -> bool:
        return self.leader == self.me

    def _getLeader(self) -> str | None:
        return self.leader

    @property
    def raftCurrentTerm(self) -> int:
        return self.term

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        sent, self.sent = self.sent, []
        return sent


@pytest.fixture
def loop() -> Any:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def settle(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_until_complete(asyncio.sleep(0.01))


def test_the_leader_confirms_a_read_with_a_majority_then_holds_a_lease(loop: Any) -> None:
    raft = FakeRaft()
    reads = ReadIndex(raft, 0.4)
    fut = reads.request(loop)
    reads.on_tick()
    probes = raft.take()
    assert sorted(n for n, m in probes) == ["b", "c"] and all(m["type"] == PROBE for _, m in probes)
    settle(loop)
    assert not fut.done()  # no majority yet
    seq = probes[0][1]["seq"]
    reads.on_message("b", {"type": PROBE_ACK, "term": 3, "seq": seq})  # leader + b: 2 of 3
    settle(loop)
    assert fut.done()
    assert reads.leased()
    # Within the lease, a read is served without a round, and a follower's request is answered at once.
    reads.on_message("b", {"type": INDEX, "seq": 7})
    reads.on_tick()
    assert raft.take() == [("b", {"type": INDEX_ACK, "seq": 7, "index": 12})]


def test_an_ack_of_another_term_does_not_confirm(loop: Any) -> None:
    raft = FakeRaft()
    reads = ReadIndex(raft, 0.4)
    fut = reads.request(loop)
    reads.on_tick()
    seq = raft.take()[0][1]["seq"]
    reads.on_message("b", {"type": PROBE_ACK, "term": 2, "seq": seq})
    settle(loop)
    assert not fut.done() and not reads.leased()


def test_the_lease_ends_with_the_term_and_with_unapplied_entries(loop: Any) -> None:
    raft = FakeRaft()
    reads = ReadIndex(raft, 0.4)
    reads.request(loop)
    reads.on_tick()
    reads.on_message("c", {"type": PROBE_ACK, "term": 3, "seq": raft.take()[0][1]["seq"]})
    assert reads.leased()
    raft._SyncObj__raftCommitIndex = 13  # committed, not yet applied: wait for the apply
    assert not reads.leased()
    raft._SyncObj__raftLastApplied = 13
    assert reads.leased()
    raft.term = 4
    assert not reads.leased()


def test_no_confirmation_before_an_entry_of_the_term_is_committed(loop: Any) -> None:
    raft = FakeRaft()
    raft._SyncObj__noopIDx = 13  # the new leader's no-op is not committed yet
    reads = ReadIndex(raft, 0.4)
    fut = reads.request(loop)
    reads.on_tick()
    assert raft.take() == []
    settle(loop)
    assert not fut.done()


def test_a_followers_read_waits_for_its_own_replica_to_apply_the_leaders_index(loop: Any) -> None:
    raft = FakeRaft(others=("a", "c"), leader="a", me="b")
    reads = ReadIndex(raft, 0.4)
    fut = reads.request(loop)
    reads.on_tick()
    [(to, req)] = raft.take()
    assert to == "a" and req["type"] == INDEX
    reads.on_message("a", {"type": INDEX_ACK, "seq": req["seq"], "index": 15})
    settle(loop)
    assert not fut.done()  # applied 12 < 15
    raft._SyncObj__raftLastApplied = 15
    reads.on_tick()
    settle(loop)
    assert fut.done()


def test_a_follower_acks_only_its_own_terms_probes_and_then_refuses_votes(monkeypatch: Any) -> None:
    raft = FakeRaft(others=("a", "c"), leader="a", me="b")
    reads = ReadIndex(raft, 0.4)
    assert not reads.refuses_vote()
    reads.on_message("a", {"type": PROBE, "term": 2, "seq": 1})
    reads.on_message("c", {"type": PROBE, "term": 3, "seq": 1})  # not the leader it follows
    assert raft.take() == []
    assert not reads.refuses_vote()
    reads.on_message("a", {"type": PROBE, "term": 3, "seq": 2})
    assert raft.take() == [("a", {"type": PROBE_ACK, "term": 3, "seq": 2})]
    assert reads.refuses_vote()  # heard from the leader just now
    # and no election of its own for a while, on PySyncObj's clock (not time.monotonic's)
    assert raft._SyncObj__raftElectionDeadline >= readindex.raft_clock() + 0.39
    now = readindex.time.monotonic()
    monkeypatch.setattr(readindex.time, "monotonic", lambda: now + 0.5)
    assert not reads.refuses_vote()


def test_reads_arriving_while_a_probe_is_out_share_the_next(loop: Any) -> None:
    raft = FakeRaft()
    reads = ReadIndex(raft, 0.4)
    reads.request(loop)
    reads.on_tick()
    assert len(raft.take()) == 2
    for _ in range(5):
        reads.request(loop)
    reads.on_tick()
    assert raft.take() == []  # one probe out at a time
