"""No stranger runs code through Raft: a `skiff up` cluster's Raft ports refuse what they cannot
authenticate before unpickling it, masters refuse to run Raft off loopback without a secret, and no
secret or token shows in a process's argv or environment."""

from __future__ import annotations

import asyncio
import os
import pickle
import socket
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import REPO, Cluster

pytestmark = pytest.mark.integration


class _RunsCommand:
    """A pickle that runs a shell command when it is loaded: what a stranger would send."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (self.command,))


def pysyncobj_frame(obj: object) -> bytes:
    """A message as PySyncObj frames it without a secret: int32 length, then zlib of a pickle."""
    data = zlib.compress(pickle.dumps(obj), 3)
    return struct.pack("i", len(data)) + data


def send_and_wait_for_close(address: str, payload: bytes) -> None:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(payload)
        s.settimeout(5)
        try:
            while s.recv(4096):  # the master answers nothing that matters; it should hang up
                pass
        except (TimeoutError, ConnectionResetError):
            pass


@pytest.fixture(scope="module")
def cluster(module_cluster_factory: Any) -> Cluster:
    return module_cluster_factory(masters=3, workers=0, lb=False)


def test_a_pickle_sent_to_a_raft_port_runs_nothing(cluster: Cluster, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    rafts = {name: rec["raft"] for name, rec in cluster.pids.items() if rec.get("role") == "master"}
    assert len(rafts) == 3
    for name, address in rafts.items():
        send_and_wait_for_close(address, pysyncobj_frame(_RunsCommand(f"touch {marker}-{name}")))
        send_and_wait_for_close(address, struct.pack("i", 64) + os.urandom(64))  # garbage, framed
    assert not list(tmp_path.glob("pwned*")), "a master ran a stranger's pickle"

    async def statuses() -> list[Any]:
        async with cluster.client() as api:
            return [await api.status(a, timeout=2.0) for a in cluster.master_addresses]

    answered = asyncio.run(statuses())
    assert all(s.healthy for s in answered), answered
    assert all(s.raft_rejected >= 2 for s in answered), [(s.name, s.raft_rejected) for s in answered]


def test_a_master_off_loopback_without_a_secret_refuses_to_start(tmp_path: Path) -> None:
    (tmp_path / "tokens.json").write_text("{}")
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--name", "m1", "--api", "127.0.0.1:0",
         "--raft", "192.0.2.10:7100", "--data-dir", str(tmp_path / "d"), "--tokens-file", str(tmp_path / "tokens.json"), "--insecure"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert out.returncode == 2, out
    last = out.stderr.strip().splitlines()[-1]
    assert "--raft-secret-file is required" in last and "192.0.2.10:7100" in last, out.stderr
    assert not (tmp_path / "d").exists()  # refused before it touched anything


def test_no_secret_or_token_in_argv_or_environment(cluster: Cluster) -> None:
    secrets = [(cluster.state_dir / "raft.secret").read_text().strip()]
    secrets += [
        (cluster.state_dir / f"{role}.token").read_text().strip() for role in ("admin", "viewer", "node")
    ]
    assert all(len(s) >= 32 for s in secrets)
    pids = [int(rec["pid"]) for rec in cluster.pids.values()]
    assert pids
    for pid in pids:
        for what in ("cmdline", "environ"):
            text = Path(f"/proc/{pid}/{what}").read_bytes().decode(errors="replace")
            for s in secrets:
                assert s not in text, f"a secret is in /proc/{pid}/{what}"
    mode = (cluster.state_dir / "raft.secret").stat().st_mode & 0o777
    assert mode == 0o600, oct(mode)
