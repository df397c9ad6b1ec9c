"""Raw PySyncObj baseline: the same 3-process Raft, same timing, a replicated dict, no gRPC.

Run by bench/api.py: `python -m bench.raw_raft SELF PEER,PEER OUT.json` runs one node; the node whose
address sorts first drives the load and writes the figures to OUT.json.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

from pysyncobj import SyncObj, SyncObjConf, replicated

from orchestrator.store.raft import RaftTiming


class KV(SyncObj):
    def __init__(self, me: str, peers: list[str]) -> None:
        t = RaftTiming()
        conf = SyncObjConf(
            appendEntriesPeriod=t.append_entries_period,
            autoTickPeriod=t.auto_tick_period,
            raftMinTimeout=t.min_timeout,
            raftMaxTimeout=t.max_timeout,
            bindAddress=me,
            useFork=False,
            appendEntriesUseBatch=t.batch,
        )
        super().__init__(me, peers, conf)
        self.data: dict[str, str] = {}

    @replicated
    def put(self, key: str, value: str) -> int:
        self.data[key] = value
        return len(self.data)


def drive(kv: KV, out: str, seq_n: int, pipe_n: int) -> None:
    while kv._getLeader() is None:
        time.sleep(0.01)
    lat = []
    for i in range(seq_n):
        t = time.perf_counter()
        try:
            kv.put(f"s{i}", "x" * 64, sync=True, timeout=5)
        except Exception as e:  # a lost write is reported, not fatal to the benchmark
            print(f"raw write failed: {e!r}", file=sys.stderr)
            continue
        lat.append(time.perf_counter() - t)
    lat.sort()
    done = threading.Event()
    left = [pipe_n]
    lock = threading.Lock()

    def cb(res, err):
        with lock:
            left[0] -= 1
            if left[0] == 0:
                done.set()

    t = time.perf_counter()
    for i in range(pipe_n):
        kv.put(f"p{i}", "x" * 64, callback=cb)
    done.wait(60)
    elapsed = time.perf_counter() - t
    with open(out, "w") as f:
        json.dump(
            {
                "p50_ms": lat[len(lat) // 2] * 1000,
                "p99_ms": lat[int(len(lat) * 0.99)] * 1000,
                "pipelined_writes_per_s": pipe_n / elapsed,
            },
            f,
        )


def main() -> None:
    me, peers, out = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
    kv = KV(me, peers)
    if me == sorted([me, *peers])[0]:
        drive(kv, out, 1000, 20000)
        os._exit(0)  # PySyncObj's tick thread is not a daemon
    else:
        time.sleep(float(sys.argv[4]) if len(sys.argv) > 4 else 60)


if __name__ == "__main__":
    main()
