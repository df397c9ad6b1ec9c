"""The Kubernetes API server over a real in-process store: what a cluster in trouble answers.

- a master without a quorum keeps serving reads and answers a write 503 ServiceUnavailable with
  Retry-After (after the write's deadline), leaving its state as it was;
- a watch from a revision the history has dropped gets an ERROR event holding a 410 Status, as an
  informer expects before it relists.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from orchestrator.auth import Authenticator
from orchestrator.kubeapi.server import KubeApi, serve
from orchestrator.store.admission import Admission, Limits
from orchestrator.store.raft import RaftTiming, Store
from orchestrator.transport import ClientTLS

HEADERS = {"Authorization": "Bearer admin-token", "Content-Type": "application/json"}
CMS = "/api/v1/namespaces/default/configmaps"


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def cm(name: str) -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}).encode()


async def api_over(
    store: Store, admission: Admission | None = None
) -> tuple[aiohttp.ClientSession, str, web.AppRunner]:
    store.attach(asyncio.get_running_loop())
    api = KubeApi(
        store,
        Authenticator({"admin-token": "admin"}),
        lambda: True,
        agent_tls=ClientTLS.insecure(),
        admission=admission or Admission(),
    )
    runner, port = await serve(api, "127.0.60.41:0", None)
    return aiohttp.ClientSession(), f"http://127.0.60.41:{port}", runner


@pytest.fixture
async def lonely(tmp_path: Path) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    """A master whose two peers never answer: no leader, no quorum."""
    peers = [f"127.0.60.42:{free_port('127.0.60.42')}", f"127.0.60.43:{free_port('127.0.60.43')}"]
    store = Store(f"127.0.60.41:{free_port('127.0.60.41')}", peers, str(tmp_path / "m"), RaftTiming())
    session, base, runner = await api_over(store)
    try:
        yield session, base
    finally:
        await session.close()
        await runner.cleanup()
        store.destroy()


@pytest.fixture
async def alone(tmp_path: Path) -> AsyncIterator[tuple[aiohttp.ClientSession, str, Store]]:
    """A one-master cluster: its own leader."""
    store = Store(f"127.0.60.41:{free_port('127.0.60.41')}", [], str(tmp_path / "m"), RaftTiming())
    session, base, runner = await api_over(store)
    try:
        yield session, base, store
    finally:
        await session.close()
        await runner.cleanup()
        store.destroy()


async def test_no_quorum_is_503_with_retry_after_and_only_stale_reads_answer(
    lonely: tuple[aiohttp.ClientSession, str],
) -> None:
    """A master without a quorum refuses writes and linearizable reads (503, Retry-After: the client
    tries another master). This one never knew a leader, so it holds none of the cluster's state and
    refuses even a read that opts into staleness (resourceVersion=0), as an unsynced Kubernetes cache
    does; a master that lost its quorum after catching up serves those (tests/integration/
    test_consistent_reads.py)."""
    session, base = lonely
    async with session.post(base + CMS, data=cm("lost"), headers=HEADERS) as r:
        body = await r.json()
        assert r.status == 503 and r.headers.get("Retry-After") == "1", body
        assert body["kind"] == "Status" and body["reason"] == "ServiceUnavailable", body
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    async with session.get(base + CMS, headers=HEADERS) as r:
        body = await r.json()
        assert r.status == 503 and r.headers.get("Retry-After") == "1", body
        assert "could not confirm the read with a Raft leader" in body["message"], body
    assert loop.time() - t0 < 5  # within the read's bound (1.5 s), not a client timeout
    async with session.get(base + CMS + "?resourceVersion=0", headers=HEADERS) as r:
        body = await r.json()
        assert r.status == 503 and "not caught up with the cluster" in body["message"], body


async def test_a_watch_from_a_dropped_revision_gets_410(
    alone: tuple[aiohttp.ClientSession, str, Store],
) -> None:
    session, base, store = alone
    for i in range(5):
        for _ in range(50):  # the lone master elects itself within a second
            async with session.post(base + CMS, data=cm(f"c{i}"), headers=HEADERS) as r:
                if r.status == 201:
                    break
        assert r.status == 201
    # Keep only the newest two events: what a long-running cluster's bounded history does to an old
    # revision (reaching into the replica here spares the test 20,000 writes).
    with store._replica._lock:
        state = store._replica.state
        state.history = deque(list(state.history)[-2:], maxlen=2)
    async with session.get(
        base + CMS + "?watch=true&resourceVersion=1&timeoutSeconds=5", headers=HEADERS
    ) as r:
        assert r.status == 200
        lines = [json.loads(line) for line in (await r.read()).splitlines() if line.strip()]
    assert [e["type"] for e in lines] == ["ERROR"], lines
    status = lines[0]["object"]
    assert (status["code"], status["reason"]) == (410, "Expired"), status
    # From a revision the history still holds, the newest change arrives.
    rv = state.revision - 1
    async with session.get(
        base + CMS + f"?watch=true&resourceVersion={rv}&timeoutSeconds=1", headers=HEADERS
    ) as r:
        events = [json.loads(line) for line in (await r.read()).splitlines() if line.strip()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "c4")], events


async def test_over_the_limits_is_429_with_retry_after_and_nothing_written(tmp_path: Path) -> None:
    """No write slot and no stream left: a create and a watch are each refused 429 TooManyRequests,
    with Retry-After, and the refused create stored nothing."""
    store = Store(f"127.0.60.41:{free_port('127.0.60.41')}", [], str(tmp_path / "m"), RaftTiming())
    full = Admission(Limits(limit=0, queue=0, max_streams=0, retry_after=2))
    session, base, runner = await api_over(store, full)
    try:
        for request in (session.post(base + CMS, data=cm("refused"), headers=HEADERS),
                        session.get(base + CMS + "?watch=true", headers=HEADERS)):  # fmt: skip
            async with request as r:
                body = await r.json()
                assert r.status == 429 and r.headers.get("Retry-After") == "2", body
                assert body["reason"] == "TooManyRequests", body
                assert body["details"] == {"retryAfterSeconds": 2}, body
        async with session.get(base + CMS, headers=HEADERS) as r:
            assert r.status == 200 and (await r.json())["items"] == []
        assert (await store.digest())[0] == 0  # nothing reached Raft
    finally:
        await session.close()
        await runner.cleanup()
        store.destroy()


DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


async def test_null_fields_are_defaulted_and_a_bent_scale_patch_is_refused(
    alone: tuple[aiohttp.ClientSession, str, Store],
) -> None:
    """A Deployment whose `strategy.rollingUpdate` is null is created with the default (25%/25%), as
    Kubernetes decodes null; a JSON patch of its Scale that leaves metadata or spec not an object is
    422 Invalid, and the replicas stay as they were."""
    session, base, _ = alone
    labels = {"app": "f"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "f", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": None},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        },
    }
    for _ in range(50):  # the lone master elects itself within a second
        async with session.post(base + DEPLOYMENTS, data=json.dumps(deployment), headers=HEADERS) as r:
            body = await r.json()
            if r.status == 201:
                break
    assert r.status == 201, body
    assert body["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}
    patch_headers = {**HEADERS, "Content-Type": "application/json-patch+json"}
    bent: list[tuple[str, Any]] = [("/metadata", "x"), ("/spec", []), ("/metadata", None)]
    for path, value in bent:
        op = [{"op": "replace", "path": path, "value": value}]
        async with session.patch(
            base + DEPLOYMENTS + "/f/scale", data=json.dumps(op), headers=patch_headers
        ) as r:
            body = await r.json()
            # A null metadata is no metadata: the patch applies and sets the replicas it already had.
            assert (r.status, body["kind"]) == ((200, "Scale") if value is None else (422, "Status")), body
    async with session.get(base + DEPLOYMENTS + "/f", headers=HEADERS) as r:
        assert (await r.json())["spec"]["replicas"] == 1
