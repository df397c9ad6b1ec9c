"""A short, seeded fuzz run (tests/fuzz) against three real masters: every family of hostile input
gets cases, and none breaks an invariant (one clear line, no traceback or UNKNOWN, no hang, nothing
changed by a refusal, the Raft term kept and the masters agreeing). `make fuzz SECONDS=600` runs
the long version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fuzz.runner import FAMILIES, run

pytestmark = pytest.mark.integration

SECONDS = 36.0


def test_a_short_fuzz_run_breaks_no_invariant(tmp_path: Path) -> None:
    report = run(SECONDS, seed_value=1, tmp=tmp_path, subnet="127.0.78")
    summary = report.summary()
    print("FIGURE fuzz " + json.dumps({n: f["cases"] for n, f in summary["families"].items()}))
    assert set(summary["families"]) == set(FAMILIES)
    for name, family in summary["families"].items():
        assert family["cases"] >= 5, (name, family)
        assert family["refused"] >= 1 or name == "cli-flags", (name, family)
    assert report.violations == 0, json.dumps(summary, indent=2)[:6000]
