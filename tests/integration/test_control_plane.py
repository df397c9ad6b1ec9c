"""The control plane's guarantees with real master processes on loopback, killed for real."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import time

import grpc
import pytest

from orchestrator import errors
from orchestrator.client import ApiClient
from skiffpb import api_pb2 as api
from tests.integration.masters import MasterSet

pytestmark = pytest.mark.integration
_subnets = itertools.count(11)


@pytest.fixture
def masters(tmp_path):
    ms = MasterSet(tmp_path, f"127.0.{next(_subnets)}", extra=("--no-controllers",))
    ms.start_all()
    yield ms
    ms.close()
    print(ms.logs())  # pytest shows captured output only when the test failed


def cm(name: str, value: str = "v") -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"value": value}}


async def write_all(clients: list[ApiClient], names: list[str], acked: dict[str, str]) -> None:
    async def one(i: int, name: str) -> None:
        client = clients[i % len(clients)]
        obj = await client.create(cm(name, f"value-{name}"))
        acked[name] = obj["data"]["value"]

    await asyncio.gather(*(one(i, n) for i, n in enumerate(names)))


async def test_leader_kill_loses_nothing_and_restarted_master_catches_up(masters: MasterSet) -> None:
    admin = masters.client()
    leader = await masters.wait_leader(admin)
    # One client per master, so the 300 writes really are spread over all three.
    per_master = [masters.client(masters=[a] + [b for b in masters.api if b != a]) for a in masters.api]
    acked: dict[str, str] = {}
    await write_all(per_master, [f"before-{i}" for i in range(300)], acked)
    assert len(acked) == 300

    masters.kill(leader)
    killed_at = time.monotonic()
    survivors = [a for i, a in enumerate(masters.api) if i != leader]
    writer = masters.client(masters=survivors, timeout=10.0)
    await writer.create(cm("after-kill"))
    failover = time.monotonic() - killed_at
    print(f"new leader accepted a write {failover * 1000:.0f} ms after the leader was killed")
    assert failover < 2.0

    await write_all([writer], [f"during-{i}" for i in range(50)], acked)
    masters.start(leader)  # restarts from its journal and dump
    await masters.wait_leader(admin)
    await write_all([writer], [f"after-{i}" for i in range(50)], acked)
    await masters.wait_converged(admin)
    for address in masters.api:
        items, _ = await masters.client(masters=[address]).list("ConfigMap")
        stored = {o["metadata"]["name"]: o["data"]["value"] for o in items}
        missing = set(acked) - set(stored)
        assert not missing, f"{address} lost acknowledged writes: {sorted(missing)[:5]}"
        assert all(stored[k] == v for k, v in acked.items())


async def test_retried_request_id_is_applied_once(masters: MasterSet) -> None:
    client = masters.client()
    leader = await masters.wait_leader(client)
    # The first attempt's outcome is lost: with both followers stopped the leader appends the write but
    # cannot commit it, and the client gives up. The followers come back and the entry commits.
    req = api.WriteRequest(request_id="retry-me", object=json.dumps(cm("once")).encode())
    meta = (("authorization", "Bearer admin-token"),)
    followers = [masters.procs[i].pid for i in range(3) if i != leader]
    for pid in followers:
        os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as lost:
            await client.stub(masters.api[leader]).Create(req, metadata=meta, timeout=0.5)
    finally:
        for pid in followers:
            os.kill(pid, signal.SIGCONT)
    assert lost.value.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)
    first = await client.create(cm("once"), request_id="retry-me")
    again = await client.create(cm("once"), request_id="retry-me")
    assert first == again
    # A different id for the same name is a new write, and the name is taken.
    with pytest.raises(errors.AlreadyExists):
        await client.create(cm("once"))
    items, _ = await client.list("ConfigMap")
    assert [o["metadata"]["name"] for o in items].count("once") == 1


@pytest.mark.parametrize("pipelined", [True, False], ids=["write-stream", "unary"])
async def test_api_errors_map_to_status_codes(masters: MasterSet, pipelined: bool) -> None:
    admin = masters.client(pipelined=pipelined)
    await masters.wait_leader(admin)
    first = await admin.create(cm("cas", "1"))
    await admin.update({**first, "data": {"value": "2"}})
    with pytest.raises(errors.Conflict):
        await admin.update({**first, "data": {"value": "3"}})  # first's resourceVersion is stale now

    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "replicas": 1,
            "template": {"spec": {"containers": [{"name": "c", "image": "i", "imagee": "x"}]}},
        },
    }
    with pytest.raises(errors.Invalid, match="imagee"):
        await admin.create(bad)

    with pytest.raises(errors.Unauthenticated):
        await masters.client(token="wrong").list("ConfigMap")
    with pytest.raises(errors.Unauthenticated):
        await masters.client(token="wrong", pipelined=pipelined).create(cm("wrong-token"))
    no_token = ApiClient(masters.api, "", tls=masters.tls)
    no_token._metadata = ()  # type: ignore[assignment]  # deliberately no authorization entry at all
    with pytest.raises(errors.Unauthenticated):
        await no_token.list("ConfigMap")
    viewer = masters.client(token="viewer-token", pipelined=pipelined)
    assert (await viewer.get("ConfigMap", "default", "cas"))["data"]["value"] == "2"
    with pytest.raises(errors.PermissionDenied):
        await viewer.create(cm("viewer-write"))
    with pytest.raises(errors.NotFound):
        await admin.get("ConfigMap", "default", "viewer-write")


async def test_write_stream_matches_answers_is_exactly_once_and_fails_over(masters: MasterSet) -> None:
    client = masters.client()
    leader = await masters.wait_leader(client)
    # Many writes in flight on one stream: each caller gets the answer to its own write.
    names = [f"piped-{i}" for i in range(100)]
    objs = await asyncio.gather(*(client.create(cm(n, n)) for n in names))
    assert [o["metadata"]["name"] for o in objs] == names
    assert [o["data"]["value"] for o in objs] == names

    # A request id sent again on the stream is answered with the first outcome, applied once.
    first = await client.create(cm("stream-once"), request_id="stream-rid")
    again = await client.create(cm("stream-once"), request_id="stream-rid")
    assert again == first

    # A bad call is answered with its own error; the stream goes on serving the next one.
    call = client.stub().Write(metadata=(("authorization", "Bearer admin-token"),))
    body = json.dumps(cm("raw-1")).encode()
    await call.write(api.WriteCall(method="Delete", request=api.WriteRequest(request_id="r0", object=body)))
    await call.write(api.WriteCall(method="Create", request=api.WriteRequest(request_id="", object=body)))
    await call.write(api.WriteCall(method="Create", request=api.WriteRequest(request_id="r2", object=body)))
    await call.write(api.WriteCall(method="Apply", request=api.WriteRequest(request_id="r3", object=b"{")))
    await call.done_writing()
    results = {r.request_id: r async for r in call}
    assert results["r0"].code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "unknown write method" in results["r0"].message
    assert results[""].code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert results["r2"].code == 0 and json.loads(results["r2"].object)["metadata"]["name"] == "raw-1"
    assert results["r3"].code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert results["r3"].message.startswith("the object is not valid JSON")

    # Kill -9 the master a client streams to, with writes in flight: they all land elsewhere, once.
    victim = (leader + 1) % 3
    streaming = masters.client(
        masters=[masters.api[victim]] + [a for i, a in enumerate(masters.api) if i != victim]
    )
    acked: dict[str, str] = {}
    await write_all([streaming], [f"warm-{i}" for i in range(20)], acked)
    load = asyncio.ensure_future(write_all([streaming], [f"during-kill-{i}" for i in range(200)], acked))
    await asyncio.sleep(0.05)
    masters.kill(victim)
    await load
    masters.start(victim)
    await masters.wait_converged(client)
    items, _ = await masters.client(masters=[masters.api[victim]]).list("ConfigMap")
    stored = [o["metadata"]["name"] for o in items]
    assert len(stored) == len(set(stored))
    assert set(acked) <= set(stored)
    assert stored.count("stream-once") == 1


async def test_watch_resumes_on_another_master_without_gaps_or_repeats(masters: MasterSet) -> None:
    admin = masters.client()
    leader = await masters.wait_leader(admin)
    follower = next(i for i in range(3) if i != leader)
    others = [a for i, a in enumerate(masters.api) if i != follower]
    watcher = masters.client(masters=[masters.api[follower], *others])
    _, rv = await watcher.list("ConfigMap")
    seen: list[str] = []
    done = asyncio.Event()

    async def watch() -> None:
        async for ev in watcher.watch("ConfigMap", resource_version=rv):
            if ev.type == "BOOKMARK":
                continue
            assert ev.obj is not None
            seen.append(ev.obj["metadata"]["name"])
            if len(seen) == 60:
                done.set()
                return

    task = asyncio.create_task(watch())
    writer = masters.client(masters=others)
    for i in range(30):
        await writer.create(cm(f"w-{i}"))
    while len(seen) < 30:
        await asyncio.sleep(0.02)
    masters.kill(follower)  # the watch's master
    for i in range(30, 60):
        await writer.create(cm(f"w-{i}"))
    await asyncio.wait_for(done.wait(), 15)
    task.cancel()
    assert seen == [f"w-{i}" for i in range(60)]


async def test_follower_restarted_under_write_load_rejoins(masters: MasterSet) -> None:
    admin = masters.client()
    leader = await masters.wait_leader(admin)
    follower = next(i for i in range(3) if i != leader)
    others = [a for i, a in enumerate(masters.api) if i != follower]
    writer = masters.client(masters=others)
    acked: dict[str, str] = {}
    stop = asyncio.Event()

    async def load() -> None:
        i = 0
        while not stop.is_set():
            await write_all([writer], [f"load-{i}-{j}" for j in range(10)], acked)
            i += 1

    task = asyncio.create_task(load())
    await asyncio.sleep(1.0)
    masters.kill(follower, signal.SIGKILL)
    await asyncio.sleep(1.0)
    masters.start(follower)
    await asyncio.sleep(2.0)
    stop.set()
    await task
    await masters.wait_converged(admin, deadline=30)
    items, _ = await masters.client(masters=[masters.api[follower]]).list("ConfigMap")
    assert set(acked) <= {o["metadata"]["name"] for o in items}
    assert len(acked) > 100


async def test_limits_on_object_size_and_streams_per_credential(tmp_path) -> None:
    """A 3 MiB object is the largest stored (larger: refused, the state unchanged); a credential holding
    its limit of streams is refused another (RESOURCE_EXHAUSTED) while another credential is not."""
    ms = MasterSet(
        tmp_path, f"127.0.{next(_subnets)}", extra=("--no-controllers", "--max-streams-per-credential", "2")
    )
    ms.start_all()
    admin, viewer = ms.client(), ms.client(token="viewer-token")
    others = [ms.client() for _ in range(3)]  # more connections, the same (admin) credential
    try:
        await ms.wait_leader(admin)
        await admin.create(cm("small"))
        before = await ms.wait_converged(admin)
        with pytest.raises(errors.Invalid, match=r"the limit is 3145728 bytes"):
            await admin.create(cm("over-3mib", "x" * (3 * 1024 * 1024 + 1)))
        with pytest.raises(errors.TooManyRequests, match="larger than max"):
            await admin.create(cm("8mib", "x" * (8 * 1024 * 1024)))
        assert await ms.wait_converged(admin) == before  # nothing was proposed

        async def first_event(client: ApiClient, held: list) -> None:
            stream = client.watch("ConfigMap")
            held.append(stream)
            await anext(stream)

        held: list = []
        await first_event(admin, held)
        await first_event(others[0], held)
        with pytest.raises(errors.TooManyRequests, match="admin already holds 2 streams"):
            await first_event(others[1], held)
        await first_event(viewer, held)  # the viewer's credential has its own count
        await held[0].aclose()
        await asyncio.sleep(0.2)  # the master sees the stream end
        await first_event(others[2], held)  # a freed place can be taken again
        for stream in held:
            await stream.aclose()
    finally:
        for client in (admin, viewer, *others):
            await client.close()
        ms.close()
