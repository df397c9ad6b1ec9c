"""Raft's PreVote (Ongaro's thesis, section 9.6) for PySyncObj.

PySyncObj's follower, once its election timer runs out, raises its term and asks for votes. A master
whose ticks came late (a restart replaying its journal, a GIL-starved thread) then deposed a healthy
leader: the leader steps down on any vote request of a higher term, even one it would refuse. In one
scale run a restarted master went through terms 14 to 37 this way while the other two were fine.

With PreVote the timer runs out into a pre-vote round instead: the master asks the others whether they
would vote for it at the next term, and changes nothing. A master grants a pre-vote only when the
asker's log is at least as up to date as its own and it has itself not heard from a leader within a
minimum election timeout (and is not the leader). Only a majority of grants lets PySyncObj's election
start, so a master that cannot win, or that a live leader still holds, never raises the term.

All of it runs on PySyncObj's tick thread: `may_elect` from the tick, `on_message` from its handler.
"""

from __future__ import annotations

from typing import Any

from pysyncobj import SyncObj
from pysyncobj.monotonic import monotonic as raft_clock

PRE_VOTE = "skiff_pre_vote"
PRE_VOTE_ACK = "skiff_pre_vote_ack"
TYPES = frozenset({PRE_VOTE, PRE_VOTE_ACK})
_PRIVATE = "_SyncObj__"


class PreVote:
    def __init__(self, sync: SyncObj, heard_leader_recently: Any) -> None:
        self._sync = sync
        self._heard_leader_recently = heard_leader_recently  # () -> bool: leader stickiness
        self._round = 0  # the term the current round asks about (0: none)
        self._grants: set[Any] = set()
        self._won = False

    def _raft(self, name: str) -> Any:
        return getattr(self._sync, _PRIVATE + name)

    def _log_position(self) -> tuple[int, int]:
        """(last log term, last log index) of this master."""
        return self._raft("getCurrentLogTerm")(), self._raft("getCurrentLogIndex")()

    def may_elect(self) -> bool:
        """The election timer ran out: True lets PySyncObj's election go ahead (a round was won, or
        there is no one to ask); otherwise a round starts and the timer is set again."""
        if self._won:
            self._won = False
            if self._round == self._sync.raftCurrentTerm + 1:
                self._round = 0
                return True
        others = self._raft("otherNodes")
        if not others:
            return True
        sync = self._sync
        # Its timer ran out: this master no longer knows a leader (PySyncObj forgets it only when it
        # becomes a candidate, which a refused round never does), so it says so in its status, and
        # a master cut off from the others ends its watches and streams as before.
        setattr(sync, _PRIVATE + "raftLeader", None)
        self._round = sync.raftCurrentTerm + 1
        self._grants = set()
        last_term, last_index = self._log_position()
        ask = {
            "type": PRE_VOTE,
            "term": self._round,
            "last_log_term": last_term,
            "last_log_index": last_index,
        }
        for node in others:
            self._raft("transport").send(node, ask)
        setattr(sync, _PRIVATE + "raftElectionDeadline", raft_clock() + self._raft("generateRaftTimeout")())
        return False

    def on_message(self, node: Any, message: dict[str, Any]) -> None:
        sync = self._sync
        if message.get("type") == PRE_VOTE:
            term = message.get("term", 0)
            theirs = (message.get("last_log_term", 0), message.get("last_log_index", 0))
            granted = (
                isinstance(term, int)
                and term > sync.raftCurrentTerm
                and theirs >= self._log_position()
                and not sync._isLeader()
                and not self._heard_leader_recently()
            )
            self._raft("transport").send(node, {"type": PRE_VOTE_ACK, "term": term, "granted": granted})
        elif message.get("type") == PRE_VOTE_ACK:
            if not message.get("granted") or message.get("term") != self._round or sync._isLeader():
                return
            if self._round != sync.raftCurrentTerm + 1:  # the term moved on since the round began
                return
            self._grants.add(node)
            if len(self._grants) + 1 > (len(self._raft("otherNodes")) + 1) / 2:
                self._won = True
                setattr(sync, _PRIVATE + "raftElectionDeadline", 0.0)  # elect at the next tick

    def leader_heard(self) -> None:
        """An append from a leader of this master's term or later: a round won before it is void.

        Won, the round set the election for the next tick; an append arriving first pushed the timer
        back but left the win standing, and the master's next timeout, seconds later (a paused
        process), started an election straight away, without asking again whether anyone would
        vote for it while that leader lived."""
        self._won = False
        self._round = 0
