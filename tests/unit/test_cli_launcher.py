"""The launcher's pure parts: worker sizes, the address/port plan, tokens, process bookkeeping."""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import procs
from orchestrator.cli import launcher as L


def test_parse_sizes() -> None:
    assert L.parse_sizes(None, "2", "4Gi", 2) == [("2", "4Gi"), ("2", "4Gi")]
    assert L.parse_sizes("4:8Gi,2:4Gi", "2", "4Gi", 3) == [("4", "8Gi"), ("2", "4Gi"), ("4", "8Gi")]
    with pytest.raises(L.LaunchError):
        L.parse_sizes("4", "2", "4Gi", 1)


def args(**kw: object) -> argparse.Namespace:
    base = dict(masters=3, workers=2, master_address_base="127.0.31", worker_address_base="127.0.32",
                lb_address="127.0.33.1", http_port=0, worker_sizes=None, worker_cpu="2", worker_memory="4Gi",
                api_port=6443)  # fmt: skip
    return argparse.Namespace(**{**base, **kw})


def test_plan_addresses_and_reuse(tmp_path: Path) -> None:
    layout = L.plan(args(), tmp_path, lb_enabled=True)
    assert [m["address"] for m in layout.masters] == ["127.0.31.1", "127.0.31.2", "127.0.31.3"]
    assert [w["address"] for w in layout.workers] == ["127.0.32.1", "127.0.32.2"]
    assert layout.lb and layout.lb["address"] == "127.0.33.1" and layout.lb["httpPort"] > 0
    (tmp_path / L.LAYOUT).write_text(json.dumps({"masters": layout.masters}))
    again = L.plan(args(), tmp_path, lb_enabled=False)
    assert again.masters == layout.masters and again.lb is None


def test_tokens_are_private_and_reused(tmp_path: Path) -> None:
    first = L.load_tokens(tmp_path)
    assert set(first) == {"admin", "node", "viewer"}
    for name in ("tokens.json", "admin.token", "node.token", "viewer.token"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
    assert L.load_tokens(tmp_path) == first
    assert json.loads((tmp_path / "tokens.json").read_text())[first["viewer"]] == "viewer"


def test_spawn_stop_and_identity(tmp_path: Path) -> None:
    rec = {
        "name": "sleeper",
        "role": "worker",
        "argv": [sys.executable, "-c", "import time; time.sleep(60)"],
        "log": str(tmp_path / "s.log"),
    }
    proc = procs.spawn(rec)
    try:
        assert rec["pgid"] == proc.pid == os.getpgid(proc.pid)
        assert procs.is_ours(rec)
        assert not procs.is_ours({**rec, "argv": [sys.executable, "-c", "other"]})
        assert procs.stop_records([rec], timeout=5) == ["sleeper"]
        proc.wait(timeout=5)
        assert not procs.is_ours(rec)
        assert procs.stop_records([rec], timeout=1) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()


def test_down_with_nothing_recorded(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "orchestrator.cli", "down", "--state-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert out.returncode == 0 and "no cluster recorded" in out.stderr


def test_stop_unknown_name(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "orchestrator.cli", "stop", "m9", "--state-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and 'no process named "m9"' in out.stderr


def test_fresh_discards_data_and_logs_but_keeps_tokens(tmp_path: Path) -> None:
    tokens = L.load_tokens(tmp_path)
    for sub in ("masters/m1", "workers/worker-1/pods", "logs"):
        (tmp_path / sub).mkdir(parents=True)
    (tmp_path / "masters/m1/raft.journal").write_bytes(b"old state")
    (tmp_path / "logs/m1.log").write_text("old log")
    L.discard_state(tmp_path)
    assert not (tmp_path / "masters").exists()
    assert not (tmp_path / "workers").exists()
    assert not (tmp_path / "logs").exists()
    assert L.load_tokens(tmp_path) == tokens


def test_up_merges_the_kubeconfig_and_down_removes_exactly_its_entries(tmp_path: Path) -> None:
    from orchestrator import certs, kubeconfig

    state = tmp_path / "state"
    layout = L.plan(args(), state, lb_enabled=True)
    assert layout.lb is not None
    L.cluster_pki(state, layout)
    target = tmp_path / "kube" / "config"
    other = kubeconfig.entry("work", "https://10.0.0.1:6443", b"CA", "t0")
    kubeconfig.save(target, other)
    server = L.api_server_url(layout)
    assert server == f"https://{layout.lb['address']}:6443"
    written = L.merge_kubeconfig(argparse.Namespace(kubeconfig=str(target)), state, server, "admin-t")
    assert written == target
    merged = kubeconfig.load(target)
    assert merged["current-context"] == L.KUBE_NAME
    assert {c["name"] for c in merged["clusters"]} == {"work", L.KUBE_NAME}
    (state / "config.json").write_text(json.dumps({"kubeconfig": str(target)}))
    L.forget_kubeconfig(state)
    assert kubeconfig.load(target)["clusters"] == other["clusters"]  # the other cluster is untouched
    assert [u["name"] for u in kubeconfig.load(target)["users"]] == ["work"]
    m1 = certs.read_pair(state / "pki" / "m1.crt", state / "pki" / "m1.key")
    ips, _ = certs.subject_alt_names(m1.cert)
    assert {layout.masters[0]["address"], layout.lb["address"]} <= {str(ip) for ip in ips}  # via the lb too
