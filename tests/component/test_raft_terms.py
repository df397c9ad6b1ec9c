"""Three real Stores in one process: a master left at a later term than the leader's rejoins.

A master that raises its term in an election it then loses (its pre-vote round won, its vote requests
refused because the others heard from the leader again) is a term ahead of the leader. PySyncObj's
follower ignores appends of an older term, and Skiff's stickiness and pre-vote refuse a master that
cannot win, so before the term notice (store/raft.py, `_on_term_notice`) that master never applied
another entry: a CI chaos run ended with one master at revision 7,000 and the others at 10,862.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from orchestrator import errors
from orchestrator.store import commands
from orchestrator.store.raft import RaftTiming, Store

HOST = "127.0.60.71"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def config_map(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}", "namespace": "default"}}


async def until(what: str, check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout:g}s: {what}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[list[Store]]:
    addresses = [f"{HOST}:{free_port()}" for _ in range(3)]
    made: list[Store] = []
    try:
        for i, me in enumerate(addresses):
            made.append(Store(me, [a for a in addresses if a != me], str(tmp_path / f"m{i}"), RaftTiming()))
        for store in made:
            store.attach(asyncio.get_running_loop())
        yield made
    finally:
        for store in made:
            store.destroy()


async def write(stores: list[Store], first: int, count: int) -> None:
    """`count` ConfigMaps through whichever master leads, retried across a leader change."""
    for i in range(first, first + count):
        deadline = time.monotonic() + 10
        while True:
            leader = next((s for s in stores if s.is_leader()), None)
            if leader is not None:
                try:
                    await leader.propose(
                        commands.create(config_map(i), uid=f"u{i}", now=time.time(), rid=f"r{i}")
                    )
                    break
                except (errors.Unavailable, errors.AlreadyExists):
                    if leader.get("ConfigMap", "default", f"cm-{i}") is not None:
                        break
            assert time.monotonic() < deadline, f"write {i} found no leader in 10 s"
            await asyncio.sleep(0.05)


async def test_a_master_a_term_ahead_of_the_leader_catches_up(stores: list[Store]) -> None:
    await until("a leader", lambda: any(s.is_leader() for s in stores))
    await write(stores, 0, 20)
    leader = next(s for s in stores if s.is_leader())
    ahead = next(s for s in stores if not s.is_leader())
    await until("the followers caught up", lambda: all(s.revision == leader.revision for s in stores))

    # What a lost election leaves: a term past the leader's, and no vote request that reached anyone.
    term = leader.term
    ahead._sync._SyncObj__setCurrentTerm(term + 1, None)

    await write(stores, 20, 20)
    now_leader = next(s for s in stores if s.is_leader())
    await until(
        "the master a term ahead applied the later writes",
        lambda: all(s.revision == now_leader.revision for s in stores),
    )
    assert ahead.get("ConfigMap", "default", "cm-39") is not None
    assert now_leader.term > term + 1  # settled by an election at a later term
    assert len({s.term for s in stores}) == 1
