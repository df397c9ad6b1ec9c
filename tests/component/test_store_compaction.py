"""Log compaction of a real Store (PySyncObj, the Raft seal, the ReadIndex attached): the snapshot
is written and the journal truncated, and a Store started again on the same data directory holds
every object written.

PySyncObj pickles into each snapshot every attribute set on the SyncObj after its __init__; one
such attribute once reached the seal's cipher, and every compaction failed ("Failed to store full
dump") while the journal grew without bound.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.store import commands
from orchestrator.store.raft import RaftTiming, Store

WRITES = 300
COMPACT_AFTER = 100


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def config_map(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}", "namespace": "default"}}


async def wait_leader(store: Store) -> None:
    deadline = time.monotonic() + 10
    while not store.leader():
        assert time.monotonic() < deadline, "the single master never became leader"
        await asyncio.sleep(0.05)


async def write_and_stop(address: str, data_dir: Path, timing: RaftTiming, at_once: int) -> int:
    """A single master that writes WRITES ConfigMaps, `at_once` proposals at a time, then stops with
    its journal kept; its last revision."""
    store = Store(address, [], str(data_dir), timing)
    try:
        store.attach(asyncio.get_running_loop())
        await wait_leader(store)
        for n in range(0, WRITES, at_once):
            await asyncio.gather(
                *(
                    store.propose(commands.create(config_map(i), uid=f"u{i}", now=time.time(), rid=f"r{i}"))
                    for i in range(n, min(n + at_once, WRITES))
                )
            )
        written = store.revision
        # PySyncObj saves the commit index once a second: after that, a restart applies the whole
        # journal in its first tick (else up to the saved index, then the rest after its election).
        await asyncio.sleep(1.2)
    finally:
        store.destroy()
    await asyncio.sleep(0.2)
    return written


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    logging.getLogger("pysyncobj").addHandler(handler)
    yield handler
    logging.getLogger("pysyncobj").removeHandler(handler)


async def test_compaction_writes_a_snapshot_and_a_restart_restores_it(
    tmp_path: Path, records: Records
) -> None:
    timing = RaftTiming(compaction_min_entries=COMPACT_AFTER, compaction_min_time=3600)
    address = f"127.0.60.51:{free_port('127.0.60.51')}"
    store = Store(address, [], str(tmp_path), timing, password="compaction-secret")
    try:
        store.attach(asyncio.get_running_loop())
        await wait_leader(store)
        for i in range(WRITES):
            await store.propose(commands.create(config_map(i), uid=f"u{i}", now=time.time(), rid=f"r{i}"))
        deadline = time.monotonic() + 10
        while not (tmp_path / "raft.dump").exists():
            assert time.monotonic() < deadline, f"no snapshot written; pysyncobj said {records.messages[:3]}"
            await asyncio.sleep(0.05)
        assert not [m for m in records.messages if "full dump" in m]
        revision = store.revision
    finally:
        store.destroy()

    again = Store(address, [], str(tmp_path), timing, password="compaction-secret")
    try:
        again.attach(asyncio.get_running_loop())
        await wait_leader(again)
        deadline = time.monotonic() + 10
        while again.revision < revision:
            assert time.monotonic() < deadline, f"restarted at revision {again.revision}, not {revision}"
            await asyncio.sleep(0.05)
        assert all(again.get("ConfigMap", "default", f"cm-{i}") is not None for i in range(WRITES))
    finally:
        again.destroy()


async def test_a_controller_write_under_a_lost_lease_is_fenced(tmp_path: Path) -> None:
    """The store refuses a write whose lease is no longer held (FAILED_PRECONDITION); the controllers'
    view turns that into errors.Fenced, on which every controller stops, instead of retrying it."""
    from orchestrator import errors
    from orchestrator.leader import LocalCluster
    from orchestrator.store.writer import Writer

    address = f"127.0.60.52:{free_port('127.0.60.52')}"
    store = Store(address, [], str(tmp_path), RaftTiming())
    try:
        store.attach(asyncio.get_running_loop())
        await wait_leader(store)
        lease = await Writer(store).lease("m1", store.term, 30.0)
        assert lease["holder"] == "m1"
        held = LocalCluster(store, ("m1", store.term))
        assert (await held.create(config_map(1)))["metadata"]["name"] == "cm-1"
        lost = LocalCluster(store, ("m0", store.term))
        with pytest.raises(errors.Fenced):
            await lost.create(config_map(2))
        assert store.get("ConfigMap", "default", "cm-2") is None
    finally:
        store.destroy()


async def test_a_snapshot_follows_many_commands_in_few_entries(
    tmp_path: Path, records: Records, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes proposed together travel as one entry of many commands: PySyncObj's triggers (entries,
    time) are not reached, and the Store asks for a snapshot by the commands applied."""
    from orchestrator.store import raft

    monkeypatch.setattr(raft, "COMPACT_AFTER_COMMANDS", COMPACT_AFTER)
    timing = RaftTiming(compaction_min_entries=1_000_000, compaction_min_time=3600)
    address = f"127.0.60.54:{free_port('127.0.60.54')}"
    store = Store(address, [], str(tmp_path), timing)
    try:
        store.attach(asyncio.get_running_loop())
        await wait_leader(store)
        for start in range(0, WRITES, 100):  # 100 proposals at once: one or two entries
            await asyncio.gather(
                *(
                    store.propose(commands.create(config_map(i), uid=f"u{i}", now=time.time(), rid=f"r{i}"))
                    for i in range(start, start + 100)
                )
            )
        entries = store.raft_status()["log_len"]
        assert entries < COMPACT_AFTER, f"{entries} entries: PySyncObj's own trigger would do"
        deadline = time.monotonic() + 10
        while not (tmp_path / "raft.dump").exists():
            assert time.monotonic() < deadline, f"no snapshot written; pysyncobj said {records.messages[:3]}"
            await asyncio.sleep(0.05)
    finally:
        store.destroy()


async def test_three_masters_snapshot_at_different_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every master applies the same commands; with the same trigger all three snapshotted at once, and
    three pickling threads on two cores starved the Raft ticks into an election. Each master's trigger
    is offset by a third of the period: their first snapshots come at three different revisions
    (at 300, 400 and 500 here)."""
    from orchestrator.store import raft

    period = 300
    monkeypatch.setattr(raft, "COMPACT_AFTER_COMMANDS", period)
    host = "127.0.60.55"
    addresses = [f"{host}:{free_port(host)}" for _ in range(3)]
    timing = RaftTiming(compaction_min_entries=1_000_000, compaction_min_time=3600)
    stores = [
        Store(me, [a for a in addresses if a != me], str(tmp_path / f"m{i}"), timing)
        for i, me in enumerate(addresses)
    ]
    first: dict[int, int] = {}  # store index -> the revision when its snapshot file first appeared
    try:
        for s in stores:
            s.attach(asyncio.get_running_loop())
        deadline = time.monotonic() + 10
        while not (leader := next((s for s in stores if s.is_leader()), None)):
            assert time.monotonic() < deadline, "no leader"
            await asyncio.sleep(0.05)
        for start in range(0, 2 * period, 10):
            await asyncio.gather(
                *(
                    leader.propose(commands.create(config_map(i), uid=f"u{i}", now=time.time(), rid=f"r{i}"))
                    for i in range(start, start + 10)
                )
            )
            await asyncio.sleep(0.05)
            for i in range(3):
                if i not in first and (tmp_path / f"m{i}" / "raft.dump").exists():
                    first[i] = leader.revision
        assert len(first) == 3, f"snapshots by revision {leader.revision}: {first}"
        points = sorted(first.values())
        assert points[1] - points[0] >= period // 5 and points[2] - points[1] >= period // 5, first
    finally:
        for s in stores:
            s.destroy()


async def test_a_restart_replays_its_journal_with_the_collector_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restarted master applies its whole journal in one tick; every object that makes lives on, so
    the collector's walks during it were wasted (five collections of 100-160 ms in a 7.9 s replay at
    30,000 pods). No collection runs while the replay is applied, and the collector is on after it."""
    import gc

    from orchestrator.store import raft

    monkeypatch.setattr(raft, "REPLAY_WITHOUT_GC", 50)
    address = f"127.0.60.56:{free_port('127.0.60.56')}"
    timing = RaftTiming(compaction_min_entries=1_000_000, compaction_min_time=3600)
    written = await write_and_stop(address, tmp_path, timing, at_once=1)  # one entry each

    again = Store(address, [], str(tmp_path), timing)
    during: list[int] = []  # the revision at each collection that ran while the replay was applied

    def seen(phase: str, info: dict) -> None:
        if phase == "start" and 0 < again.revision < written:
            during.append(again.revision)

    gc.callbacks.append(seen)
    try:
        again.attach(asyncio.get_running_loop())
        deadline = time.monotonic() + 10
        while again.revision < written:
            assert time.monotonic() < deadline, f"replayed to {again.revision}, not {written}"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # the Store's 0.1 s check sees the replay over
        assert during == [], f"{len(during)} collections during the replay"
        assert gc.isenabled()
    finally:
        gc.callbacks.remove(seen)
        again.destroy()


async def test_a_replaying_master_answers_its_status_without_hashing_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a restarted master replays its journal, a digest would hash each object changed since
    the last one as fast as they change: polled every 0.1 s, that was 1.25 of the 3 CPU seconds of a
    restart at 30,000 pods. During the replay the digest is "" and nothing is hashed; after it, the
    digest is the state's."""
    from orchestrator.store import raft
    from orchestrator.store import state as st

    monkeypatch.setattr(raft, "REPLAY_WITHOUT_GC", 20)
    address = f"127.0.60.57:{free_port('127.0.60.57')}"
    timing = RaftTiming(compaction_min_entries=1_000_000, compaction_min_time=3600)
    written = await write_and_stop(address, tmp_path, timing, at_once=5)  # at least 60 entries

    apply, digest = st.apply, st.Digester.digest

    def slow_apply(state: st.State, cmd: dict) -> st.Result:
        time.sleep(0.002)  # a replay long enough to ask for the status during it
        return apply(state, cmd)

    hashed_at: list[int] = []

    def recording_digest(self: st.Digester, revision: int, objects: list) -> str:
        hashed_at.append(revision)
        return digest(self, revision, objects)

    monkeypatch.setattr(st, "apply", slow_apply)
    monkeypatch.setattr(st.Digester, "digest", recording_digest)
    again = Store(address, [], str(tmp_path), timing)
    try:
        again.attach(asyncio.get_running_loop())
        answered_during = 0
        deadline = time.monotonic() + 20
        while again.revision < written:
            assert time.monotonic() < deadline, f"replayed to {again.revision}, not {written}"
            revision, found = await again.digest(wait=0.01)
            if 0 < revision < written:
                answered_during += 1
                assert found == ""
            await asyncio.sleep(0.01)
        assert answered_during > 0, "no status was asked for during the replay"
        assert [r for r in hashed_at if 0 < r < written] == []  # (one of the empty state may come first)
        await asyncio.sleep(0.3)  # the Store's 0.1 s check sees the replay over
        revision, found = await again.digest(wait=5.0)
        assert (revision, found) == (written, st.digest(again._replica.state))
    finally:
        again.destroy()


async def test_a_digest_of_many_objects_anew_is_not_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A status call waits a moment for the state digest, unless it hashes more than
    DIGEST_NO_WAIT_NEW objects anew (a restarted master's first, a second or more at 30,000 pods):
    then it answers at once without it, and a later call has it."""
    from orchestrator.store import raft
    from orchestrator.store import state as st

    monkeypatch.setattr(raft, "DIGEST_NO_WAIT_NEW", 10)
    digest = st.Digester.digest

    def slow_digest(self: st.Digester, revision: int, objects: list) -> str:
        time.sleep(0.5)  # as hashing 30,000 objects anew takes a while
        return digest(self, revision, objects)

    monkeypatch.setattr(st.Digester, "digest", slow_digest)
    address = f"127.0.60.58:{free_port('127.0.60.58')}"
    store = Store(address, [], str(tmp_path), RaftTiming(compaction_min_entries=1_000_000))
    try:
        store.attach(asyncio.get_running_loop())
        await wait_leader(store)
        await asyncio.gather(
            *(
                store.propose(commands.create(config_map(i), uid=f"u{i}", now=time.time(), rid=f"r{i}"))
                for i in range(20)
            )
        )
        t0 = time.monotonic()
        assert await store.digest(wait=5.0) == (store.revision, "")
        assert time.monotonic() - t0 < 1.0
        expected = (store.revision, st.digest(store._replica.state))
        deadline = time.monotonic() + 5
        while (got := await store.digest(wait=0.1)) != expected:
            assert time.monotonic() < deadline, got
        # the next digest hashes only what changed: it is waited for
        await store.propose(commands.create(config_map(99), uid="u99", now=time.time(), rid="r99"))
        revision, found = await store.digest(wait=5.0)
        assert found == st.digest(store._replica.state) and revision == store.revision
    finally:
        store.destroy()
