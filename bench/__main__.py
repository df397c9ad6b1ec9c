"""`make bench`: every benchmark in one run; figures printed and written to bench/results/."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import time
import traceback
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# Each module has run() -> dict of figures.
SUITES = ["api", "rest", "pods", "scheduler", "proxy", "scale"]


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("suites", nargs="*", default=SUITES, help=f"which to run (default: {' '.join(SUITES)})")
    args = p.parse_args()
    RESULTS.mkdir(exist_ok=True)
    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()} {platform.processor() or ''} {_cores()} cores, Python {platform.python_version()}",
    }
    failed = []
    for name in args.suites:
        print(f"== bench {name}", flush=True)
        try:
            module = importlib.import_module(f"bench.{name}")
            figures = module.run()
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        summary[name] = figures
        for k, v in figures.items():
            print(f"  {k:45} {v:12.2f}" if isinstance(v, float) else f"  {k:45} {v}")
        (RESULTS / f"{name}.json").write_text(json.dumps({**figures, "date": summary["date"]}, indent=2))
    (RESULTS / "latest.json").write_text(json.dumps(summary, indent=2))
    if failed:
        raise SystemExit(f"benchmarks failed: {', '.join(failed)}")


def _cores() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
