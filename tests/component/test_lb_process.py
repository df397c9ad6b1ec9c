"""`python -m lb` as real processes: supervisor + 2 workers on SO_REUSEPORT, static routes, kill -9."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
import uvloop
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lb.metrics import parse
from lb.testing import endpoints, service, start_backend
from orchestrator import certs
from orchestrator.transport import ClientTLS

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings('ignore:Overriding the "event_loop_policy" fixture'),
]

ADDR = "127.0.50.30"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def event_loop_policy() -> uvloop.EventLoopPolicy:
    return uvloop.EventLoopPolicy()


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


class Lb:
    def __init__(self, tmp: Path, routes: dict, workers: int = 2) -> None:
        self.routes_file = tmp / "routes.json"
        self.write_routes(routes)
        self.metrics_port = free_port(ADDR)
        self.health_port = free_port(ADDR)
        self.log = open(tmp / "lb.log", "wb")  # noqa: SIM115
        self.log_path = tmp / "lb.log"
        pki = certs.ensure_cluster_pki(tmp / "pki", names={"lb": [ADDR]}, now=datetime.now(UTC))
        self.tls = ClientTLS.from_file(str(pki["ca.crt"]))
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lb",
                "--static-routes",
                str(self.routes_file),
                "--address",
                ADDR,
                "--http-port",
                "0",
                "--workers",
                str(workers),
                "--metrics-port",
                str(self.metrics_port),
                "--health-port",
                str(self.health_port),
                "--drain-seconds",
                "1",
                "--shutdown-timeout",
                "1",
                "--tls-cert-file",
                str(pki["lb.crt"]),
                "--tls-key-file",
                str(pki["lb.key"]),
                "--ca-file",
                str(pki["ca.crt"]),
            ],
            cwd=REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def write_routes(self, routes: dict) -> None:
        tmp = self.routes_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(routes))
        os.replace(tmp, self.routes_file)

    async def health(self) -> int:
        async with self.tls.channel(f"{ADDR}:{self.health_port}") as ch:
            reply = await health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1
            )
            return reply.status

    async def wait_serving(self, workers: int, deadline: float = 20.0) -> None:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            assert self.proc.poll() is None, self.log_path.read_text()
            with contextlib.suppress(grpc.aio.AioRpcError, OSError, ValueError):
                if await self.health() == health_pb2.HealthCheckResponse.SERVING:
                    m = await self.metrics()
                    if m.get("skiff_lb_workers") == workers:
                        return
            await asyncio.sleep(0.1)
        raise AssertionError("lb not serving in time:\n" + self.log_path.read_text())

    async def metrics(self) -> dict[str, float]:
        reader, writer = await asyncio.open_connection(ADDR, self.metrics_port)
        writer.write(b"GET /metrics HTTP/1.0\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return parse(data.partition(b"\r\n\r\n")[2].decode())

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def kill_all(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


async def get(port: int, timeout: float = 3.0) -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(ADDR, port), timeout)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    return data.partition(b"\r\n\r\n")[2]


@pytest.fixture
async def lb_env(tmp_path: Path):
    servers = []
    b1, p1 = await start_backend("http", "127.0.50.31", 0, "b1")
    b2, p2 = await start_backend("http", "127.0.50.32", 0, "b2")
    servers += [b1, b2]
    node_port = free_port(ADDR)
    routes = {
        "services": [service("web", 80, node_port=node_port, type="NodePort")],
        "endpoints": [endpoints("web", [("127.0.50.31", p1)])],
        "ingresses": [],
    }
    lb = Lb(tmp_path, routes)
    try:
        yield lb, node_port, routes, p2
    finally:
        lb.kill_all()
        lb.stop()
        for s in servers:
            s.close()
        if os.environ.get("SKIFF_SHOW_LOGS"):
            print(lb.log_path.read_text())


async def test_two_workers_survive_kill_9_and_shut_down_cleanly(lb_env) -> None:
    lb, node_port, routes, p2 = lb_env
    await lb.wait_serving(2)
    assert await get(node_port) == b"b1\n"
    workers = children(lb.proc.pid)
    assert len(workers) == 2

    # kill -9 one worker while clients keep connecting: the other keeps serving.
    os.kill(workers[0], signal.SIGKILL)
    await asyncio.sleep(0.1)
    for _ in range(50):
        assert await get(node_port) == b"b1\n"
    # The supervisor restarts it.
    end = time.monotonic() + 10
    while time.monotonic() < end:
        now = children(lb.proc.pid)
        if len(now) == 2 and workers[0] not in now:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("worker not restarted:\n" + lb.log_path.read_text())
    await lb.wait_serving(2)
    m = await lb.metrics()
    assert m["skiff_lb_worker_restarts_total"] == 1

    # Metrics are summed over workers: make N connections, see them all.
    before = await lb.metrics()
    key = 'skiff_lb_connections_total{backend="default/web:80"}'
    for _ in range(20):
        await get(node_port)
    after = await lb.metrics()
    assert after[key] - before.get(key, 0) == 20

    # A route change reaches both workers quickly.
    routes["endpoints"] = [endpoints("web", [("127.0.50.32", p2)])]
    t0 = time.monotonic()
    lb.write_routes(routes)
    seen = 0
    while seen < 20:
        assert time.monotonic() - t0 < 5
        body = await get(node_port)
        seen = seen + 1 if body == b"b2\n" else 0
    assert lb.stop() == 0


async def test_sigterm_drains_open_connections_within_deadline(lb_env) -> None:
    lb, node_port, _, _ = lb_env
    await lb.wait_serving(2)
    reader, writer = await asyncio.open_connection(ADDR, node_port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.wait_for(reader.readuntil(b"b1\n"), 5)
    t0 = time.monotonic()
    code = await asyncio.to_thread(lb.stop)
    took = time.monotonic() - t0
    assert code == 0
    assert took < 5, took  # --shutdown-timeout 1, then the rest is aborted
    writer.close()
