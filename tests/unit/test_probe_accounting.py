"""Probe fields, defaults and result accounting."""

from __future__ import annotations

from typing import TypedDict, Unpack

import pytest

from agents import probes
from agents.probes import ProbeSpec, Tally


def test_defaults_match_kubernetes() -> None:
    p = ProbeSpec.parse({"tcpSocket": {"port": 80}})
    assert p is not None
    assert (p.period, p.timeout, p.failure_threshold, p.success_threshold, p.initial_delay) == (
        10,
        1,
        3,
        1,
        0,
    )
    h = ProbeSpec.parse({"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 2})
    assert h is not None and h.kind == "http" and h.port == "http" and h.period == 2
    e = ProbeSpec.parse({"exec": {"command": ["true"]}})
    assert e is not None and e.command == ("true",)
    assert ProbeSpec.parse(None) is None


class Thresholds(TypedDict, total=False):
    success_threshold: int
    failure_threshold: int


def run(kind: str, outcomes: str, **kw: Unpack[Thresholds]) -> list[bool]:
    spec = ProbeSpec("tcp", **kw)
    t = probes.initial_tally(kind)
    out = []
    for ch in outcomes:
        t = probes.record(t, ch == "+", spec)
        out.append(t.ok)
    return out


@pytest.mark.parametrize(
    ("kind", "outcomes", "kw", "expected"),
    [
        ("readiness", "+", {}, [True]),
        ("readiness", "-+", {}, [False, True]),
        ("readiness", "+-", {}, [True, True]),
        ("readiness", "+---", {}, [True, True, True, False]),
        ("readiness", "++-++", {"success_threshold": 2}, [False, True, True, True, True]),
        ("readiness", "---++", {"success_threshold": 2}, [False, False, False, False, True]),
        ("liveness", "--+--", {}, [True, True, True, True, True]),
        ("liveness", "---", {}, [True, True, False]),
        ("liveness", "-", {"failure_threshold": 1}, [False]),
    ],
)
def test_record(kind: str, outcomes: str, kw: dict, expected: list[bool]) -> None:
    assert run(kind, outcomes, **kw) == expected


def test_initial() -> None:
    assert probes.initial_tally("liveness") == Tally(ok=True)
    assert probes.initial_tally("readiness") == Tally(ok=False)
    assert probes.initial_tally("startup") == Tally(ok=False)
