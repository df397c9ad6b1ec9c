"""The replicated store: `State` kept consistent across masters by PySyncObj (Raft).

Threading: PySyncObj applies commands on its own tick thread. The state is read from the event loop
only under `_lock`, and the tick thread tells the loop about new revisions through
`call_soon_threadsafe`. Writes never block the loop: `propose` hands the command to PySyncObj with a
callback and awaits a future, bounded by a timeout.

Construct `Store` on the main thread (PySyncObj starts its thread there), then `attach(loop)` from
inside the running loop.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import gc
import itertools
import logging
import os
import struct
import threading
import time
import weakref
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, SyncObjConsumer, replicated
from pysyncobj import pickle as _pysyncobj_pickle
from pysyncobj import syncobj as _syncobj_module
from pysyncobj import tcp_connection as _tcp_connection
from pysyncobj import transport as _transport
from pysyncobj import utility as _utility_module
from pysyncobj.monotonic import monotonic as raft_clock
from pysyncobj.syncobj import _RAFT_STATE

from orchestrator import errors
from orchestrator.model import key_of
from orchestrator.store import commands, prevote, readindex
from orchestrator.store import state as st
from orchestrator.store.seal import Seal
from orchestrator.store.snapshot import Snapshots

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Handler = Callable[[str, Obj], None]
# Not a change: the event a subscriber gets, with an empty object, after the events it missed fell out
# of the history (its loop fell that far behind). What it keeps from the events must be rebuilt.
RESYNC = "RESYNC"


@dataclass(frozen=True)
class RaftTiming:
    """PySyncObj's timing knobs.

    With `batch` False a proposal wakes the tick thread through a pipe and the leader sends each entry,
    and each new commit index, at once, so neither period below adds to a write's latency: the append
    period is only the idle heartbeat, and the tick only how long the thread sleeps with nothing to do.
    (A 2 ms tick and heartbeat cost each idle master 10% of a core and bought nothing; a 100 ms
    heartbeat instead of 50 ms took the idle cluster with 1,000 nodes from 0.116 to 0.096 cores,
    2026-12-03, with four heartbeats still inside the minimum election timeout; etcd's 100 ms and 1 s
    keep ten. The tick stays at 50 ms: a follower checks its election deadline once a tick, and with a
    100 ms tick both survivors of a killed leader started their elections in the same millisecond,
    split the vote, and the failover took 3 s.) With `batch` True, PySyncObj's own batching, a write
    waits for the next append period.
    """

    append_entries_period: float = 0.1
    auto_tick_period: float = 0.05
    min_timeout: float = 0.4
    max_timeout: float = 0.8
    connection_timeout: float = 1.5
    connection_retry: float = 0.3
    compaction_min_entries: int = 20_000
    compaction_min_time: float = 300.0
    batch: bool = False


_source_host: str | None = None


class _SourceBoundConnection(_tcp_connection.TcpConnection):
    """PySyncObj's connection, with outgoing Raft connections bound to this master's own address.

    Without it the kernel picks 127.0.0.1 (or the route's source) for every master, so a link between
    two masters cannot be told apart from others, by a firewall rule or a packet capture.
    """

    def setSockoptKeepalive(self) -> None:
        super().setSockoptKeepalive()
        sock = self._TcpConnection__socket
        if _source_host and sock is not None and sock.getsockname()[1] == 0:
            sock.bind((_source_host, 0))


_transport.TcpConnection = _SourceBoundConnection


class _StoredZlib:
    """PySyncObj's wire codec without compression: zlib streams of stored (uncompressed) blocks.

    PySyncObj zlib-compresses every message at level 3. Each `zlib.compress` call sets up a fresh
    deflate state, which costs ~55 us even for a few hundred bytes, and a write makes several Raft
    messages; loopback bandwidth is not what limits us. Stored blocks are a valid zlib stream, so peers
    decompress them unchanged (a mixed-version cluster keeps working), at ~2 us a message.
    """

    @staticmethod
    def compress(data: bytes, level: int = -1) -> bytes:
        out = [b"\x78\x01"]  # zlib header: deflate, 32 KiB window, no dictionary
        view = memoryview(data)
        n = len(data)
        pos = 0
        while True:
            block = view[pos : pos + 0xFFFF]
            size = len(block)
            pos += size
            final = pos >= n
            out.append(struct.pack("<BHH", 1 if final else 0, size, size ^ 0xFFFF))
            out.append(block)
            if final:
                break
        out.append(struct.pack(">I", zlib.adler32(data)))
        return b"".join(out)

    decompress = staticmethod(zlib.decompress)


_tcp_connection.zlib = _StoredZlib


_on_message_received = SyncObj._SyncObj__onMessageReceived


def _on_raft_message(self: SyncObj, node: Any, message: dict[str, Any]) -> None:
    """PySyncObj's message handler, with Skiff's changes.

    Reads (store/readindex.py): its messages go to the ReadIndex; a follower that heard from its leader
    within a minimum election timeout ignores vote requests (leader stickiness, which the leader's
    read lease relies on; it also keeps a node that was cut off from deposing a healthy leader by
    its vote requests alone, as Raft's thesis, section 4.2.3, describes).

    Then two changes to how PySyncObj's leader handles a follower's answer ("next_node_idx").

    A late ack: on a follower's ack of entry i, PySyncObj set that follower's next index to i+1 even
    when it had already sent entries past i. With entries sent one by one (no batching), every ack then
    made it send all the unacknowledged entries again, and the follower truncate and re-add entries it
    had already applied ("truncating already-applied log entries"): twice the Raft traffic and journal
    rewrites under load. An ack only moves the next index forward here.

    A rejection (reset=True: the follower misses entries, or holds entries of an older term): the
    leader retries at once instead of at its next heartbeat. A follower that comes back with a long
    stale tail (say, a deposed leader's uncommitted entries) is walked back one entry per answer, so
    at a 50 ms heartbeat thousands of entries took minutes; now each step is one round trip.

    A repeated rejection: a follower busy for seconds (a restarted master replaying its journal) finds,
    when it reads again, every append the leader sent meanwhile, and rejects each with the same "send
    from my end". PySyncObj went back to that index on each of them and resent the whole range once
    per rejection, and the follower truncated and re-added what it had just received (the scale bench's
    "truncating already-applied log entries", 18 times in three seconds after a restart). A rejection
    naming the index the leader already went back to, within RESEND_HOLD of doing so, is a stale
    answer to an append sent before the resend: the leader keeps its place.
    """
    kind = message.get("type") if isinstance(message, dict) else None
    reads = _read_indexes.get(self)
    if kind in readindex.TYPES:
        if reads is not None:
            reads.on_message(node, message)
        return
    if kind in prevote.TYPES:
        if (pre := _pre_votes.get(self)) is not None:
            pre.on_message(node, message)
        return
    if kind == TERM_NOTICE:
        _on_term_notice(self, node, message)
        return
    if kind == "append_entries":
        term = message.get("term", -1)
        if isinstance(term, int) and term < self.raftCurrentTerm:
            # From a leader of an older term, which PySyncObj ignores without a word: say which term
            # this master is at, so that leader steps down (see _on_term_notice).
            self._SyncObj__transport.send(node, {"type": TERM_NOTICE, "term": self.raftCurrentTerm})
            return
        if (pre := _pre_votes.get(self)) is not None:
            pre.leader_heard()
        if reads is not None:
            reads.heard_leader = time.monotonic()
    if kind == "request_vote" and reads is not None and reads.refuses_vote():
        return  # leader stickiness: see store/readindex.py
    if kind == "append_entries" and message.get("transmission") == "finish":
        message = _finish_only_when_complete(self, message)
    if kind != "next_node_idx":
        _on_message_received(self, node, message)
        return
    next_index = self._SyncObj__raftNextIndex
    sent = next_index.get(node)
    _on_message_received(self, node, message)
    now = next_index.get(node)
    if sent is None or now is None:
        return
    if message.get("reset"):
        resent = _resent.setdefault(self, {})
        went_back = resent.get(node)
        if went_back is not None and went_back[0] == now and time.monotonic() - went_back[1] < RESEND_HOLD:
            if sent > now:
                next_index[node] = sent  # a stale answer: that range is on its way already
            return
        # Retry only when this answer moved the index back: answers to probes already superseded
        # would otherwise each start a walk of their own.
        if now < sent and self._isLeader() and node in self._SyncObj__connectedNodes:
            resent[node] = (now, time.monotonic())
            self._SyncObj__sendAppendEntries()
    elif message.get("success") and now < sent:
        next_index[node] = sent


SyncObj._SyncObj__onMessageReceived = _on_raft_message
TERM_NOTICE = "skiff_term"


def _on_term_notice(self: SyncObj, node: Any, message: dict[str, Any]) -> None:
    """Another master is at a later term than this one, which leads or follows an older term's leader.

    Raft's rule for any message of a later term: take that term and become a follower. PySyncObj
    applies it only to vote requests, and Skiff's stickiness refuses those from a master that cannot
    win (store/readindex.py, store/prevote.py). So a master that raised its term in an election it
    lost (its pre-vote won, then the others heard from the leader again) stayed at that term for good:
    it ignored the leader's appends as older, the others refused its rounds, and it never applied
    another entry (a CI chaos run ended with one master at revision 7,000, the others at 10,862).
    Its answer to an append of the older term is this notice, and the leader steps down: the next
    election, at a later term, is won by a master with the whole log (etcd answers the same way,
    for the same reason)."""
    term = message.get("term")
    if not isinstance(term, int) or term <= self.raftCurrentTerm:
        return
    log.warning("raft: %s is at term %d, past this master's %d: %s", node, term, self.raftCurrentTerm,
                "stepping down" if self._isLeader() else "following it")  # fmt: skip
    self._SyncObj__setCurrentTerm(term, None)
    self._SyncObj__setState(_RAFT_STATE.FOLLOWER)
    self._SyncObj__raftLeader = None


_on_node_connected = SyncObj._SyncObj__onNodeConnected


def _probe_on_connect(self: SyncObj, node: Any) -> None:
    """A follower (re)connecting to the leader: PySyncObj keeps its next index from before, and the
    leader's first append then carries every entry from there, in one go; when the follower's log ends
    elsewhere (a restarted master) all of it is rejected and sent again from the right place (5,000
    entries sent twice in the restart test). The leader starts it at its log's end instead, as a new
    leader does: the first append is a probe without entries, the follower's answer says where its log
    ends, and the entries go from there."""
    _on_node_connected(self, node)
    log.info("raft peer connected: %s", node)
    next_index = self._SyncObj__raftNextIndex
    if self._isLeader() and node in next_index:
        next_index[node] = self._SyncObj__getCurrentLogIndex() + 1


SyncObj._SyncObj__onNodeConnected = _probe_on_connect


def _finish_only_when_complete(self: SyncObj, message: dict[str, Any]) -> dict[str, Any]:
    """A large entry's pieces: PySyncObj's leader marks a piece "finish" when the piece reaches the
    end of the command, not of the pickled entry, which is a few bytes longer; so it may send two
    "finish" pieces, and the follower fails to unpickle the first ("pickle data was truncated"),
    then loses the entry. A "finish" that does not complete the entry is taken as "process"."""
    received = (self._SyncObj__recvTransmission or b"") + message["data"]
    try:
        _pysyncobj_pickle.loads(received)
    except Exception:  # truncated: more pieces follow
        return {**message, "transmission": "process"}
    return message


_on_tick = SyncObj._onTick


def _read_before_electing(self: SyncObj, timeToWait: float = 0.0) -> None:  # noqa: N803 - PySyncObj's name
    """PySyncObj's tick, reading the sockets first when a follower's election deadline has passed.

    PySyncObj checks the deadline before it reads what arrived. A follower whose tick came late (its
    event loop held the GIL, an apply of a large batch took long) then started an election with the
    leader's appends still waiting in its socket, and its vote request deposed a healthy leader: 14
    elections in one scale run. Reading first lets those appends push the deadline back. If the
    deadline has still passed, a pre-vote round runs first (store/prevote.py): the election proper
    starts only once a majority would vote for this master.
    """
    now = raft_clock()
    gap = now - _last_tick.get(self, now)
    if gap > _STALL_WARNING:
        log.warning("raft tick began %.2fs after the previous one (a long tick, or a starved thread)", gap)
    state = self._SyncObj__raftState
    if (
        state != _RAFT_STATE.LEADER
        and self._SyncObj__raftElectionDeadline < now
        and self._SyncObj__transport.ready
    ):
        self._poller.poll(0)
        pre = _pre_votes.get(self)
        if (
            pre is not None
            and self._SyncObj__raftState != _RAFT_STATE.LEADER
            and self._SyncObj__raftElectionDeadline < raft_clock()
        ):
            pre.may_elect()  # False: a pre-vote round instead, and the timer set again (store/prevote.py)
    _last_tick[self] = now
    _on_tick(self, timeToWait)
    if state == _RAFT_STATE.FOLLOWER and self._SyncObj__raftState == _RAFT_STATE.CANDIDATE:
        log.warning("raft: no append from the leader within the election timeout; election for term %d",
                    self.raftCurrentTerm)  # fmt: skip


SyncObj._onTick = _read_before_electing
_last_tick: weakref.WeakKeyDictionary[SyncObj, float] = weakref.WeakKeyDictionary()
_STALL_WARNING = 0.2  # seconds between ticks worth a warning: half the minimum election timeout
_read_indexes: weakref.WeakKeyDictionary[SyncObj, readindex.ReadIndex] = weakref.WeakKeyDictionary()
_pre_votes: weakref.WeakKeyDictionary[SyncObj, prevote.PreVote] = weakref.WeakKeyDictionary()
# Leader: per follower, the index it last went back to on a rejection, and when (see _on_raft_message).
_resent: weakref.WeakKeyDictionary[SyncObj, dict[Any, tuple[int, float]]] = weakref.WeakKeyDictionary()
RESEND_HOLD = 1.0  # seconds: past it, the same rejection is taken as new (the resend may have been lost)


def add_skiff_raft(sync: SyncObj, min_timeout: float) -> readindex.ReadIndex:
    """Skiff's additions to a SyncObj's Raft, besides the patches above: the ReadIndex with its
    leader stickiness (store/readindex.py) and PreVote (store/prevote.py). Returns the ReadIndex.

    Kept beside the SyncObj, not on it: PySyncObj pickles every attribute set after its __init__
    into each snapshot, and the ReadIndex reaches the transport's cipher, which does not pickle
    (every log compaction failed with "Failed to store full dump")."""
    reads = readindex.ReadIndex(sync, min_timeout)
    _read_indexes[sync] = reads
    _pre_votes[sync] = prevote.PreVote(sync, reads.refuses_vote)
    return reads


# With a secret, every Raft message is sealed by `Seal` (AES-256-GCM, replay-checked) in place of
# PySyncObj's Fernet: the same checks before anything is unpickled, at a tenth of the cost. Refusals
# are counted, so a stranger on the Raft port is visible in the master's status.
_syncobj_module.getEncryptor = Seal
_utility_module.getEncryptor = Seal  # TcpUtility (PySyncObj's admin client), used in-process


class _Replica(SyncObjConsumer):
    """The replicated object. Only `state` is serialised (attributes set after the base __init__)."""

    def __init__(self, on_applied: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._on_applied = on_applied
        self.compact: Callable[[], None] | None = None  # asks for a snapshot (set by Store)
        self.since_compaction = 0  # commands applied since the last snapshot was asked for
        self.backlog: Callable[[], int] = lambda: 0  # entries committed, not yet applied (set by Store)
        self._replaying = False  # a long run of committed entries is being applied (a replay)
        super().__init__()
        self.state = st.State()

    @replicated
    def apply_command(self, cmd: dict[str, Any]) -> st.Result:
        if not self._replaying and self.backlog() > REPLAY_WITHOUT_GC and gc.isenabled():
            # A restarted master replays its journal, or a lagging one a long run of entries, in one
            # tick: every object they make lives on, and the collector walked them all again and
            # again (a 7.9 s replay at 30,000 pods held five collections of 100-160 ms each).
            gc.disable()
            self._replaying = True
        with self._lock:
            result = st.apply(self.state, cmd)
        self.settle()
        self.since_compaction += len(cmd["cmds"]) if cmd.get("op") == "batch" else 1
        if self.since_compaction >= COMPACT_AFTER_COMMANDS and self.compact is not None:
            self.since_compaction = 0
            self.compact()
        self._on_applied()
        return result

    @property
    def replaying(self) -> bool:
        return self._replaying

    def settle(self) -> None:
        """The collector back on once a replay is over (also looked at by the Store every 0.1 s: a
        replay may end on an entry of PySyncObj's own, which is not applied here)."""
        if self._replaying and self.backlog() <= 1:
            self._replaying = False
            gc.freeze()  # what the replay made lives on (see orchestrator.gcpause)
            gc.enable()

    def restore(self, state: st.State) -> None:
        """From a snapshot (store/snapshot.py), on the tick thread."""
        with self._lock:
            self.state = state
        gc.freeze()  # the loaded state lives on: keep it out of the collector's walks (orchestrator.gcpause)
        log.info("state loaded from snapshot revision=%d", state.revision)
        self._on_applied()


# A snapshot is asked for after this many commands, besides PySyncObj's own triggers (entries, time):
# an entry holds up to MAX_BATCH commands, so a scale-up of 30,000 pods (about 100,000 commands in
# 6,000 entries) reached neither, and a restarted master replayed it all from its journal (11.5 s);
# with no bound on commands a journal could hold 20,000 entries of 256. Each snapshot copies the
# state's containers on the tick thread (70-110 ms at 30,000 pods, unloaded) and pickles it on
# another: at 20,000 commands, with all three masters snapshotting at once, those stalls cost an
# election and a Get p99 of 1 s (2026-12-03). With the masters' snapshots offset (Store.__init__)
# and the pickling yielding, 50,000 took a scale-up to 30,000 pods in 100 s, and a follower
# restarted after it caught up in 7.7 s (11 s at 100,000, with no snapshot of its own to start
# from); but the snapshot it brings into the scheduler bench drained that bench's backlog at 470
# binds/s against 601 at 100,000 (means of six and three runs, 2026-12-03 evening). 100,000.
COMPACT_AFTER_COMMANDS = 100_000
# Entries committed and not yet applied past which the apply runs with the collector off (a replay).
REPLAY_WITHOUT_GC = 200
MAX_BATCH = 256
APPEND_BATCH_BYTES = 8 * 1024 * 1024
# Entries outstanding per master. Fewer means bigger batches under load (fewer Raft messages per write):
# measured with 64 unary clients, 1 → 2,190-2,250 writes/s, 2 → 2,230-2,280, 4 and 8 → 2,080-2,100; with
# the Write stream (less client and server overhead per write, so proposals arrive faster) 1 →
# 3,075-3,077 and 2 → 2,616-2,924 (6 s load runs).
MAX_IN_FLIGHT = 1
# How long a read may wait for the leader's confirmation (about two election timeouts): past it the
# master has no leader it can reach, and says so (UNAVAILABLE) so that the client tries another.
READ_TIMEOUT = 1.5
# A master without a leader for this long ends its watches, so watchers resume on another master.
LEADERLESS_WATCH_BOUND = 0.75
# Entries behind the leader's commit index past which a master counts as catching up (Store.catching_up).
# A follower under load is a few behind between two appends; a restarted one, at 200, was still 30
# behind when its status calls began hashing all 30,000 pods, and those 30 then took 1.4 s.
CATCH_UP_SLACK = 8
# How long a status call waits for the state digest before it answers without one, and the number of
# objects to hash anew past which it does not wait (the first digest of a restarted master at 30,000
# pods takes a second or more; each status call waited 0.3 s for it in vain).
DIGEST_NO_WAIT_NEW = 5_000
DIGEST_WAIT = 0.3
_FAIL_NAMES = {v: k for k, v in vars(FAIL_REASON).items() if not k.startswith("_")}


class Store:
    """One master's replica of the cluster state, with async writes and change notification."""

    def __init__(
        self,
        self_address: str,
        peers: list[str],
        data_dir: str,
        timing: RaftTiming = RaftTiming(),
        password: str | None = None,
    ) -> None:
        os.makedirs(data_dir, exist_ok=True)
        global _source_host
        _source_host = self_address.rsplit(":", 1)[0]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_pending = False
        self._changed = asyncio.Event()
        self._subscribers: list[Handler] = []
        self._pending: list[tuple[dict[str, Any], asyncio.Future]] = []
        self._leaderless_since: float | None = None  # loop time since which no leader is known
        self._cut_off = asyncio.Event()  # set while leaderless for more than LEADERLESS_WATCH_BOUND
        self._in_flight = 0
        self._dispatched = 0
        self._digest: tuple[int, str] = (-1, "")
        self._digester = st.Digester()
        self._digesting: asyncio.Event | None = None  # set when the digest being computed is done
        self._digesting_long = False  # that digest hashes more than DIGEST_NO_WAIT_NEW objects anew
        self._replica = _Replica(self._on_applied)
        self._started: float | None = time.monotonic()  # until it first caught up (logged then)
        # Every master applies the same commands, so with the same triggers all three snapshotted at
        # the same moment: three pickling threads on a 2-core machine starved every tick thread, and
        # a follower that had not read the leader's appends in time began an election (a scale bench,
        # 2026-12-03). Each master's count of commands is offset by its rank among the members, a
        # third of a period apart, so that under load their snapshots never overlap: the first ones
        # come at one, 4/3 and 5/3 periods of COMPACT_AFTER_COMMANDS. PySyncObj's time trigger (for a
        # cluster with few writes) restarts at every snapshot, so the differing periods below (300,
        # 400, 500 s) only spread those: two masters can still meet (ranks 0 and 1 after 1,200 s).
        members = sorted({self_address, *peers})
        share = members.index(self_address) / len(members)
        self._replica.since_compaction = -int(share * COMPACT_AFTER_COMMANDS)
        snapshots = Snapshots(lambda: self._replica.state, self._replica.restore)
        conf = SyncObjConf(
            journalFile=os.path.join(data_dir, "raft.journal"),
            fullDumpFile=os.path.join(data_dir, "raft.dump"),
            appendEntriesPeriod=timing.append_entries_period,
            autoTickPeriod=timing.auto_tick_period,
            raftMinTimeout=timing.min_timeout,
            raftMaxTimeout=timing.max_timeout,
            connectionTimeout=timing.connection_timeout,
            connectionRetryTime=timing.connection_retry,
            logCompactionMinEntries=timing.compaction_min_entries,
            logCompactionMinTime=timing.compaction_min_time * (1 + share),
            # Compaction on a thread of its own (store/snapshot.py): PySyncObj's in-process
            # compaction stopped the tick for seconds; forking a process with gRPC threads can hang.
            useFork=False,
            serializer=snapshots.save,
            deserializer=snapshots.load,
            serializeChecker=snapshots.check,
            # An entry larger than this travels in pieces ("transmission"), and PySyncObj marks the
            # last piece by the command's length rather than the pickled entry's: when the two fall
            # on either side of a piece boundary, a follower unpickles a truncated entry (see
            # _on_raft_message). Batches of pod creations reach hundreds of kilobytes.
            appendEntriesBatchSizeBytes=APPEND_BATCH_BYTES,
            # PySyncObj binds 0.0.0.0 unless told otherwise; the Raft port speaks pickle: keep it private.
            bindAddress=self_address,
            password=password,
            commandsWaitLeader=True,
            appendEntriesUseBatch=timing.batch,
        )
        self._sync = SyncObj(self_address, peers, conf=conf, consumers=[self._replica])
        self._replica.backlog = lambda: self._sync.raftCommitIndex - self._sync.raftLastApplied
        self._replica.compact = self._sync.forceLogCompaction
        self._reads = add_skiff_raft(self._sync, timing.min_timeout)
        self.address = self_address

    # ------------------------------------------------------------ loop bridge

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._changed = asyncio.Event()
        with self._replica._lock:
            self._dispatched = self._replica.state.revision
        loop.call_soon(self._wake)
        loop.call_soon(self._track_leader, loop)

    def _track_leader(self, loop: asyncio.AbstractEventLoop) -> None:
        """Every 0.1 s: note since when this master has known no leader with a quorum behind it."""
        self._note_leader()
        self._replica.settle()
        if self._started is not None and not self.catching_up():
            log.info(
                "caught up: applied index %d, %.2fs after the store started",
                self._sync.raftLastApplied,
                time.monotonic() - self._started,
            )
            self._started = None
        loop.call_later(0.1, self._track_leader, loop)

    def _note_leader(self) -> None:
        if self._loop is None:
            return
        if self._sync._getLeader() is not None and self._sync.hasQuorum:
            self._leaderless_since = None
            if self._cut_off.is_set():
                self._cut_off = asyncio.Event()
        elif self._leaderless_since is None:
            self._leaderless_since = self._loop.time()
        elif self._loop.time() - self._leaderless_since > LEADERLESS_WATCH_BOUND:
            self._cut_off.set()

    def cut_off(self) -> asyncio.Event:
        """An event set once this master has known no leader for LEADERLESS_WATCH_BOUND seconds.
        Looked at afresh when asked: a stream opened just after an election must not be handed the
        event of the leaderless spell that ended (the 0.1 s tracker may not have run since)."""
        self._note_leader()
        return self._cut_off

    def leaderless_for(self) -> float:
        """Seconds this master has known no leader (0 while it knows one), looked at afresh."""
        self._note_leader()
        if self._leaderless_since is None or self._loop is None:
            return 0.0
        return self._loop.time() - self._leaderless_since

    def _on_applied(self) -> None:
        """Called on the tick thread after each apply: wake the loop once per batch."""
        if self._loop is None or self._wake_pending:
            return
        self._wake_pending = True
        try:
            self._loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the loop is closed: shutting down
            pass

    def _wake(self) -> None:
        self._wake_pending = False
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        if not self._subscribers:
            with self._replica._lock:
                self._dispatched = self._replica.state.revision
            return
        try:
            events = self.events_after(self._dispatched)
        except errors.TooOld:
            log.warning("subscribers fell behind the history; each is told to resync")
            with self._replica._lock:
                self._dispatched = self._replica.state.revision
            for handler in list(self._subscribers):
                try:
                    handler(RESYNC, {})
                except Exception:
                    log.exception("subscriber failed on resync")
            return
        for ev in events:
            self._dispatched = ev.revision
            for handler in self._subscribers:
                try:
                    handler(ev.type, ev.obj)
                except Exception:
                    log.exception("subscriber failed on event revision=%d", ev.revision)

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        """Call `handler(type, obj)` on the loop for every change from now on. Returns an unsubscribe."""
        self._subscribers.append(handler)
        return lambda: self._subscribers.remove(handler) if handler in self._subscribers else None

    def change_event(self) -> asyncio.Event:
        """An event set at the next change. Take it before reading, then wait on it."""
        return self._changed

    # ------------------------------------------------------------ writes

    async def propose(self, cmd: dict[str, Any], timeout: float = 5.0) -> Any:
        """Replicate `cmd`; return the applied object (or None). Raises the command's error, or
        errors.Unavailable when the outcome is unknown (then retry with the same request id).

        Proposals made in the same loop iteration travel as one Raft entry (group commit): under load
        this divides Raft's per-entry cost (pickling, journal, messages) by the batch size.
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        self._pending.append((cmd, fut))
        if self._in_flight < MAX_IN_FLIGHT and len(self._pending) == 1:
            loop.call_soon(self._flush, loop)
        elif len(self._pending) >= MAX_BATCH:
            self._flush(loop)
        try:
            result = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise errors.Unavailable("write not committed in time (no quorum?); retry") from None
        if result[0] == "ok":
            return result[1]
        raise errors.BY_CODE.get(result[1], errors.SkiffError)(result[2])

    async def read_barrier(self, timeout: float = READ_TIMEOUT) -> None:
        """Return once this replica has applied everything committed before the call, as confirmed
        by a leader that was still the leader then: a read that follows is linearizable (Raft's
        ReadIndex, `store/readindex.py`; one round of small messages shared by every read that
        arrives meanwhile, no log entry). errors.Unavailable when no leader confirms in `timeout`."""
        if self._reads.leased():
            return  # the leader, within its lease, with everything committed applied
        confirmed = self._reads.request(asyncio.get_running_loop())
        try:
            await asyncio.wait_for(confirmed, timeout)
        except TimeoutError:
            raise errors.Unavailable(
                f"this master could not confirm the read with a Raft leader within {timeout:g}s; retry"
            ) from None

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        if not batch:
            return
        futures = [f for _, f in batch]
        cmd = batch[0][0] if len(batch) == 1 else commands.batch([c for c, _ in batch])
        self._in_flight += 1

        def done(result: Any, error: int) -> None:
            loop.call_soon_threadsafe(self._entry_done, loop, futures, result, error)

        self._replica.apply_command(cmd, callback=done)

    def _entry_done(self, loop: asyncio.AbstractEventLoop, futures: list, result: Any, error: int) -> None:
        """An entry committed (or failed): resolve its proposals and send what queued meanwhile.

        At most MAX_IN_FLIGHT entries are outstanding; proposals made while they are form the next
        batch. Idle, a proposal goes out at once; loaded, batches grow with the load.
        """
        self._in_flight -= 1
        _resolve(futures, result, error)
        if self._pending:
            self._flush(loop)

    # ------------------------------------------------------------ reads

    @property
    def revision(self) -> int:
        return self._replica.state.revision

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        with self._replica._lock:
            return self._replica.state.objects.get(kind, {}).get(key_of(kind, namespace, name))

    # `list` below names the method inside this class body: annotations from here on say builtins.list.
    def list(self, kind: str, namespace: str = "") -> tuple[builtins.list[Obj], int]:
        """(objects, revision) at one consistent revision."""
        with self._replica._lock:
            s = self._replica.state
            items = list(s.objects.get(kind, {}).values())
            rev = s.revision
        if namespace:
            items = [o for o in items if o["metadata"].get("namespace") == namespace]
        return items, rev

    def pods_on_node(self, node: str) -> tuple[builtins.list[Obj], int]:
        with self._replica._lock:
            s = self._replica.state
            pods = s.objects.get("Pod", {})
            items = [pods[k] for k in s.pods_by_node.get(node, {}) if k in pods]
            return items, s.revision

    def pods_controlled_by(self, namespace: str, kind: str, name: str) -> builtins.list[Obj]:
        """The pods whose controller ownerReference names kind/name in namespace (any uid)."""
        with self._replica._lock:
            s = self._replica.state
            pods = s.objects.get("Pod", {})
            return [
                pods[k] for k in s.pods_by_owner.get(st.owner_key(namespace, kind, name), {}) if k in pods
            ]

    def events_after(self, revision: int) -> builtins.list[st.Event]:
        """Events with a revision > `revision`. Raises errors.TooOld if history no longer has them."""
        with self._replica._lock:
            s = self._replica.state
            if revision >= s.revision:
                return []
            first = s.first_revision()
            if revision < first:
                raise errors.TooOld(
                    f"too old resource version: {revision} (the oldest available is {first + 1})"
                )
            # Revisions are contiguous: the newest (s.revision - revision) events, read from the right.
            newest = list(itertools.islice(reversed(s.history), s.revision - revision))
        newest.reverse()
        return newest

    def heartbeats(self) -> dict[str, float]:
        """Each node's last heartbeat (state.liveness)."""
        with self._replica._lock:
            return st.liveness(self._replica.state)

    def lease(self) -> st.Lease:
        with self._replica._lock:
            return self._replica.state.lease

    async def digest(self, wait: float = DIGEST_WAIT) -> tuple[int, str]:
        """(the current revision, the state's digest at it), or (revision, "") while that digest is
        still being computed: the first over 30,000 pods takes a second or two (later ones hash only
        what changed, st.Digester), so it runs on a thread of its own (started here, waited for at
        most `wait`, without holding the event loop) and is kept until the revision moves.

        No digest ("") while the master catches up (self.catching_up): each digest would hash every object
        changed since the last, as fast as they change, and a restarted master asked for its status
        every 0.1 s (as `skiff cluster status` or the scale bench asks) spent 1.25 of its 3 CPU
        seconds of catching up on it at 30,000 pods, then hashed all of them again as it took the
        leader's latest entries (2026-12-04)."""
        with self._replica._lock:
            revision = self._replica.state.revision
            if self._digest[0] == revision:
                return self._digest
            if self.catching_up():
                return (revision, "")
            if self._digesting is None or self._digesting.is_set():
                objects = st.snapshot(self._replica.state)
                self._digesting_long = len(objects) - self._digester.cached() > DIGEST_NO_WAIT_NEW
                self._digesting = done = asyncio.Event()
                threading.Thread(
                    target=self._compute_digest,
                    args=(revision, objects, asyncio.get_running_loop(), done),
                    name="state-digest",
                    daemon=True,
                ).start()
            done = self._digesting
            if self._digesting_long:  # it takes longer than any caller would wait: answer now
                wait = 0.0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), wait)
        digest = self._digest
        return (revision, digest[1]) if digest[0] == revision else (revision, "")

    def catching_up(self) -> bool:
        """Whether this master is still bringing its state up to the cluster's: replaying its journal
        or a long run of entries, not yet told the commit index by a leader since it started, or more
        than CATCH_UP_SLACK entries behind the last commit index it was told."""
        if self._replica.replaying:
            return True
        told = self._sync._SyncObj__leaderCommitIndex  # PySyncObj's: set by each append, None at first
        return told is None or told - self._sync.raftLastApplied > CATCH_UP_SLACK

    def _compute_digest(
        self,
        revision: int,
        objects: builtins.list[tuple[str, Obj]],
        loop: asyncio.AbstractEventLoop,
        done: asyncio.Event,
    ) -> None:
        try:
            self._digest = (revision, self._digester.digest(revision, objects))
        finally:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(done.set)

    # ------------------------------------------------------------ raft

    def raft_status(self) -> dict[str, Any]:
        return self._sync.getStatus()

    @property
    def raft_rejected(self) -> int:
        """Raft messages refused for failing authentication (a wrong or missing secret), so far."""
        return Seal.rejected

    def is_leader(self) -> bool:
        return self._sync._isLeader()

    def members(self) -> int:
        """How many masters the Raft cluster has, this one included."""
        return 1 + len(self._raft_peers())

    def peers_connected(self) -> int:
        """How many of the other masters this one has a Raft connection with now."""
        return sum(1 for node in self._raft_peers() if self._sync.isNodeConnected(node))

    def _raft_peers(self) -> tuple[Any, ...]:
        try:
            return tuple(
                self._sync._SyncObj__otherNodes
            )  # the tick thread changes it only on a membership change
        except RuntimeError:
            return ()

    @property
    def term(self) -> int:
        return self._sync.raftCurrentTerm

    def ready(self) -> bool:
        """Whether this replica has caught up with a leader's commit index once since it started
        (PySyncObj's isReady): before that it may hold none of the cluster's state."""
        return bool(self._sync.isReady())

    def leader(self) -> str:
        leader = self._sync._getLeader()
        return str(leader) if leader is not None else ""

    def destroy(self) -> None:
        self._sync.destroy()


def _resolve(futures: list[asyncio.Future], result: Any, error: int) -> None:
    if error != FAIL_REASON.SUCCESS:
        failure = ("err", "UNAVAILABLE", f"write not committed: {_FAIL_NAMES.get(error, error)}; retry")
        results = [failure] * len(futures)
    elif result[0] == "batch":
        results = result[1]
    else:
        results = [result]
    for fut, r in zip(futures, results, strict=True):
        if not fut.done():
            fut.set_result(r)
