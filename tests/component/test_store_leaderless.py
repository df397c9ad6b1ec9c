"""A real single-master Store before and after it knows a leader: what it says about "no leader
known" holds the moment it is asked, and it serves no read, not even a stale one, before it has
caught up once since it started.

The gateway ends an agent's stream, and a watch ends, when their master has known no Raft leader for
a while (Store.cut_off, Store.leaderless_for). A 0.1 s tracker on the event loop keeps that state; a
stream opened right after an election, before the tracker ran again, was handed the leaderless
spell's event, already set, and ended at once ("known no Raft leader for 0.9s", a CI failure of
test_node_gateway)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from orchestrator import errors
from orchestrator.store import commands, watch
from orchestrator.store.raft import RaftTiming, Store

HOST = "127.0.60.72"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


async def test_a_leader_elected_since_the_last_look_is_seen_at_once(tmp_path: Path) -> None:
    slow = RaftTiming(min_timeout=1.5, max_timeout=1.6, connection_timeout=1.6)  # elects itself after ~1.5 s
    store = Store(f"{HOST}:{free_port()}", [], str(tmp_path / "raft"), slow)
    try:
        store.attach(asyncio.get_running_loop())
        async with asyncio.timeout(5):
            while not store.cut_off().is_set():
                await asyncio.sleep(0.05)
        assert not store.leader(), "cut off only while leaderless"
        # Wait for the election without yielding to the loop, so its tracker cannot run meanwhile.
        deadline = time.monotonic() + 5
        while not store.leader():
            assert time.monotonic() < deadline, "the single master never elected itself"
            time.sleep(0.01)
        assert not store.cut_off().is_set(), "a stream opened now would be ended at once"
        assert store.leaderless_for() == 0.0
    finally:
        store.destroy()


async def test_a_restarted_master_serves_no_read_before_it_caught_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """resourceVersion "0" is any state the cluster had. Restarted, a master holds its journal but has
    not caught up until a leader (here: itself, once elected) tells it what is committed; a read
    answered before its first tick said NotFound for an object that exists."""
    address = f"{HOST}:{free_port()}"
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept", "namespace": "default"}}
    store = Store(address, [], str(tmp_path / "raft"), RaftTiming())
    try:
        store.attach(asyncio.get_running_loop())
        await store.propose(commands.create(cm, uid="u1", now=time.time(), rid="r1"), timeout=10)
    finally:
        store.destroy()
    await asyncio.sleep(0.2)  # the old instance's port is released
    monkeypatch.setattr(watch, "CATCH_UP_WAIT", 0.3)
    slow = RaftTiming(min_timeout=1.5, max_timeout=1.6, connection_timeout=1.6)
    store = Store(address, [], str(tmp_path / "raft"), slow)
    try:
        store.attach(asyncio.get_running_loop())
        assert not store.ready()
        with pytest.raises(errors.Unavailable, match="not caught up"):
            await watch.fresh(store, "0")
        monkeypatch.setattr(watch, "CATCH_UP_WAIT", 5.0)
        await watch.fresh(store, "0")  # waits for the election and the replay
        assert store.get("ConfigMap", "default", "kept") is not None
    finally:
        store.destroy()
