"""Three PySyncObj nodes in one process, with Skiff's patch of the leader's ack handling.

Pipelined, unbatched writes (as the masters send them) must not make the leader resend entries a
follower already has: PySyncObj alone moved a follower's next index back on every late ack, and the
follower then truncated and re-added entries it had already applied.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pysyncobj import SyncObj, SyncObjConf, replicated

from orchestrator.store import raft

WRITES = 3000


class Counter(SyncObj):
    def __init__(
        self,
        me: str,
        peers: list[str],
        journal: str | None = None,
        stall: float = 0.0,
        skiff_raft: bool = True,
    ) -> None:
        conf = SyncObjConf(
            appendEntriesPeriod=0.05,
            autoTickPeriod=0.05,
            raftMinTimeout=0.4,
            raftMaxTimeout=0.8,
            bindAddress=me,
            useFork=False,
            appendEntriesUseBatch=False,
            journalFile=journal,
            fullDumpFile=journal + ".dump" if journal else None,
            logCompactionMinEntries=1_000_000,  # entries, not a snapshot, reach a follower behind
        )
        super().__init__(me, peers, conf)
        if skiff_raft:  # pre-vote and stickiness, as the masters have (with Skiff's message handler)
            raft.add_skiff_raft(self, min_timeout=0.4)
        self.applied = 0
        self.stall = stall  # the first apply blocks the tick thread this long (a long replay)

    @replicated
    def add(self) -> int:
        if self.stall:
            time.sleep(self.stall)
            self.stall = 0.0
        self.applied += 1
        return self.applied


def free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def run_cluster(on_message: Callable[[SyncObj, object, dict], None]) -> tuple[list[int], int, list[str]]:
    """Pipeline WRITES commands on the leader, with `on_message` as SyncObj's message handler.

    Returns each node's applied count, the number of log entries the followers received, and the
    warnings PySyncObj logged.
    """
    received = [0]

    def counting(self: SyncObj, node: object, message: dict) -> None:
        if message.get("type") == "append_entries":
            received[0] += len(message.get("entries", ()))
        on_message(self, node, message)

    SyncObj._SyncObj__onMessageReceived = counting
    addrs = [free_address() for _ in range(3)]
    skiff_raft = on_message is raft._on_raft_message
    nodes = [Counter(a, [p for p in addrs if p != a], skiff_raft=skiff_raft) for a in addrs]
    records = Records()
    logging.getLogger("pysyncobj").addHandler(records)
    try:
        deadline = time.monotonic() + 10
        while not any(n._isLeader() for n in nodes):
            assert time.monotonic() < deadline, "no leader"
            time.sleep(0.01)
        leader = next(n for n in nodes if n._isLeader())
        done = threading.Event()
        acked = [0]
        lock = threading.Lock()

        def on_done(_res: object, err: int) -> None:
            with lock:
                acked[0] += 1
                if acked[0] == WRITES:
                    done.set()

        for _ in range(WRITES):
            leader.add(callback=on_done)
        assert done.wait(30), f"only {acked[0]} of {WRITES} writes completed"
        deadline = time.monotonic() + 10
        while any(n.applied != WRITES for n in nodes) and time.monotonic() < deadline:
            time.sleep(0.01)
        return [n.applied for n in nodes], received[0], records.messages
    finally:
        logging.getLogger("pysyncobj").removeHandler(records)
        for n in nodes:
            n.destroy_synchronous()


@pytest.fixture(autouse=True)
def restore_handler() -> Iterator[None]:
    patched = SyncObj._SyncObj__onMessageReceived
    yield
    SyncObj._SyncObj__onMessageReceived = patched


# Each follower gets every write once, plus the empty entry a new leader appends.
ONCE = 2 * (WRITES + 1)


def test_pipelined_writes_are_sent_once() -> None:
    applied, received, warnings = run_cluster(raft._on_raft_message)
    assert applied == [WRITES] * 3
    assert received == ONCE
    assert not [m for m in warnings if "truncating already-applied" in m], warnings[:3]


def test_without_the_patch_pysyncobj_resends_entries() -> None:
    """Shows that the patch is what the test above depends on."""
    applied, received, _ = run_cluster(raft._on_message_received)
    assert applied == [WRITES] * 3
    assert received > ONCE


def leader_of(nodes: list[Counter], timeout: float = 10.0) -> Counter:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leaders = [n for n in nodes if n._isLeader()]
        if leaders:
            return leaders[0]
        time.sleep(0.01)
    raise AssertionError("no leader")


def add_many(node: Counter, n: int) -> None:
    for _ in range(n):
        node.add(callback=lambda _res, _err: None)


def test_deposed_leader_with_a_long_stale_tail_catches_up(tmp_path: Path) -> None:
    """A leader cut off from both followers keeps appending entries nobody commits; killed and
    restarted after the others moved past its tail's end, it must drop that tail. PySyncObj walks a
    follower back one entry per answer and retries only at its next heartbeat (50 ms), so 1,500 stale
    entries would take 75 s; the patch retries at once, one round trip per entry."""
    addrs = [free_address() for _ in range(3)]

    def start(i: int) -> Counter:
        return Counter(addrs[i], [a for a in addrs if a != addrs[i]], str(tmp_path / f"n{i}.journal"))

    nodes = [start(i) for i in range(3)]
    try:
        old = leader_of(nodes)
        a = nodes.index(old)
        for _ in range(20):
            old.add(sync=True, timeout=5)
        others = [i for i in range(3) if i != a]
        for i in others:  # the followers go away; the leader appends what it cannot commit
            nodes[i].destroy_synchronous()
        time.sleep(0.2)
        add_many(old, 1500)
        time.sleep(1.0)
        old.destroy_synchronous()
        time.sleep(0.2)
        for i in others:  # the followers come back, elect a new leader and move on
            nodes[i] = start(i)
        new = leader_of([nodes[i] for i in others])
        add_many(new, 1600)  # past the stale tail's end, so that the whole tail is walked back
        new.add(sync=True, timeout=30)
        committed = new.applied
        # The deposed leader comes back with its stale tail, and a new election follows: the next
        # leader starts it at its own log's end, 1,600 entries past where the logs part.
        b = nodes.index(new)
        new.destroy_synchronous()
        nodes[a] = start(a)
        nodes[b] = start(b)
        leader_of(nodes)
        deadline = time.monotonic() + 20
        while nodes[a].applied != committed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert nodes[a].applied == committed, f"caught up to {nodes[a].applied} of {committed}"
    finally:
        for n in nodes:
            n.destroy_synchronous()


def test_a_restarted_follower_catching_up_is_sent_each_entry_once(tmp_path: Path) -> None:
    """A follower restarted behind the leader answers each append the leader pipelined before it knew
    with the same "reset" (send from my end). Honouring every such stale answer made the leader resend
    the whole missing range once per answer, and the follower truncate and re-add entries it had
    already applied; and the leader's first append after the reconnection carried every entry from
    where it had stopped, all rejected. With the patches each missed entry is sent once.

    The count means something only under one leader: a run with an election (three nodes and the
    writer share one process, and a loaded machine can stall its threads) is run again, twice at most."""
    elections = []
    for attempt in range(3):
        outcome = catch_up_once(tmp_path / f"attempt-{attempt}")
        if isinstance(outcome, str):
            elections.append(outcome)
            continue
        received, missed, truncations = outcome
        assert received <= missed * 1.2, f"{received} entries sent for {missed} missed"
        assert not truncations, truncations[:3]
        return
    raise AssertionError(f"an election in every attempt: {elections}")


def catch_up_once(tmp_path: Path) -> tuple[int, int, list[str]] | str:
    """(entries sent to the restarted follower, entries it missed, truncation warnings), or a
    description of the election that made the count meaningless."""
    tmp_path.mkdir()
    received = [0]

    def counting(self: SyncObj, node: object, message: dict) -> None:
        if message.get("type") == "append_entries" and self is nodes[lagging]:
            received[0] += len(message.get("entries", ()))
        raft._on_raft_message(self, node, message)

    SyncObj._SyncObj__onMessageReceived = counting
    addrs = [free_address() for _ in range(3)]

    def start(i: int, stall: float = 0.0) -> Counter:
        journal = str(tmp_path / f"n{i}.journal")
        return Counter(addrs[i], [a for a in addrs if a != addrs[i]], journal, stall)

    lagging = 0
    nodes = [start(i) for i in range(3)]
    records = Records()
    logging.getLogger("pysyncobj").addHandler(records)
    try:
        leader = leader_of(nodes, timeout=20)
        term = leader.raftCurrentTerm
        lagging = next(i for i in range(3) if nodes[i] is not leader)
        add_many(leader, WRITES)  # it is stopped with appends in flight: the leader's next index for
        nodes[lagging].destroy_synchronous()  # it runs ahead of what it holds, as with a kill -9
        add_many(leader, WRITES)
        leader.add(sync=True, timeout=30)
        held = nodes[lagging].applied  # what its journal holds, about
        received[0] = 0
        nodes[lagging] = start(lagging, stall=1.0)  # its replay takes long: appends queue up meanwhile
        add_many(leader, 2000)  # writes go on while it replays, each append sent at once
        leader.add(sync=True, timeout=30)
        committed = leader.applied
        deadline = time.monotonic() + 20
        while nodes[lagging].applied != committed and time.monotonic() < deadline:
            time.sleep(0.05)
        if not leader._isLeader() or leader.raftCurrentTerm != term:
            return f"term {term} -> {[n.raftCurrentTerm for n in nodes]}"
        assert nodes[lagging].applied == committed, f"caught up to {nodes[lagging].applied} of {committed}"
        truncations = [m for m in records.messages if "truncating already-applied" in m]
        return received[0], committed - held, truncations
    finally:
        logging.getLogger("pysyncobj").removeHandler(records)
        for n in nodes:
            n.destroy_synchronous()
