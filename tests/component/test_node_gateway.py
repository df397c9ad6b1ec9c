"""The master's NodeGateway (orchestrator.api.gateway) in-process, on a real single-master Store, with
raw client streams: an open stream is renewed only while its agent speaks and its token is valid, and
a master whose renewals stop committing ends its streams so that the agents move elsewhere.

The intervals are shortened here (monkeypatch on the module's constants); the master runs the same
code with STREAM_SILENT_AFTER 25 s and RENEW_GIVE_UP 2 s."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from orchestrator import errors
from orchestrator.api import gateway
from orchestrator.auth import Authenticator
from orchestrator.store.raft import RaftTiming, Store
from orchestrator.transport import FAILED_MASTERS
from skiffpb import api_pb2 as api
from skiffpb import api_pb2_grpc as api_grpc

HOST = "127.0.60.53"
TOKENS = {"node-a-token": "node:a", "node-b-token": "node:b"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Master:
    def __init__(
        self, store: Store, servicer: gateway.NodeGatewayServicer, address: str, tokens: Path
    ) -> None:
        self.store, self.servicer, self.address, self.tokens = store, servicer, address, tokens


@contextlib.asynccontextmanager
async def running_master(tmp_path: Path) -> AsyncIterator[Master]:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps(TOKENS))
    store = Store(f"{HOST}:{free_port()}", [], str(tmp_path / "raft"), RaftTiming())
    server = grpc.aio.server()
    try:
        store.attach(asyncio.get_running_loop())
        async with asyncio.timeout(10):
            while not store.leader():
                await asyncio.sleep(0.05)
        servicer = gateway.NodeGatewayServicer(store, Authenticator.from_file(str(tokens)))
        api_grpc.add_NodeGatewayServicer_to_server(servicer, server)
        port = server.add_insecure_port(f"{HOST}:0")
        await server.start()
        yield Master(store, servicer, f"{HOST}:{port}", tokens)
    finally:
        await server.stop(0)
        store.destroy()


@pytest.fixture
async def master(tmp_path: Path) -> AsyncIterator[Master]:
    async with running_master(tmp_path) as m:
        yield m


async def connect(channel: grpc.aio.Channel, node: str, token: str) -> Any:
    call = api_grpc.NodeGatewayStub(channel).Connect(metadata=(("authorization", f"Bearer {token}"),))
    registered = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}, "status": {}}
    await call.write(api.AgentMessage(register=json.dumps(registered).encode()))
    return call


async def ended(call: Any, within: float) -> tuple[grpc.StatusCode, str]:
    """Read until the stream ends; its status code and details."""
    async with asyncio.timeout(within):
        try:
            while await call.read() is not grpc.aio.EOF:
                pass
        except grpc.aio.AioRpcError as e:
            return e.code(), e.details() or ""
    return await call.code(), await call.details()


async def renewed_after(store: Store, node: str, since: float, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if store.heartbeats().get(node, 0.0) > since:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_silent_stream_is_ended_and_not_renewed_while_a_speaking_one_is(
    master: Master, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway, "STREAM_SILENT_AFTER", 1.5)
    async with grpc.aio.insecure_channel(master.address) as channel:
        silent = await connect(channel, "a", "node-a-token")
        speaking = await connect(channel, "b", "node-b-token")
        assert await renewed_after(master.store, "a", time.time(), 2), "an open stream is renewed"

        async def heartbeat() -> None:
            for seq in range(1, 1000):
                await speaking.write(api.AgentMessage(heartbeat=api.Heartbeat(seq=seq)))
                await asyncio.sleep(0.3)

        beats = asyncio.create_task(heartbeat())
        try:
            code, details = await ended(silent, 4)
            assert code == grpc.StatusCode.UNAVAILABLE and "no message from the agent" in details, details
            gone_at = time.time()
            await asyncio.sleep(1.0)
            assert master.store.heartbeats()["a"] <= gone_at, "the silent node is renewed no more"
            assert await renewed_after(master.store, "b", gone_at + 0.5, 2), "the speaking node still is"
            assert master.servicer.connected == 1
        finally:
            beats.cancel()
            speaking.cancel()


async def test_a_revoked_token_ends_its_stream_without_a_message(master: Master) -> None:
    async with grpc.aio.insecure_channel(master.address) as channel:
        call = await connect(channel, "a", "node-a-token")
        other = await connect(channel, "b", "node-b-token")
        assert await renewed_after(master.store, "a", time.time(), 2)
        master.tokens.write_text(json.dumps({"node-b-token": TOKENS["node-b-token"]}))
        code, details = await ended(call, 5)  # the tokens file is looked at every second
        assert code == grpc.StatusCode.UNAUTHENTICATED and "revoked" in details, (code, details)
        assert master.servicer.connected == 1
        other.cancel()


async def connect_both(master: Master, channel: grpc.aio.Channel) -> list[Any]:
    """Streams for nodes a and b, once the master holds both."""
    calls = [await connect(channel, "a", "node-a-token"), await connect(channel, "b", "node-b-token")]
    async with asyncio.timeout(3):
        while master.servicer.connected != 2:
            await asyncio.sleep(0.02)
    return calls


async def test_renewals_that_do_not_commit_end_every_stream(
    master: Master, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway, "RENEW_GIVE_UP", 1.0)
    async with grpc.aio.insecure_channel(master.address) as channel:
        calls = await connect_both(master, channel)
        assert await renewed_after(master.store, "b", time.time(), 2)

        async def stuck(holder: str, set_id: int, nodes: list[str] | None, timeout: float = 5.0) -> None:
            await asyncio.sleep(min(timeout, 0.2))
            raise errors.Unavailable("write not committed in time (no quorum?); retry")

        monkeypatch.setattr(master.servicer.writer, "renew", stuck)
        for call in calls:
            code, details = await ended(call, 4)
            assert code == grpc.StatusCode.UNAVAILABLE and "renewals have not committed" in details, details
        # The last renewal that committed was stamped before it committed, and the streams end
        # RENEW_GIVE_UP after that commit.
        silent = time.time() - master.store.heartbeats()["b"]
        assert 1.0 <= silent < 3.0, silent
        assert master.servicer.connected == 0


async def test_renewals_slower_than_the_interval_still_land_an_interval_apart(
    master: Master, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loaded Raft log: every renewal takes 1.2 s to commit (more than two intervals). The next
    renewal does not wait for it, so once the first slow one lands the node's news lands about every
    RENEW_INTERVAL again (one after another they would land 1.7 s apart, most of the node grace),
    and the stream stays open."""
    async with grpc.aio.insecure_channel(master.address) as channel:
        call = await connect(channel, "a", "node-a-token")
        assert await renewed_after(master.store, "a", time.time(), 2)
        commit = master.servicer.writer.renew

        async def slow(holder: str, set_id: int, nodes: list[str] | None, timeout: float = 5.0) -> None:
            await asyncio.sleep(1.2)
            await commit(holder, set_id, nodes, timeout=timeout)

        monkeypatch.setattr(master.servicer.writer, "renew", slow)
        landed: list[float] = []
        last = master.store.heartbeats()["a"]
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            beat = master.store.heartbeats()["a"]
            if beat != last:
                landed.append(time.monotonic())
                last = beat
            await asyncio.sleep(0.02)
        steady = landed[1:]  # from the first slow renewal to land on
        gaps = [b - a for a, b in zip(steady, steady[1:], strict=False)]
        assert len(gaps) >= 4 and max(gaps) < 1.0, (landed, gaps)
        assert master.servicer.connected == 1
        call.cancel()


async def test_pod_events_lost_from_the_history_still_reach_the_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twenty pods bound in one Raft entry, with a history of five events: the store cannot hand the
    gateway those events (TooOld), so it tells every subscriber to resync (RESYNC), and the node's
    stream is assigned all twenty anyway."""
    from orchestrator.store import commands
    from orchestrator.store import state as st

    monkeypatch.setattr(st, "HISTORY_LIMIT", 5)
    seen: list[str] = []
    async with running_master(tmp_path) as master:
        store = master.store
        store.subscribe(lambda etype, obj: seen.append(etype))
        async with grpc.aio.insecure_channel(master.address) as channel:
            call = await connect(channel, "a", "node-a-token")
            first = await call.read()
            while not first.HasField("assignment"):
                first = await call.read()
            assert list(first.assignment.pods) == []
            pods = [
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": f"p{i}", "namespace": "default"},
                    "spec": {"nodeName": "a", "containers": [{"name": "c", "image": "pause"}]},
                }
                for i in range(20)
            ]
            await asyncio.gather(
                *(
                    store.propose(commands.create(p, uid=f"u{i}", now=time.time(), rid=f"r{i}"))
                    for i, p in enumerate(pods)
                )
            )
            names: set[str] = set()
            async with asyncio.timeout(5):
                while len(names) < 20:
                    msg = await call.read()
                    if msg.HasField("assignment"):
                        names |= {json.loads(p)["metadata"]["name"] for p in msg.assignment.pods}
            assert "RESYNC" in seen, "the events fit the history: this test proves nothing"
            call.cancel()


async def connect_having_failed(channel: grpc.aio.Channel, node: str, token: str, failed: int) -> Any:
    return await connect_having_failed_as(channel, node, token, str(failed))


async def connect_having_failed_as(channel: grpc.aio.Channel, node: str, token: str, failed: str) -> Any:
    """A Connect whose failure count is `failed`, as sent (well-formed or not), then its register."""
    call = api_grpc.NodeGatewayStub(channel).Connect(
        metadata=(("authorization", f"Bearer {token}"), (FAILED_MASTERS, failed))
    )
    registered = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}, "status": {}}
    await call.write(api.AgentMessage(register=json.dumps(registered).encode()))
    return call


def lead_a_cluster_of_three(master: Master, monkeypatch: pytest.MonkeyPatch) -> None:
    """The single master as the leader of three with both others connected (what the gateway asks)."""
    monkeypatch.setattr(master.store, "members", lambda: 3)
    monkeypatch.setattr(master.store, "peers_connected", lambda: 2)


async def test_a_leader_with_followers_refuses_agents_that_have_not_tried_them(
    master: Master, monkeypatch: pytest.MonkeyPatch
) -> None:
    lead_a_cluster_of_three(master, monkeypatch)
    async with grpc.aio.insecure_channel(master.address) as channel:
        for failed in (0, 1):  # a fresh agent, and one whose last master failed (not yet both others)
            call = await connect_having_failed(channel, "a", "node-a-token", failed)
            code, details = await ended(call, 3)
            assert code == grpc.StatusCode.UNAVAILABLE and "Raft leader" in details, (code, details)
        assert master.store.get("Node", "", "a") is None  # refused before registering
        last_resort = await connect_having_failed(channel, "a", "node-a-token", 2)
        since = time.time()
        async with asyncio.timeout(3):  # taken: it tried them all
            while master.servicer.connected != 1:
                await asyncio.sleep(0.02)
        assert await renewed_after(master.store, "a", since, 3)  # and renewed, not shed
        assert master.servicer.connected == 1
        last_resort.cancel()


async def test_a_leader_counts_a_malformed_failure_count_as_none_and_keeps_serving(
    master: Master, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent's count of failed masters is read as an integer; anything else (not a number, a
    negative one, a number past Python's digit limit, nothing) counts as 0: refused, one line, and the
    master goes on serving (a well-formed last resort is taken after them)."""
    lead_a_cluster_of_three(master, monkeypatch)
    async with grpc.aio.insecure_channel(master.address) as channel:
        for bad in ("two", "-3", "", " ", "1.5", "0x2", "9" * 5000):
            call = await connect_having_failed_as(channel, "a", "node-a-token", bad)
            code, details = await ended(call, 3)
            assert code == grpc.StatusCode.UNAVAILABLE and "Raft leader" in details, (bad[:8], code, details)
        assert master.store.get("Node", "", "a") is None
        taken = await connect_having_failed(channel, "a", "node-a-token", 2)
        async with asyncio.timeout(3):
            while master.servicer.connected != 1:
                await asyncio.sleep(0.02)
        taken.cancel()


async def test_a_master_that_becomes_leader_ends_its_agents_streams(
    master: Master, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with grpc.aio.insecure_channel(master.address) as channel:
        call = await connect(channel, "a", "node-a-token")
        assert await renewed_after(master.store, "a", time.time(), 3)
        lead_a_cluster_of_three(master, monkeypatch)  # an election made it leader, the others are up
        code, details = await ended(call, 3)
        assert code == grpc.StatusCode.UNAVAILABLE and "Raft leader" in details, (code, details)
        assert master.servicer.connected == 0


async def test_the_leader_ends_a_last_resort_stream_after_a_while(
    master: Master, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Taken because the followers failed the agent, a stream is sent back to try them after
    LAST_RESORT_FOR, so agents do not stay on the leader once the followers answer again."""
    monkeypatch.setattr(gateway, "LAST_RESORT_FOR", 1.0)
    lead_a_cluster_of_three(master, monkeypatch)
    async with grpc.aio.insecure_channel(master.address) as channel:
        call = await connect_having_failed(channel, "a", "node-a-token", 2)
        started = time.monotonic()
        code, details = await ended(call, 4)
        assert code == grpc.StatusCode.UNAVAILABLE and "Raft leader" in details, (code, details)
        assert time.monotonic() - started >= 1.0


async def test_a_new_leader_ends_its_streams_a_few_at_a_time(
    master: Master, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway, "SHED_PER_PASS", 1)
    async with grpc.aio.insecure_channel(master.address) as channel:
        calls = await connect_both(master, channel)
        lead_a_cluster_of_three(master, monkeypatch)
        first = asyncio.create_task(ended(calls[0], 4))
        second = asyncio.create_task(ended(calls[1], 4))
        done, _ = await asyncio.wait([first, second], return_when=asyncio.FIRST_COMPLETED)
        at = time.monotonic()
        await asyncio.gather(first, second)
        assert time.monotonic() - at >= 0.3  # one per renewal pass (RENEW_INTERVAL 0.5 s)
