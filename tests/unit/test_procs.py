"""Process groups: a spawned record is ours until it exits, and `down` reaps what a cluster recorded."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from orchestrator import procs


def sleeper(tmp_path: Path, name: str = "sleeper") -> dict:
    return {
        "name": name,
        "role": "worker",
        "argv": [sys.executable, "-c", "import time; time.sleep(60)"],
        "log": str(tmp_path / f"{name}.log"),
    }


def test_down_stops_every_recorded_group(tmp_path: Path) -> None:
    recs = [sleeper(tmp_path, "a"), sleeper(tmp_path, "b")]
    started = [procs.spawn(r) for r in recs]
    try:
        assert all(procs.is_ours(r) and procs.group_alive(r["pgid"]) for r in recs)
        (tmp_path / "pids.json").write_text(json.dumps({"stateDir": str(tmp_path), "processes": recs}))
        procs.down(tmp_path)
        for proc in started:
            proc.wait(timeout=5)
        assert not any(procs.is_ours(r) or procs.group_alive(r["pgid"]) for r in recs)
        assert "starting a" in procs.tail(recs[0]["log"])
    finally:
        for proc in started:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait()


def test_down_without_a_recorded_cluster_does_nothing(tmp_path: Path) -> None:
    procs.down(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_dead_pid_is_not_alive(tmp_path: Path) -> None:
    rec = sleeper(tmp_path)
    proc = procs.spawn(rec)
    os.killpg(proc.pid, 9)
    proc.wait()
    assert not procs.alive(proc.pid) and not procs.is_ours(rec)
    assert procs.tail(tmp_path / "missing.log") == "(no log)"
