"""Every outside program that tests, benchmarks, the demo and chaos run is in the Makefile's TOOLS.

A fresh machine has only what the Makefile installs: a program called here but missing from TOOLS
passes on a machine where someone installed it by hand and fails everywhere else.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ["tests", "bench", "chaos", "orchestrator/demo.py"]
SUBPROCESS_CALLS = {"run", "Popen", "call", "check_call", "check_output", "create_subprocess_exec"}


def makefile_tools() -> dict[str, str]:
    """The Makefile's TOOLS list: program -> Debian package."""
    text = (ROOT / "Makefile").read_text()
    m = re.search(r"^TOOLS\s*:=\s*(.+)$", text, re.M)
    assert m, "the Makefile has no TOOLS := line"
    return dict(item.split(":", 1) for item in m.group(1).split())


def _const(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _func_name(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _is_subprocess(call: ast.Call) -> bool:
    f = call.func
    return (
        isinstance(f, ast.Attribute)
        and f.attr in SUBPROCESS_CALLS
        and getattr(f.value, "id", "") in ("subprocess", "asyncio")
    )


def _is_which(call: ast.Call) -> bool:
    f = call.func
    return isinstance(f, ast.Attribute) and f.attr == "which" and getattr(f.value, "id", "") == "shutil"


def _literal_strings(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Tuple | ast.List):
        return {v for v in map(_const, node.elts) if v}
    return set()


def _which_in_loops(tree: ast.AST) -> set[str]:
    """Programs checked as `shutil.which(t)` inside a loop over a literal (for t in ("a", "b"))."""
    found: set[str] = set()
    scopes: list[tuple[str, set[str], list[ast.AST]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name):
            scopes.append((node.target.id, _literal_strings(node.iter), list(node.body)))
        elif isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp):
            for gen in node.generators:
                if isinstance(gen.target, ast.Name):
                    scopes.append((gen.target.id, _literal_strings(gen.iter), [node.elt, *gen.ifs]))
    for var, values, body in scopes:
        for part in body:
            for call in ast.walk(part):
                if isinstance(call, ast.Call) and _is_which(call) and call.args:
                    if isinstance(call.args[0], ast.Name) and call.args[0].id == var:
                        found |= values
    return found


def _argv_program(arg: ast.AST) -> str | None:
    if isinstance(arg, ast.List | ast.Tuple) and arg.elts:
        return _const(arg.elts[0])
    return _const(arg)


def programs_called(source: str) -> set[str]:
    """The programs a module runs by name: shutil.which("x"), subprocess.*(["x", ...]),
    create_subprocess_exec("x", ...), and calls of a local wrapper `def f(*argv)` that hands argv on."""
    tree = ast.parse(source)
    wrappers: set[str] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef) and fn.args.vararg is not None:
            var = fn.args.vararg.arg
            for call in ast.walk(fn):
                if isinstance(call, ast.Call) and _is_subprocess(call) and call.args:
                    if isinstance(call.args[0], ast.Name) and call.args[0].id == var:
                        wrappers.add(fn.name)
    found = _which_in_loops(tree)
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call) or not call.args:
            continue
        first = call.args[0]
        if _is_which(call):
            found.add(_const(first) or "")
        elif _is_subprocess(call):
            found.add(_argv_program(first) or "")
        elif isinstance(call.func, ast.Name) and call.func.id in wrappers:
            found.add(_const(first) or "")
    return {p for p in found if p and not p.startswith("/")}


def scanned_files() -> list[Path]:
    files: list[Path] = []
    for entry in SCANNED:
        path = ROOT / entry
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return files


def test_the_makefile_installs_every_program_that_is_called() -> None:
    listed = makefile_tools()
    unlisted = {
        f"{path.relative_to(ROOT)}: {program}"
        for path in scanned_files()
        for program in programs_called(path.read_text())
        if program not in listed
    }
    assert not unlisted, f"called but not in the Makefile's TOOLS: {sorted(unlisted)}"


def test_the_scan_finds_the_programs_known_to_be_called() -> None:
    """The scan is not vacuous: the programs this repo is known to run are found."""
    found = set().union(*(programs_called(p.read_text()) for p in scanned_files()))
    assert {"wrk", "haproxy", "iptables", "ip", "curl"} <= found, found


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('import shutil\nshutil.which("socat")', {"socat"}),
        ('import shutil\nfor t in ("a", "b"):\n    shutil.which(t)', {"a", "b"}),
        ('import shutil\nx = [t for t in ("c",) if shutil.which(t) is None]', {"c"}),
        ('import subprocess\nsubprocess.run(["tc", "qdisc"])', {"tc"}),
        ('import subprocess\nsubprocess.Popen(["nsenter", "-t", "1"])', {"nsenter"}),
        ('import asyncio\nasyncio.create_subprocess_exec("ss", "-tn")', {"ss"}),
        (
            'import subprocess\ndef _run(*argv):\n    return subprocess.run(argv)\n_run("ethtool", "-k")',
            {"ethtool"},
        ),
        ('import subprocess, sys\nsubprocess.run([sys.executable, "-m", "x"])', set()),
        ('import subprocess\nsubprocess.run(["/usr/bin/env"])', set()),
        ('import shutil\nfor t in ("a",):\n    pass\nshutil.which(t)', set()),
        ('class D:\n    def run(self, *a): pass\nD().run("apply")', set()),
    ],
    ids=[
        "which",
        "which-loop",
        "which-comprehension",
        "run-argv",
        "popen-argv",
        "exec",
        "wrapper",
        "python",
        "abs",
        "loop-elsewhere",
        "not-subprocess",
    ],
)
def test_programs_called(source: str, expected: set[str]) -> None:
    assert programs_called(source) == expected
