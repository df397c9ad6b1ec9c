"""Endpoint choice: policies, exclusions, ejection, ClientIP affinity."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lb.balancer import LEAST_CONN, P2C, ROUND_ROBIN, Ejections, Endpoint, Picker

EPS = tuple(Endpoint(f"127.0.50.{i}", 8000 + i) for i in range(1, 4))


def keys(picks: list[Endpoint | None]) -> list[str | None]:
    return [p.key if p else None for p in picks]


@pytest.mark.parametrize(
    ("policy", "active", "excluded", "n", "want"),
    [
        pytest.param(
            ROUND_ROBIN,
            {},
            set(),
            4,
            ["127.0.50.1:8001", "127.0.50.2:8002", "127.0.50.3:8003", "127.0.50.1:8001"],
            id="rr-cycles",
        ),
        pytest.param(
            ROUND_ROBIN,
            {},
            {"127.0.50.2:8002"},
            3,
            ["127.0.50.1:8001", "127.0.50.3:8003", "127.0.50.1:8001"],
            id="rr-skips-excluded",
        ),
        pytest.param(ROUND_ROBIN, {}, {e.key for e in EPS}, 1, [None], id="rr-none-usable"),
        pytest.param(
            LEAST_CONN,
            {"127.0.50.1:8001": 5, "127.0.50.2:8002": 1, "127.0.50.3:8003": 3},
            set(),
            1,
            ["127.0.50.2:8002"],
            id="lc-fewest",
        ),
        pytest.param(
            LEAST_CONN,
            {"127.0.50.2:8002": 1},
            {"127.0.50.1:8001", "127.0.50.3:8003"},
            1,
            ["127.0.50.2:8002"],
            id="lc-only-usable",
        ),
        pytest.param(
            LEAST_CONN,
            {},
            set(),
            3,
            ["127.0.50.1:8001", "127.0.50.2:8002", "127.0.50.3:8003"],
            id="lc-ties-rotate",
        ),
    ],
)
def test_policy_table(
    policy: str, active: dict[str, int], excluded: set[str], n: int, want: list[str | None]
) -> None:
    picker = Picker(policy, rng=random.Random(1))
    got = [picker.pick(EPS, active=active, excluded=excluded.__contains__) for _ in range(n)]
    assert keys(got) == want


def test_empty_endpoints() -> None:
    for policy in (ROUND_ROBIN, LEAST_CONN, P2C):
        assert Picker(policy).pick(()) is None


def test_unknown_policy() -> None:
    with pytest.raises(ValueError, match="unknown balancing policy"):
        Picker("random")


def test_p2c_prefers_less_loaded_and_never_picks_excluded() -> None:
    picker = Picker(P2C, rng=random.Random(7))
    active = {"127.0.50.1:8001": 100, "127.0.50.2:8002": 0, "127.0.50.3:8003": 100}
    got = Counter(keys([picker.pick(EPS, active=active) for _ in range(300)]))
    # The idle endpoint wins every pair it is in: 2 of 3 pairs.
    assert got["127.0.50.2:8002"] > 150
    excl = {"127.0.50.2:8002"}
    got = Counter(keys([picker.pick(EPS, active=active, excluded=excl.__contains__) for _ in range(100)]))
    assert "127.0.50.2:8002" not in got


def test_affinity_sticks_until_timeout_or_unusable() -> None:
    picker = Picker(ROUND_ROBIN, affinity_timeout=10.0)
    first = picker.pick(EPS, now=0.0, client_ip="10.0.0.1")
    assert first is not None
    for t in (1.0, 5.0, 14.0):  # each use refreshes the session
        assert picker.pick(EPS, now=t, client_ip="10.0.0.1") == first
    other = picker.pick(EPS, now=14.5, client_ip="10.0.0.2")
    assert other != first
    # Unusable (ejected) endpoint: a new one is chosen and remembered.
    moved = picker.pick(EPS, now=15.0, client_ip="10.0.0.1", excluded={first.key}.__contains__)
    assert moved is not None and moved != first
    assert picker.sessions()["10.0.0.1"] == moved.key
    # Expired.
    again = picker.pick(EPS, now=100.0, client_ip="10.0.0.1")
    assert again is not None


def test_affinity_drops_session_when_endpoint_leaves() -> None:
    picker = Picker(ROUND_ROBIN, affinity_timeout=10.0)
    first = picker.pick(EPS, now=0.0, client_ip="c")
    assert first is not None
    rest = tuple(e for e in EPS if e != first)
    assert picker.pick(rest, now=1.0, client_ip="c") in rest


def test_affinity_agrees_across_pickers() -> None:
    # Each lb worker process has its own Picker: a client's first connection to any of them must land
    # on the same endpoint, whatever each one picked before.
    eps = tuple(Endpoint(f"127.0.50.{i}", 8000 + i) for i in range(1, 11))
    a, b = Picker(ROUND_ROBIN, affinity_timeout=60.0), Picker(ROUND_ROBIN, affinity_timeout=60.0)
    b.pick(eps, now=0.0)
    b.pick(eps, now=0.0, client_ip="warm-up")
    clients = [f"10.0.{i // 250}.{i % 250}" for i in range(200)]
    got_a = [a.pick(eps, now=1.0, client_ip=c) for c in clients]
    got_b = [b.pick(eps, now=1.0, client_ip=c) for c in reversed(clients)][::-1]
    assert got_a == got_b
    assert len(set(got_a)) == len(eps)  # and clients spread over every endpoint
    # Without its endpoint, a client moves; the others keep theirs.
    first = got_a[0]
    assert first is not None
    rest = tuple(e for e in eps if e != first)
    c = Picker(ROUND_ROBIN, affinity_timeout=60.0)
    moved = [c.pick(rest, now=2.0, client_ip=ip) for ip in clients]
    assert all(m == g for m, g in zip(moved, got_a, strict=True) if g != first)


def test_ejections_expire_and_clear() -> None:
    ej = Ejections(5.0)
    ej.eject("a", now=10.0)
    assert ej.is_ejected("a", 12.0)
    assert not ej.is_ejected("b", 12.0)
    assert not ej.is_ejected("a", 15.0)
    ej.eject("a", now=20.0)
    ej.clear("a")
    assert not ej.is_ejected("a", 21.0)
    assert ej.ejected(21.0) == []


@given(k=st.integers(1, 8), n=st.integers(1, 20), start=st.integers(0, 50))
def test_round_robin_is_fair(k: int, n: int, start: int) -> None:
    """Round-robin over k endpoints for n*k picks gives each exactly n, from any cursor."""
    eps = tuple(Endpoint("127.0.50.1", 9000 + i) for i in range(k))
    picker = Picker(ROUND_ROBIN)
    for _ in range(start):
        picker.pick(eps)
    got = Counter(keys([picker.pick(eps) for _ in range(n * k)]))
    assert got == {e.key: n for e in eps}


@given(
    k=st.integers(1, 6),
    excluded=st.sets(st.integers(0, 5)),
    active=st.lists(st.integers(0, 5), min_size=6, max_size=6),
    policy=st.sampled_from([ROUND_ROBIN, LEAST_CONN, P2C]),
)
def test_pick_matches_brute_force(k: int, excluded: set[int], active: list[int], policy: str) -> None:
    """Never an excluded endpoint; None exactly when all are excluded; least-conn takes a minimum."""
    eps = tuple(Endpoint("127.0.50.1", 9000 + i) for i in range(k))
    ex = {eps[i].key for i in excluded if i < k}
    load = {eps[i].key: active[i] for i in range(k)}
    got = Picker(policy, rng=random.Random(0)).pick(eps, active=load, excluded=ex.__contains__)
    usable = [e for e in eps if e.key not in ex]
    if not usable:
        assert got is None
        return
    assert got in usable
    if policy == LEAST_CONN:
        assert load[got.key] == min(load[e.key] for e in usable)
