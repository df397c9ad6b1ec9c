"""A 90-second seeded chaos run against real processes: it must pass every safety and liveness check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def test_chaos_90_seconds(tmp_path: Path) -> None:
    """SKIFF_CHAOS_SABOTAGE=delete-acked-write (or stale-read) breaks the run on purpose, to see this
    test fail."""
    report_file = tmp_path / "chaos.json"
    sabotage = os.environ.get("SKIFF_CHAOS_SABOTAGE")
    proc = subprocess.run(
        [sys.executable, "-m", "chaos", "--duration", "90", "--seed", "7", "--state-dir", str(tmp_path / "state"),
         "--json", str(report_file), *(["--sabotage", sabotage] if sabotage else [])],
        cwd=ROOT, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    print(proc.stdout[-6000:], proc.stderr[-3000:])
    assert report_file.exists(), "the chaos run wrote no report"
    report = json.loads(report_file.read_text())
    failed = [name for name, ok in report["checks"].items() if not ok]
    assert not failed, f"chaos checks failed: {failed}"
    assert proc.returncode == 0
    assert report["faults_injected"] >= 8
    assert report["acknowledged_writes_lost"] == 0
    assert report["reads"] >= 100 and report["reads_stale"] == 0  # the register check had reads to judge
