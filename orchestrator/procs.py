"""Process groups of a local cluster: start a recorded command line in its own session, tell whether a
recorded process is still the one started, signal and stop groups, and reap what a cluster left.

A record is a dict with at least name, argv and log; `spawn` fills in pid and pgid (the same: each
process leads its own group). Processes are only ever signalled by recorded group, never by name.
Shared by the `skiff up|down|...` launcher, the benchmarks and the integration tests; imports nothing
of the CLI.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]  # the checkout `python -m orchestrator.cli` runs from


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def is_ours(rec: dict[str, Any]) -> bool:
    """The recorded process still runs and is the one we started (same group, same command line)."""
    pid = int(rec.get("pid") or 0)
    if pid <= 0 or not alive(pid):
        return False
    try:
        if os.getpgid(pid) != int(rec["pgid"]):
            return False
    except ProcessLookupError:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        argv = [a.encode() for a in rec.get("argv") or []]
        return not argv or cmdline[1 : len(argv)] == argv[1:]
    except OSError:
        return True


def group_alive(pgid: int) -> bool:
    """Some process of the group still exists (or is not ours to signal)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(rec: dict[str, Any], sig: int) -> bool:
    """Send `sig` to the recorded process group if it is still ours; True when sent."""
    if not is_ours(rec):
        return False
    try:
        os.killpg(int(rec["pgid"]), sig)
        return True
    except ProcessLookupError:
        return False


def stop_records(records: list[dict[str, Any]], timeout: float) -> list[str]:
    """SIGTERM each recorded group, wait up to `timeout`, SIGKILL what is left. Returns the names stopped."""
    stopped = [r["name"] for r in records if signal_group(r, signal.SIGTERM)]
    deadline = time.monotonic() + timeout
    pending = [r for r in records if r["name"] in stopped]
    while pending and time.monotonic() < deadline:
        pending = [r for r in pending if alive(int(r["pid"]))]
        if pending:
            time.sleep(0.05)
    for r in pending:
        try:
            os.killpg(int(r["pgid"]), signal.SIGKILL)
        except ProcessLookupError:
            pass
    # The groups may still hold helpers of the leader (the main process exited first): kill them too.
    for r in records:
        if r["name"] in stopped and group_alive(int(r["pgid"])):
            try:
                os.killpg(int(r["pgid"]), signal.SIGKILL)
            except ProcessLookupError:
                pass
    return stopped


def tail(path: str | Path, lines: int = 20) -> str:
    """The last lines of a log, for an error message."""
    try:
        data = Path(path).read_bytes()[-16384:].decode(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(data[-lines:])


def spawn(rec: dict[str, Any]) -> subprocess.Popen[bytes]:
    """Start the recorded argv in its own session with output appended to its log; fills pid/pgid."""
    Path(rec["log"]).parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(rec["log"], "ab") as log:
        log.write(f"---- skiff: starting {rec['name']} at {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            rec["argv"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    rec["pid"] = proc.pid
    rec["pgid"] = proc.pid
    return proc


def down(state: Path, timeout: float = 60.0) -> None:
    """`skiff down` the cluster recorded in `state`, then SIGKILL any recorded process group that is
    still alive. For `finally` blocks: a failing or hanging `skiff down` does not stop the reaping."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKIFF_")}
    with contextlib.suppress(Exception):
        subprocess.run(
            [sys.executable, "-m", "orchestrator.cli", "down", "--state-dir", str(state), "--timeout", "5"],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            env=env,
        )
    with contextlib.suppress(OSError, ValueError):
        for rec in json.loads((state / "pids.json").read_text()).get("processes", []):
            pgid = int(rec.get("pgid") or 0)
            if pgid > 0 and (is_ours(rec) or group_alive(pgid)):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
