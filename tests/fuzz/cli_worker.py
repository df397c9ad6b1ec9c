"""One long-lived `skiff` for the fuzz run: reads a JSON line {argv, files} per case, runs the CLI's
main() on it, answers a JSON line {rc, stdout, stderr, escaped}. Starting a process per case would
cost a second of imports; running main() here keeps each case to its own work.

stdout and stderr encode as a terminal's do (UTF-8; stderr with backslashreplace, as Python's own),
so a message the CLI could not print would show here as an escaped exception.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import traceback
from pathlib import Path


def run_one(argv: list[str], files: dict[str, str]) -> dict[str, object]:
    for path, text in files.items():
        Path(path).write_text(text, encoding="utf-8", errors="surrogatepass")
    out_raw, err_raw = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_raw, encoding="utf-8", errors="strict")
    err = io.TextIOWrapper(err_raw, encoding="utf-8", errors="backslashreplace")
    escaped = None
    rc: object = None
    from orchestrator.cli.main import main

    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code
        except BaseException:
            escaped = traceback.format_exc()
    for stream in (out, err):
        with contextlib.suppress(Exception):
            stream.flush()
    return {
        "rc": rc,
        "stdout": out_raw.getvalue().decode("utf-8", "replace")[-2000:],
        "stderr": err_raw.getvalue().decode("utf-8", "replace")[-4000:],
        "escaped": escaped,
    }


def main() -> None:
    answers = sys.__stdout__  # the pipe to the runner (sys.stdout is redirected during a case)
    assert answers is not None
    for line in sys.stdin:
        case = json.loads(line)
        reply = run_one(case["argv"], case.get("files", {}))
        answers.write(json.dumps(reply) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
