"""docs/tour.md names real code: every `path/file.py:function` reference resolves."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOUR = ROOT / "docs" / "tour.md"
REFERENCE = re.compile(r"`([\w./]+\.py):([\w.]+)`")


def references(text: str) -> list[tuple[str, str]]:
    return REFERENCE.findall(text)


def defines(source: str, dotted: str) -> bool:
    """Whether `source` defines `dotted`: a top-level function or class, or Class.method."""
    scope: list[ast.stmt] = ast.parse(source).body
    for part in dotted.split("."):
        found = next(
            (
                n
                for n in scope
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and n.name == part
            ),
            None,
        )
        if found is None:
            return False
        scope = found.body
    return True


def test_the_tour_has_references() -> None:
    refs = references(TOUR.read_text())
    assert len(refs) >= 20, refs
    assert len({path.split("/")[0] for path, _ in refs}) == 3  # the masters, the agents and the balancer


@pytest.mark.parametrize("path, name", references(TOUR.read_text()), ids=lambda v: str(v))
def test_a_reference_names_existing_code(path: str, name: str) -> None:
    file = ROOT / path
    assert file.is_file(), f"docs/tour.md names {path}, which does not exist"
    assert defines(file.read_text(), name), f"docs/tour.md names {path}:{name}, which {path} does not define"


@pytest.mark.parametrize(
    ("source", "dotted", "expected"),
    [
        ("def f(): pass", "f", True),
        ("async def f(): pass", "f", True),
        ("class A:\n    def m(self): pass", "A.m", True),
        ("class A:\n    async def m(self): pass", "A.m", True),
        ("class A:\n    def m(self): pass", "A.n", False),
        ("def f(): pass", "g", False),
        ("x = 1", "x", False),
    ],
)
def test_defines(source: str, dotted: str, expected: bool) -> None:
    assert defines(source, dotted) is expected
