"""Raft snapshots written on a thread of their own, so that log compaction never stops the Raft tick.

PySyncObj, without fork (a process with gRPC threads must not fork), pickles and gzips the whole
state on its tick thread. At 30,000 pods that is seconds without a tick: no appends go out, the
followers' election timers run out, and the leader is deposed. Here the tick thread only copies the
state's containers (the objects in them are never changed in place, see state.snapshot), a few
milliseconds; a thread pickles the copy, compresses it fast (gzip level 1), syncs it to disk and
renames it over the snapshot file. PySyncObj asks `check` on each tick and truncates the journal
only once the snapshot is complete.

This goes through PySyncObj's hooks for a custom, asynchronous serializer (SyncObjConf's serializer,
deserializer and serializeChecker). With them PySyncObj no longer passes the replicated object's
data, so `Snapshots` reads the replica itself and, on load, restores it itself. A snapshot in
PySyncObj's own format (written before this module) still loads.
"""

from __future__ import annotations

import gc
import gzip
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable
from typing import Any

from pysyncobj.serializer import SERIALIZER_STATE

from orchestrator.store import state as st

log = logging.getLogger(__name__)

FORMAT = "skiff-snapshot-1"
COMPRESS_LEVEL = 1
YIELD_S = 0.002


class _Yielding:
    """A file that sleeps YIELD_S after each write: the pickler hands it one frame (about 64 KB, some
    2 ms of pickling with the GIL held) at a time, and the pause gives the GIL and the CPU back to
    the tick thread and the event loop, so a snapshot takes about twice as long at half the pressure."""

    def __init__(self, f: Any) -> None:
        self._f = f

    def write(self, data: bytes) -> int:
        n: int = self._f.write(data)
        time.sleep(YIELD_S)
        return n


class Snapshots:
    """PySyncObj's serializer hooks over one replica: `get_state()` on the tick thread, `set_state`
    to restore (called from `load`)."""

    def __init__(self, get_state: Callable[[], st.State], set_state: Callable[[st.State], None]) -> None:
        self._get_state = get_state
        self._set_state = set_state
        self._thread: threading.Thread | None = None
        self._result = SERIALIZER_STATE.NOT_SERIALIZING

    def save(self, file_name: str, raft_data: Any) -> None:
        """PySyncObj's serializer(fileName, data), on the tick thread. `file_name` is PySyncObj's
        temporary name: PySyncObj renames it as soon as this returns (and fails to, harmlessly,
        since nothing is written there); the thread writes its own temporary file and renames it
        over the snapshot when it is complete."""
        if self._thread is not None and self._thread.is_alive():
            return
        final = file_name.removesuffix(".tmp")
        frozen = self._get_state().copy()
        self._result = SERIALIZER_STATE.SERIALIZING
        self._thread = threading.Thread(
            target=self._write, args=(final, frozen, raft_data), name="raft-snapshot", daemon=True
        )
        self._thread.start()

    def _write(self, final: str, frozen: st.State, raft_data: Any) -> None:
        started = time.monotonic()
        partial = final + ".writing"
        try:
            with open(partial, "wb") as f:
                with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=COMPRESS_LEVEL) as g:
                    pickle.dump((FORMAT, frozen, raft_data), _Yielding(g), protocol=pickle.HIGHEST_PROTOCOL)
                f.flush()
                os.fsync(f.fileno())
            os.replace(partial, final)
        except Exception:
            log.exception("writing the Raft snapshot failed; the journal is kept")
            self._result = SERIALIZER_STATE.FAILED
            return
        log.info(
            "raft snapshot revision=%d objects=%d written in %.2fs (%d bytes)",
            frozen.revision,
            sum(len(m) for m in frozen.objects.values()),
            time.monotonic() - started,
            os.path.getsize(final),
        )
        self._result = SERIALIZER_STATE.SUCCESS

    def check(self) -> int:
        """PySyncObj's serializeChecker: SERIALIZING while the thread writes, then its outcome once."""
        result = self._result
        if result in (SERIALIZER_STATE.SUCCESS, SERIALIZER_STATE.FAILED):
            self._result = SERIALIZER_STATE.NOT_SERIALIZING
        return result

    def load(self, file_name: str) -> Any:
        """PySyncObj's deserializer: restores the replica and returns PySyncObj's own part (the last
        applied entries and the cluster)."""
        # Unpickling makes a million objects that all live on: with the collector on, it walked them
        # all again each time their number grew by a quarter (2.5-3.7 s of a 4.5 s load at 30,000
        # pods; 0.75 s without). `restore` freezes them before the collector runs again.
        collecting = gc.isenabled()
        gc.disable()
        try:
            with open(file_name, "rb") as f, gzip.GzipFile(fileobj=f, mode="rb") as g:
                data = pickle.load(g)
            if isinstance(data, tuple) and data and data[0] == FORMAT:
                _, state, raft_data = data
            else:  # PySyncObj's format: ([the SyncObj's data, each consumer's data], entries..., cluster)
                state, raft_data = data[0][1]["state"], data[1:]
            self._set_state(state)
        finally:
            if collecting:
                gc.enable()
        return raft_data
