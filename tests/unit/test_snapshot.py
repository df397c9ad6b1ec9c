"""Raft snapshots on their own thread (store/snapshot.py), and large entries in pieces (store/raft.py)."""

from __future__ import annotations

import gc
import gzip
import pickle
import time
from pathlib import Path
from types import SimpleNamespace

from pysyncobj.serializer import SERIALIZER_STATE

from orchestrator.store import commands as c
from orchestrator.store import raft
from orchestrator.store import state as st
from orchestrator.store.snapshot import Snapshots


def a_state(pods: int) -> st.State:
    s = st.State()
    for i in range(pods):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}", "namespace": "default"}}
        pod["spec"] = {"containers": [{"name": "c", "image": "i"}]}
        st.apply(s, c.create(pod, uid=f"u{i}", now=1.0, rid=f"r{i}"))
    return s


def test_a_snapshot_is_of_the_state_when_it_was_asked_for_and_loads_back(tmp_path: Path) -> None:
    live = a_state(200)
    restored: list[st.State] = []
    snaps = Snapshots(lambda: live, restored.append)
    dump = tmp_path / "raft.dump"
    snaps.save(str(dump) + ".tmp", ("entry1", "entry0", {"cluster"}))
    # The live state moves on while the thread writes: the snapshot keeps the state it was asked for.
    late = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late", "namespace": "default"}}
    st.apply(live, c.create(late, uid="late", now=2.0, rid="late"))
    deadline = time.monotonic() + 10
    while (result := snaps.check()) == SERIALIZER_STATE.SERIALIZING:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert result == SERIALIZER_STATE.SUCCESS and snaps.check() == SERIALIZER_STATE.NOT_SERIALIZING
    assert not (tmp_path / "raft.dump.tmp").exists()  # nothing half-written where PySyncObj renames
    assert snaps.load(str(dump)) == ("entry1", "entry0", {"cluster"})
    (state,) = restored
    assert len(state.objects["Pod"]) == 200 and state.get("ConfigMap", "default", "late") is None
    assert st.digest(state) == st.digest(a_state(200))


def test_a_snapshot_in_pysyncobjs_own_format_still_loads(tmp_path: Path) -> None:
    old = a_state(3)
    dump = tmp_path / "raft.dump"
    with open(dump, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb") as g:
        pickle.dump(([{}, {"state": old}], "entry1", "entry0", {"cluster"}), g)
    restored: list[st.State] = []
    assert Snapshots(st.State, restored.append).load(str(dump)) == ("entry1", "entry0", {"cluster"})
    assert st.digest(restored[0]) == st.digest(old)


def test_a_finish_piece_that_does_not_complete_the_entry_is_taken_as_more_to_come() -> None:
    entry = pickle.dumps((b"x" * 1000, 7, 3))
    follower = SimpleNamespace(_SyncObj__recvTransmission=entry[:600])
    early = {"type": "append_entries", "transmission": "finish", "data": entry[600:900]}
    assert raft._finish_only_when_complete(follower, early)["transmission"] == "process"
    follower._SyncObj__recvTransmission = entry[:900]
    last = {"type": "append_entries", "transmission": "finish", "data": entry[900:]}
    assert raft._finish_only_when_complete(follower, last) is last


def test_loading_a_snapshot_runs_no_garbage_collection(tmp_path: Path) -> None:
    """Unpickling a big state with the collector on walked it again and again (seconds at 30,000
    pods); the load keeps it off, and leaves it on afterwards."""
    dump = tmp_path / "raft.dump"
    with gzip.open(dump, "wb") as g:
        pickle.dump(("skiff-snapshot-1", a_state(2000), ("e",)), g)
    collections: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    restored: list[st.State] = []
    gc.callbacks.append(seen)
    try:
        assert Snapshots(st.State, restored.append).load(str(dump)) == ("e",)
    finally:
        gc.callbacks.remove(seen)
    assert len(restored[0].objects["Pod"]) == 2000
    assert collections == [] and gc.isenabled()
