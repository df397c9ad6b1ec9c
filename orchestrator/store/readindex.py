"""Raft's ReadIndex on PySyncObj: confirm a read with the leader without writing a log entry.

A read is linearizable when it is served from a replica that has applied everything committed before
the read arrived, as seen by a leader that was still the leader then. Per batch of reads:

1. The leader notes its commit index (only once it has committed an entry of its own term: the no-op
   PySyncObj appends on election), then sends a probe `{read_probe, term, seq}` to every follower.
2. A follower answers `{read_probe_ack, term, seq}` only while its own term is the probe's: it has then
   voted for no later leader, so once a majority (the leader included) has answered, no other leader
   could have committed anything the noted index misses.
3. The reads wait until this replica has applied the noted index, and are served from it.

A follower's reads go to the leader as one `{read_index, seq}` per batch; the leader adds them to its
next probe and answers `{read_index_ack, seq, index}`; the follower waits for its own replica to
apply that index. A read costs one round of small messages (no journal write, no replication of an
entry), shared by every read that arrived meanwhile. Requests lost to a leader change are resent.

The lease: a probe round the majority answered also gives the leader a lease until the probe's send
time plus 3/4 of the minimum election timeout. Within it no other leader can exist, because a
follower that heard from its leader (an append or a probe) neither starts an election nor grants a
vote before a minimum election timeout has passed (Raft's leader stickiness, which Skiff adds to
PySyncObj: `heard_leader`), and the leader itself steps down before it votes. So within the lease the
leader serves its reads at once and answers followers' requests without a round; probes renew it
while reads keep coming. A lease needs the masters' clocks to run at about the same rate (3/4 leaves
a 25% margin), as etcd's and Consul's leases do.

Threading: the loop calls `request()`; everything else runs on PySyncObj's tick thread, from its
message handler (`on_message`) and its tick callback (`on_tick`), the only thread that may use its
transport. Futures are resolved on the loop with `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pysyncobj import SyncObj
from pysyncobj.monotonic import monotonic as raft_clock

PROBE, PROBE_ACK = "skiff_read_probe", "skiff_read_probe_ack"
INDEX, INDEX_ACK = "skiff_read_index", "skiff_read_index_ack"
TYPES = frozenset((PROBE, PROBE_ACK, INDEX, INDEX_ACK))
RESEND_AFTER = 0.3  # a follower resends a request unanswered this long (the leader may have changed)
# At most one round per this interval on each master: under load the reads arriving meanwhile share it.
# Each round costs the masters ~8 Raft messages (~100 us of CPU each, end to end), so at 1,000 reads/s
# unbounded rounds cost more than the reads; idle, a read still goes at once.
MIN_ROUND = 0.004
GIVE_UP_AFTER = 1.5  # requests older than this are dropped: the loop has stopped waiting (READ_TIMEOUT)


_PRIVATE = "_SyncObj__"  # PySyncObj's private attributes, as Python mangles them
LEASE_SHARE = 0.75  # of the minimum election timeout


@dataclass
class _Probe:
    term: int
    index: int
    local: list[asyncio.Future]
    remote: list[tuple[Any, int]]  # (follower node, its request seq)
    sent: float
    acks: set[Any] = field(default_factory=set)


@dataclass
class _Request:
    futures: list[asyncio.Future]
    sent: float


class ReadIndex:
    def __init__(self, sync: SyncObj, min_election_timeout: float) -> None:
        self._sync = sync
        self._lease_length = min_election_timeout * LEASE_SHARE
        self._stickiness = min_election_timeout
        self._lease_term = -1
        self._lease_until = 0.0  # monotonic
        self.heard_leader = 0.0  # follower: monotonic time of the leader's last append or probe
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._incoming: list[asyncio.Future] = []  # loop -> tick thread
        self._seq = itertools.count(1)
        self._probes: dict[int, _Probe] = {}  # leader: probes awaiting a majority
        self._remote: list[tuple[Any, int]] = []  # leader: follower requests for the next probe
        self._requests: dict[int, _Request] = {}  # follower: requests sent to the leader
        self._applying: list[tuple[int, list[asyncio.Future]]] = []  # confirmed: (index, futures)
        self._next_round = 0.0  # monotonic time before which no new round starts
        self._timer = False  # a wake-up is scheduled on the loop
        sync.addOnTickCallback(self.on_tick)

    # ------------------------------------------------------------ loop side

    def leased(self) -> bool:
        """True when a read arriving now may be served at once: this master leads under a valid lease
        and has applied everything it has committed. Safe to call from the loop: each value it reads
        is one attribute, and a deposed leader has stepped down before any other could be elected."""
        sync = self._sync
        return (
            time.monotonic() < self._lease_until
            and sync._isLeader()
            and sync.raftCurrentTerm == self._lease_term
            and self._raft("raftLastApplied") >= self._raft("raftCommitIndex")
        )

    def refuses_vote(self) -> bool:
        """Tick thread, on a vote request: True while the leader was heard from within a minimum
        election timeout (the stickiness the lease relies on)."""
        sync = self._sync
        return (
            not sync._isLeader()
            and sync._getLeader() is not None
            and time.monotonic() - self.heard_leader < self._stickiness
        )

    def request(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future:
        """A future resolved (None) once a read arriving now may be served from this replica."""
        self._loop = loop
        fut = loop.create_future()
        with self._lock:
            self._incoming.append(fut)
            first = len(self._incoming) == 1
        if first:
            self._wake()
        return fut

    def _wake_in(self, delay: float) -> None:
        """From the tick thread: have the loop wake it in `delay` seconds (the tick may sleep 50 ms)."""
        if self._timer or self._loop is None:
            return
        self._timer = True
        try:
            self._loop.call_soon_threadsafe(self._loop.call_later, delay, self._timer_fired)
        except RuntimeError:  # the loop is closed: shutting down
            pass

    def _timer_fired(self) -> None:
        self._timer = False
        self._wake()

    def _wait_for_round(self, now: float) -> bool:
        """True (and a wake-up scheduled) while the last round is too recent to start another."""
        if now >= self._next_round:
            return False
        self._wake_in(self._next_round - now)
        return True

    def _wake(self) -> None:
        notifier = getattr(self._sync, "_SyncObj__pipeNotifier", None)
        if notifier is not None:
            notifier.notify()

    # ------------------------------------------------------------ tick thread

    def _raft(self, name: str) -> Any:
        return getattr(self._sync, _PRIVATE + name)

    def _send(self, node: Any, message: dict[str, Any]) -> None:
        self._raft("transport").send(node, message)

    def _resolve(self, futures: list[asyncio.Future]) -> None:
        if futures and self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(_set_all, futures)
            except RuntimeError:  # the loop is closed: shutting down
                pass

    def on_tick(self) -> None:
        with self._lock:
            batch, self._incoming = self._incoming, []
        now = time.monotonic()
        sync = self._sync
        if sync._isLeader():
            for req in self._requests.values():  # sent as a follower: now our own probes answer them
                batch += req.futures
            self._requests.clear()
            self._probe(batch, now)
        else:
            for probe in self._probes.values():  # deposed: ours go to the new leader, followers resend
                batch += probe.local
            self._probes.clear()
            self._remote.clear()
            self._ask_leader(batch, now)
        self._apply_ready()

    def _requeue(self, futures: list[asyncio.Future]) -> None:
        # Reads the loop stopped waiting for (timed out) are dropped here; done() is only read.
        futures = [f for f in futures if not f.done()]
        if futures:
            with self._lock:
                self._incoming[:0] = futures

    def _ask_leader(self, batch: list[asyncio.Future], now: float) -> None:
        leader = self._sync._getLeader()
        for seq, req in list(self._requests.items()):
            if now - req.sent > GIVE_UP_AFTER:
                del self._requests[seq]
            elif now - req.sent > RESEND_AFTER and leader is not None:
                req.sent = now
                self._send(leader, {"type": INDEX, "seq": seq})
        if not batch:
            return
        if leader is None or self._requests or self._wait_for_round(now):
            self._requeue(batch)  # no leader known, or one request out: these go with the next
            return
        self._next_round = now + MIN_ROUND
        seq = next(self._seq)
        self._requests[seq] = _Request(batch, now)
        self._send(leader, {"type": INDEX, "seq": seq})

    def _probe(self, local: list[asyncio.Future], now: float) -> None:
        for seq, probe in list(self._probes.items()):
            if now - probe.sent > RESEND_AFTER:  # unanswered (a lost message?): probe again
                del self._probes[seq]
                local = probe.local + local
                self._remote[:0] = probe.remote
        noop = self._raft("noopIDx")
        commit = self._raft("raftCommitIndex")
        term = self._sync.raftCurrentTerm
        leased = term == self._lease_term and now < self._lease_until
        if leased and noop is not None and commit >= noop:
            # Within the lease: serve at once, and renew it ahead of time while reads keep coming.
            remote, self._remote = self._remote, []
            self._confirm(_Probe(term, commit, local, remote, now))
            if not (local or remote) or self._probes or now < self._lease_until - self._lease_length / 2:
                return
            local, remote = [], []
        elif not local and not self._remote:
            return
        elif self._probes or noop is None or commit < noop or self._wait_for_round(now):
            # One probe out at a time (reads arriving meanwhile share the next), and none before an
            # entry of this term is committed.
            self._requeue(local)
            return
        else:
            remote, self._remote = self._remote, []
        self._next_round = now + MIN_ROUND
        seq = next(self._seq)
        probe = _Probe(term, commit, local, remote, now)
        others = self._raft("otherNodes")
        if not others:
            self._confirm(probe)
            return
        self._probes[seq] = probe
        for node in others:
            self._send(node, {"type": PROBE, "term": term, "seq": seq})

    def _confirm(self, probe: _Probe) -> None:
        for node, seq in probe.remote:
            self._send(node, {"type": INDEX_ACK, "seq": seq, "index": probe.index})
        if probe.local:
            self._applying.append((probe.index, probe.local))

    def _apply_ready(self) -> None:
        if not self._applying:
            return
        applied = self._raft("raftLastApplied")
        ready = [f for index, futures in self._applying if index <= applied for f in futures]
        self._applying = [(i, fs) for i, fs in self._applying if i > applied]
        self._resolve(ready)

    def on_message(self, node: Any, message: dict[str, Any]) -> None:
        kind = message.get("type")
        sync = self._sync
        if kind == PROBE:
            if message.get("term") == sync.raftCurrentTerm and sync._getLeader() == node:
                # The leader's probe counts as hearing from it, as an append does: no election of
                # ours, and no vote for another, for a minimum election timeout from now.
                self.heard_leader = time.monotonic()
                # PySyncObj's deadlines are on its own clock (CLOCK_MONOTONIC_RAW where there is
                # one), which runs apart from time.monotonic (0.27 s apart on the machine this was
                # written on).
                deadline = max(self._raft("raftElectionDeadline"), raft_clock() + self._stickiness)
                setattr(sync, _PRIVATE + "raftElectionDeadline", deadline)
                self._send(node, {"type": PROBE_ACK, "term": message["term"], "seq": message.get("seq")})
        elif kind == PROBE_ACK:
            probe = self._probes.get(message.get("seq", -1))
            if probe is None or message.get("term") != probe.term or not sync._isLeader():
                return
            if sync.raftCurrentTerm != probe.term:
                self._probes.clear()
                return
            probe.acks.add(node)
            if (len(probe.acks) + 1) * 2 > len(self._raft("otherNodes")) + 1:
                # A majority acked this probe; earlier probes are confirmed by it as well.
                seq = message["seq"]
                for s in sorted(s for s in self._probes if s <= seq):
                    confirmed = self._probes.pop(s)
                    self._lease_term = confirmed.term
                    self._lease_until = max(self._lease_until, confirmed.sent + self._lease_length)
                    self._confirm(confirmed)
                self._apply_ready()
        elif kind == INDEX:
            if sync._isLeader() and isinstance(message.get("seq"), int):
                if len(self._remote) < 10_000:
                    self._remote.append((node, message["seq"]))
        elif kind == INDEX_ACK:
            req = self._requests.pop(message.get("seq", -1), None)
            if req is not None and isinstance(message.get("index"), int):
                self._applying.append((message["index"], req.futures))
                self._apply_ready()


def _set_all(futures: list[asyncio.Future]) -> None:
    for fut in futures:
        if not fut.done():
            fut.set_result(None)
