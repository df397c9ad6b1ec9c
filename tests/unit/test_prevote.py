"""PreVote (store/prevote.py), one message at a time against a fake PySyncObj."""

from __future__ import annotations

from typing import Any

from orchestrator.store.prevote import PRE_VOTE, PRE_VOTE_ACK, PreVote


class FakeRaft:
    def __init__(self, term: int = 3, log: tuple[int, int] = (3, 100), leader: bool = False) -> None:
        self.raftCurrentTerm = term
        self.leader = leader
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self._SyncObj__otherNodes = {"a", "c"}
        self._SyncObj__transport = self
        self._SyncObj__getCurrentLogTerm = lambda: log[0]
        self._SyncObj__getCurrentLogIndex = lambda: log[1]
        self._SyncObj__generateRaftTimeout = lambda: 0.5
        self._SyncObj__raftElectionDeadline = 0.0
        self._SyncObj__raftLeader: str | None = "a"

    def send(self, node: str, message: dict[str, Any]) -> None:
        self.sent.append((node, message))

    def _isLeader(self) -> bool:  # noqa: N802 - PySyncObj's name
        return self.leader


def ask(term: int, log: tuple[int, int]) -> dict[str, Any]:
    return {"type": PRE_VOTE, "term": term, "last_log_term": log[0], "last_log_index": log[1]}


def test_a_timed_out_follower_asks_first_and_elects_only_after_a_majority_granted() -> None:
    raft = FakeRaft()
    pre = PreVote(raft, lambda: False)
    assert not pre.may_elect()  # a round, not an election
    assert sorted(n for n, _ in raft.sent) == ["a", "c"]
    assert all(m == ask(4, (3, 100)) for _, m in raft.sent) and raft.raftCurrentTerm == 3
    assert raft._SyncObj__raftElectionDeadline > 0  # the timer set again
    assert raft._SyncObj__raftLeader is None  # and no leader known any more
    pre.on_message("a", {"type": PRE_VOTE_ACK, "term": 4, "granted": False})
    assert raft._SyncObj__raftElectionDeadline > 0
    pre.on_message("c", {"type": PRE_VOTE_ACK, "term": 4, "granted": True})  # itself and c: 2 of 3
    assert raft._SyncObj__raftElectionDeadline == 0.0
    assert pre.may_elect()  # now PySyncObj's election goes ahead


def test_a_grant_for_an_older_round_or_term_does_not_count() -> None:
    raft = FakeRaft()
    pre = PreVote(raft, lambda: False)
    pre.may_elect()
    pre.on_message("a", {"type": PRE_VOTE_ACK, "term": 3, "granted": True})
    raft.raftCurrentTerm = 4  # a leader of term 4 was heard meanwhile
    pre.on_message("c", {"type": PRE_VOTE_ACK, "term": 4, "granted": True})
    assert raft._SyncObj__raftElectionDeadline > 0 and not pre._won


def test_a_master_grants_only_an_up_to_date_asker_while_no_leader_holds_it() -> None:
    def answer(raft: FakeRaft, heard: bool, message: dict[str, Any]) -> bool:
        raft.sent.clear()
        PreVote(raft, lambda: heard).on_message("b", message)
        ((node, reply),) = raft.sent
        assert node == "b" and reply["type"] == PRE_VOTE_ACK and reply["term"] == message["term"]
        return bool(reply["granted"])

    follower = FakeRaft(term=3, log=(3, 100))
    assert answer(follower, False, ask(4, (3, 100)))
    assert not answer(follower, True, ask(4, (3, 100)))  # it heard from its leader just now
    assert not answer(follower, False, ask(4, (3, 99)))  # the asker's log is behind
    assert not answer(follower, False, ask(3, (3, 100)))  # no newer term to ask about
    assert answer(follower, False, ask(4, (4, 1)))  # a newer last term wins over a longer log
    assert not answer(FakeRaft(leader=True), False, ask(4, (3, 100)))  # a live leader never grants


def test_a_won_round_is_void_once_a_leader_is_heard() -> None:
    """The win sets the election for the next tick; a leader's append arriving first pushes the timer
    back. The master's next timeout (a pause of seconds) must ask again, not elect at once."""
    raft = FakeRaft()
    pre = PreVote(raft, lambda: False)
    pre.may_elect()
    pre.on_message("c", {"type": PRE_VOTE_ACK, "term": 4, "granted": True})
    assert raft._SyncObj__raftElectionDeadline == 0.0
    pre.leader_heard()
    raft.sent.clear()
    assert not pre.may_elect()
    assert [m["type"] for _, m in raft.sent] == [PRE_VOTE, PRE_VOTE]


def test_a_round_won_for_a_term_that_has_passed_elects_nothing() -> None:
    raft = FakeRaft()
    pre = PreVote(raft, lambda: False)
    pre.may_elect()
    pre.on_message("c", {"type": PRE_VOTE_ACK, "term": 4, "granted": True})
    raft.raftCurrentTerm = 4  # a term-4 leader was heard before the tick, and the timer ran out again
    assert not pre.may_elect()
