"""What the cluster benchmarks share: the skiff CLI run as a user runs it, hollow agents started
and counted Ready, the logs printed when a run fails, and the hollow agents' process groups stopped
at the end."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def skiff(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """The skiff CLI from this checkout, without the caller's SKIFF_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKIFF_")}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )


def print_logs(state: Path, tmp: Path, lines: int = 20) -> None:
    """The last lines of every master's and hollow agent's log."""
    logs = sorted((state / "logs").glob("*.log")) if (state / "logs").exists() else []
    for log in [*logs, *sorted(tmp.glob("hollow-*.log"))]:
        print(f"---- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:]))


def stop(groups: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process group started here (each leads its own), SIGKILL after 10 s."""
    for proc in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in groups:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


# The masters' and hollow agents' log level: WARNING keeps a benchmark's logs (and their cost) small; INFO, from
# SKIFF_BENCH_LOG_LEVEL, is for finding out what a run did (with SKIFF_BENCH_KEEP=1 to keep the logs).
MASTER_LOG_LEVEL = os.environ.get("SKIFF_BENCH_LOG_LEVEL", "WARNING")


def up(state: Path, subnet: int) -> dict[str, Any]:
    """`skiff up` of 3 masters and no workers at 127.0.<subnet>.* (agents' addresses: subnet + 1,
    the unused balancer's: subnet + 2); the client config it wrote."""
    config = state / "config.json"
    out = skiff(
        "up", "--state-dir", str(state), "--config", str(config), "--kubeconfig", str(state / "kubeconfig"),
        "--masters", "3", "--workers", "0", "--no-lb",
        "--master-address-base", f"127.0.{subnet}", "--worker-address-base", f"127.0.{subnet + 1}",
        "--lb-address", f"127.0.{subnet + 2}.1", "--http-port", "0", "--log-level", MASTER_LOG_LEVEL,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"skiff up failed ({out.returncode}):\n{out.stdout}{out.stderr}")
    conf: dict[str, Any] = json.loads(config.read_text())
    return conf


def start_hollow(
    conf: dict[str, Any],
    state: Path,
    tmp: Path,
    name: str,
    address: str,
    nodes: int,
    *extra: str,
    prefix: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """`python -m agents --hollow <nodes>` as its own process group, logging to tmp/<name>.log;
    `extra`: more agent flags, `prefix`: a command to run it under (nice)."""
    from orchestrator.cli.launcher import join_flags

    argv = [
        *prefix, sys.executable, "-m", "agents", "--hollow", str(nodes), "--name", name, "--address", address,
        "--masters", ",".join(conf["masters"]), "--token-file", str(state / "node.token"),
        "--state-dir", str(tmp / name), "--log-level", MASTER_LOG_LEVEL, *extra, *join_flags(state, name, [address]),
    ]  # fmt: skip
    with open(tmp / f"{name}.log", "wb") as log:
        return subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


async def ready_nodes(api: Any, selector: str = "") -> int:
    """How many Nodes (matching `selector`) are Ready."""
    nodes, _ = await api.list("Node", label_selector=selector)
    return sum(
        any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in n["status"].get("conditions") or []
        )
        for n in nodes
    )
