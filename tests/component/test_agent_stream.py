"""The agent's NodeGateway stream against fake gateways (grpc.aio on port 0): register, assignment,
status reports with acks, failover; and the Agent Logs service."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from agents.agent import AgentServicer, HollowRunner, NodeSession, NodeSpec, Tokens
from agents.runtime import ContainerRuntime, Isolation, RuntimeConfig, stop_state_dir
from orchestrator.transport import ClientTLS
from skiffpb import api_pb2 as api
from skiffpb import api_pb2_grpc as api_grpc

ADDRESS = "127.0.60.2"
TOKEN = "node-token"
PLAINTEXT = ClientTLS.insecure()  # the fake gateways here are in-process plaintext servers


class FakeGateway(api_grpc.NodeGatewayServicer):
    """Records what agents send; sends `pods` as the assignment; acks every heartbeat unless `silent`."""

    def __init__(self, pods: list[dict]) -> None:
        self.pods = pods
        self.registered: list[dict] = []
        self.updates: list[api.PodStatusUpdate] = []
        self.node_statuses: list[dict] = []
        self.silent = False
        self.server: grpc.aio.Server | None = None
        self.address = ""

    async def start(self) -> str:
        self.server = grpc.aio.server()
        api_grpc.add_NodeGatewayServicer_to_server(self, self.server)
        port = self.server.add_insecure_port(f"{ADDRESS}:0")
        await self.server.start()
        self.address = f"{ADDRESS}:{port}"
        return self.address

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(0)

    # Reads and writes through `context` (grpc.aio's reader/writer API), which the generated servicer stub
    # does not type: it only has the iterator form of a stream handler.
    async def Connect(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:  # type: ignore[override]
        md = dict(context.invocation_metadata() or ())
        if md.get("authorization") != f"Bearer {TOKEN}":
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token")
        first = await context.read()
        self.registered.append(json.loads(first.register))
        await context.write(
            api.MasterMessage(assignment=api.PodAssignment(pods=[json.dumps(p).encode() for p in self.pods]))
        )
        while True:
            msg = await context.read()
            if msg is grpc.aio.EOF:
                return
            hb = msg.heartbeat
            self.updates.extend(hb.pods)
            if hb.node_status:
                self.node_statuses.append(json.loads(hb.node_status))
            if not self.silent:
                await context.write(api.MasterMessage(ack=api.HeartbeatAck(seq=hb.seq)))

    def latest(self, name: str) -> dict | None:
        for u in reversed(self.updates):
            if u.name == name and u.status:
                return json.loads(u.status)
        return None


def demo_pod(name: str) -> dict:
    return {
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": "5"},
        "spec": {
            "nodeName": "w1",
            "terminationGracePeriodSeconds": 2,
            "containers": [{"name": "web", "image": "demo", "ports": [{"containerPort": 80}]}],
        },
    }


def is_ready(st: dict | None) -> bool:
    if not st:
        return False
    return any(c["type"] == "Ready" and c["status"] == "True" for c in st["conditions"])


async def until(pred: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        await asyncio.sleep(0.01)
    raise AssertionError(f"condition not met in {timeout}s")


@pytest.fixture
async def gateways() -> AsyncIterator[list[FakeGateway]]:
    gws = [FakeGateway([demo_pod("p1")]), FakeGateway([demo_pod("p1")])]
    for g in gws:
        await g.start()
    try:
        yield gws
    finally:
        for g in gws:
            await g.stop()


async def test_register_run_report_and_fail_over(gateways: list[FakeGateway], tmp_path: Path) -> None:
    a, b = gateways
    spec = NodeSpec("w1", ADDRESS, "2", "4Gi", 110, {"zone": "x"}, 1234, "none")
    session = NodeSession(spec, [a.address, b.address], TOKEN, tls=PLAINTEXT, heartbeat=0.2)
    runtime = ContainerRuntime(
        RuntimeConfig(tmp_path / "state", "w1", ADDRESS, isolation=Isolation()), session.report
    )
    session.runner = runtime
    tasks = [asyncio.create_task(runtime.run()), asyncio.create_task(session.run())]
    try:
        await until(lambda: a.registered)
        node = a.registered[0]
        assert (
            node["metadata"]["name"] == "w1"
            and node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 1234
        )
        st = await until(lambda: is_ready(a.latest("p1")) and a.latest("p1"))
        assert st["phase"] == "Running" and st["portMappings"][0]["hostIP"] == ADDRESS
        await until(lambda: len(session.queue) == 0, 3)  # acked
        pid = json.loads((tmp_path / "state/pods/uid-p1/web/run.json").read_text())["pid"]

        t0 = time.monotonic()
        await a.stop()
        await until(lambda: b.registered, 3)
        failover = time.monotonic() - t0
        assert failover < 3.0
        await until(lambda: session.connected.is_set() and session.current_master == b.address, 3)
        # Same container, still running; B learns the status (a new stream resends what it needs).
        assert json.loads((tmp_path / "state/pods/uid-p1/web/run.json").read_text())["pid"] == pid
        assert b.node_statuses, "node status is sent on every new stream"
        print(f"failover {failover * 1000:.0f} ms")
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.to_thread(stop_state_dir, tmp_path / "state", 1.0)


async def test_silent_master_is_left_and_unacked_updates_resent(gateways: list[FakeGateway]) -> None:
    a, b = gateways
    a.silent = True
    session = NodeSession(
        NodeSpec("w1", ADDRESS, "2", "4Gi"), [a.address, b.address], TOKEN, tls=PLAINTEXT, heartbeat=0.2
    )
    session.runner = HollowRunner(session, ADDRESS)
    task = asyncio.create_task(session.run())
    try:
        await until(lambda: a.registered)
        await until(lambda: a.latest("p1"))
        t0 = time.monotonic()
        await until(lambda: b.registered, 3)
        assert time.monotonic() - t0 < 1.5  # 3 heartbeats of silence
        st = await until(lambda: b.latest("p1"))
        assert st["phase"] == "Running" and is_ready(st)
        await until(lambda: len(session.queue) == 0, 2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_master_that_never_acks_is_left_before_the_silence_rule(
    gateways: list[FakeGateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A master whose loop hangs still answers pings (its C core) and its stream stays open: the
    agent leaves it when a heartbeat has no ack for ACK_TIMEOUT (1 s here, 6 s in use), long before
    `3 x heartbeat` (30 s) of silence."""
    import agents.agent

    monkeypatch.setattr(agents.agent, "ACK_TIMEOUT", 1.0)
    a, b = gateways
    a.silent = True
    session = NodeSession(NodeSpec("w1", ADDRESS, "2", "4Gi"), [a.address, b.address], TOKEN, tls=PLAINTEXT)
    assert session.heartbeat == 10.0
    task = asyncio.create_task(session.run())
    try:
        await until(lambda: a.registered)
        t0 = time.monotonic()
        await until(lambda: b.registered, 5)
        assert 0.5 < time.monotonic() - t0 < 3.0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_hollow_node_reports_deletion(gateways: list[FakeGateway]) -> None:
    a, _ = gateways
    deleting = demo_pod("p1")
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    session = NodeSession(
        NodeSpec("h-0", ADDRESS, "2", "4Gi"), [a.address], TOKEN, tls=PLAINTEXT, heartbeat=0.2
    )
    runner = HollowRunner(session, ADDRESS)
    session.runner = runner
    task = asyncio.create_task(session.run())
    try:
        await until(lambda: a.latest("p1"))
        runner.set_assignment([deleting])
        await until(lambda: any(u.deleted for u in a.updates), 2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class StaticLogs:
    def __init__(self, files: list[Path], running: list[bool]) -> None:
        self.files = files
        self.running = running

    def log_files(self, namespace: str, pod: str, container: str, previous: bool) -> Any:
        if pod != "p1":
            raise LookupError(f'pods "{pod}" not found')
        return self.files, lambda: self.running[0]


async def test_logs_service_tail_follow_and_auth(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(b"one\ntwo\nthree\n")
    running = [True]
    server = grpc.aio.server()
    api_grpc.add_AgentServicer_to_server(
        AgentServicer(
            StaticLogs([tmp_path / "log.1", log], running), Tokens([TOKEN, "admin-token"]), poll=0.02
        ),
        server,
    )
    port = server.add_insecure_port(f"{ADDRESS}:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"{ADDRESS}:{port}") as ch:
            stub = api_grpc.AgentStub(ch)
            md = (("authorization", "Bearer admin-token"),)
            got = b"".join(
                [c.data async for c in stub.Logs(api.LogsRequest(pod="p1", tail_lines=2), metadata=md)]
            )
            assert got == b"two\nthree\n"
            with pytest.raises(grpc.aio.AioRpcError) as e:
                [
                    c
                    async for c in stub.Logs(
                        api.LogsRequest(pod="p1", tail_lines=-1), metadata=(("authorization", "Bearer x"),)
                    )
                ]
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.aio.AioRpcError) as e:
                [c async for c in stub.Logs(api.LogsRequest(pod="zz", tail_lines=-1), metadata=md)]
            assert e.value.code() == grpc.StatusCode.NOT_FOUND

            call = stub.Logs(api.LogsRequest(pod="p1", tail_lines=1, follow=True), metadata=md)
            first = await call.read()
            assert isinstance(first, api.LogChunk)  # read() is typed as the message or EOF (an object)
            assert first.data == b"three\n"
            await asyncio.to_thread(log.write_bytes, b"one\ntwo\nthree\nfour\n")
            nxt = await asyncio.wait_for(call.read(), 2)
            assert isinstance(nxt, api.LogChunk)
            assert nxt.data == b"four\n"
            running[0] = False
            with contextlib.suppress(asyncio.TimeoutError):
                assert await asyncio.wait_for(call.read(), 2) is grpc.aio.EOF
    finally:
        await server.stop(0)
