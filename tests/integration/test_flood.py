"""A client flooding writes cannot starve the cluster: 64 write streams, each keeping as many writes
in flight as it can, for 30 s against a `skiff up` cluster. The agents' heartbeats are exempt from the
API's admission, so every node stays Ready throughout; the flood is answered RESOURCE_EXHAUSTED (with
a retry hint) rather than left to time out; and the cluster is unchanged by the writes it refused."""

from __future__ import annotations

import asyncio
import collections
import json
import time
import uuid
from typing import Any

import grpc
import pytest

from skiffpb import api_pb2 as api
from skiffpb import api_pb2_grpc as api_grpc
from tests.integration.cluster import Cluster

pytestmark = pytest.mark.integration

STREAMS = 64
IN_FLIGHT = 64  # writes each stream keeps unanswered: "as fast as it can"
SECONDS = 30.0
ANSWER_WITHIN = 10.0  # a write unanswered this long counts as a timeout


@pytest.fixture(scope="module")
def cluster(module_cluster_factory: Any) -> Cluster:
    return module_cluster_factory(masters=3, workers=3, lb=False)


def cm(name: str) -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}).encode()


async def flood_stream(
    channel: grpc.aio.Channel,
    token: str,
    end: float,
    codes: collections.Counter[str],
    late: list[float],
    messages: dict[str, str],
) -> None:
    """One Write stream: keep IN_FLIGHT creates unanswered until `end`, then wait for every answer."""
    call = api_grpc.ApiStub(channel).Write(metadata=(("authorization", f"Bearer {token}"),))
    sent: dict[str, float] = {}
    room = asyncio.Semaphore(IN_FLIGHT)
    done_writing = asyncio.Event()

    async def read() -> None:
        async for result in call:
            took = time.monotonic() - sent.pop(result.request_id)
            codes["slowest answer ms"] = max(codes["slowest answer ms"], int(took * 1000))
            if took > ANSWER_WITHIN:
                late.append(took)
            name = grpc.StatusCode.OK.name if not result.code else _name(result.code)
            codes[name] += 1
            messages.setdefault(name, result.message)
            room.release()
            if done_writing.is_set() and not sent:
                return

    reader = asyncio.create_task(read())
    try:
        while time.monotonic() < end:
            await room.acquire()
            rid = uuid.uuid4().hex
            sent[rid] = time.monotonic()
            await call.write(
                api.WriteCall(
                    method="Create", request=api.WriteRequest(request_id=rid, object=cm(f"flood-{rid[:12]}"))
                )
            )
        done_writing.set()
        await asyncio.wait_for(reader, ANSWER_WITHIN)
    finally:
        reader.cancel()
        call.cancel()
    codes["unanswered"] += len(sent)


_NAMES = {c.value[0]: c.name for c in grpc.StatusCode}


def _name(code: int) -> str:
    return _NAMES.get(code, str(code))


def ready_nodes(nodes: list[dict[str, Any]]) -> set[str]:
    return {
        n["metadata"]["name"]
        for n in nodes
        if any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in n["status"].get("conditions", [])
        )
    }


async def test_a_write_flood_is_refused_and_nodes_stay_ready(cluster: Cluster) -> None:
    token = cluster.token("admin")
    tls = cluster.tls()
    masters = cluster.master_addresses
    async with cluster.client("viewer") as watcher:
        nodes, _ = await watcher.list("Node")
        all_nodes = ready_nodes(nodes)
        assert len(all_nodes) == 3
        configmaps_before = len((await watcher.list("ConfigMap"))[0])
        codes: collections.Counter[str] = collections.Counter()
        late: list[float] = []
        messages: dict[str, str] = {}  # one message per status code, for the report
        channels = [tls.channel(masters[i % len(masters)]) for i in range(STREAMS)]
        end = time.monotonic() + SECONDS
        not_ready: list[tuple[float, set[str]]] = []

        async def sample() -> None:
            t0 = time.monotonic()
            while time.monotonic() < end:
                try:
                    nodes, _ = await watcher.list("Node")
                except Exception as e:  # noqa: BLE001 - a read that fails is recorded, not fatal
                    not_ready.append((time.monotonic() - t0, {f"list failed: {e}"}))
                else:
                    missing = all_nodes - ready_nodes(nodes)
                    if missing:
                        not_ready.append((time.monotonic() - t0, missing))
                await asyncio.sleep(0.5)

        try:
            await asyncio.gather(
                sample(), *(flood_stream(ch, token, end, codes, late, messages) for ch in channels)
            )
        finally:
            for ch in channels:
                await ch.close(grace=None)
        print(f"flood answers: {dict(codes)}; late answers: {len(late)}; messages: {messages}")
        assert not not_ready, f"nodes went NotReady during the flood: {not_ready[:5]}"
        assert codes["RESOURCE_EXHAUSTED"] > 0, codes
        assert codes["OK"] > 0, codes
        assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED", "unanswered", "slowest answer ms"}, (
            codes,
            messages,
        )
        assert codes["unanswered"] == 0 and not late, (codes, late[:5])
        # Every refused write left nothing behind; every accepted one is stored.
        configmaps_after = len((await watcher.list("ConfigMap"))[0])
        assert configmaps_after - configmaps_before == codes["OK"]
