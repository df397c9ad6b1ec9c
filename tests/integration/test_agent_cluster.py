"""The real agent with real masters: register, run a pod, serve it, report restarts, fail over, delete."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from agents.runtime import stop_state_dir
from orchestrator import errors
from tests.integration.masters import ROOT, MasterSet

pytestmark = pytest.mark.integration
AGENT_ADDRESS = "127.0.60.10"
T = TypeVar("T")


class Agent:
    def __init__(self, tmp: Path, masters: MasterSet) -> None:
        self.tmp = tmp
        self.state_dir = tmp / "w1"
        self.log_path = tmp / "w1.log"
        (tmp / "node.token").write_text("node-token")
        self.argv = [
            sys.executable, "-m", "agents", "--name", "w1", "--address", AGENT_ADDRESS,
            "--masters", ",".join(masters.api), "--token-file", str(tmp / "node.token"),
            "--tokens-file", str(masters.tokens_file), "--state-dir", str(self.state_dir),
            "--heartbeat", "0.5", "--log-level", "DEBUG", *masters.tls_flags("w1", AGENT_ADDRESS),
        ]  # fmt: skip
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
            self.proc = None

    def logs(self) -> str:
        return self.log_path.read_text()[-6000:] if self.log_path.exists() else ""


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[MasterSet, Agent]]:
    ms = MasterSet(tmp_path, "127.0.60", extra=("--node-grace", "5"))
    agent = Agent(tmp_path, ms)
    try:
        ms.start_all()
        yield ms, agent
    except BaseException:
        print(ms.logs(), "\n----- agent\n", agent.logs())
        raise
    finally:
        agent.kill()
        stop_state_dir(agent.state_dir, 1.0)
        ms.close()


def ready(pod: dict) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions") or []
    )


async def until(fn: Callable[[], Awaitable[T | None]], timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    last: T | Exception | None = None
    while time.monotonic() < deadline:
        try:
            last = await fn()
        except errors.SkiffError as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out; last={last}")


async def test_pod_runs_serves_restarts_and_survives_master_loss(cluster: tuple[MasterSet, Agent]) -> None:
    ms, agent = cluster
    client = ms.client()
    try:
        await ms.wait_leader(client)
        agent.start()

        async def node_ready() -> dict | None:
            node = await client.get("Node", "", "w1")
            conds = node.get("status", {}).get("conditions") or []
            return node if any(c["type"] == "Ready" and c["status"] == "True" for c in conds) else None

        node = await until(node_ready)
        assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] > 0
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                # Bound directly: this tests the agent, not the scheduler.
                "nodeName": "w1",
                "terminationGracePeriodSeconds": 2,
                "containers": [
                    {
                        "name": "web",
                        "image": "jweissig/alpine-k8s-pod-lb-demo",
                        "ports": [{"containerPort": 80}],
                    }
                ],
            },
        }
        t0 = time.monotonic()
        await client.create(pod)

        async def running_ready() -> dict | None:
            p = await client.get("Pod", "default", "web")
            return p if p.get("status", {}).get("phase") == "Running" and ready(p) else None

        p = await until(running_ready)
        latency = time.monotonic() - t0
        mapping = p["status"]["portMappings"][0]
        body = await asyncio.to_thread(
            lambda: urllib.request.urlopen(
                f"http://{mapping['hostIP']}:{mapping['hostPort']}/", timeout=2
            ).read()
        )
        assert b"Hello from web" in body
        log_text = b"".join([c async for c in client.logs("default", "web", tail_lines=-1)])
        assert b"listening" in log_text

        # Kill the master the agent is connected to (every master in turn until the stream moves).
        run = json.loads((agent.state_dir / "pods" / p["metadata"]["uid"] / "web" / "run.json").read_text())
        leader = await ms.wait_leader(client)
        follower = next(i for i in range(3) if i != leader)
        ms.kill(follower)
        os.kill(run["pid"], signal.SIGKILL)

        async def restarted() -> dict | None:
            q = await client.get("Pod", "default", "web")
            cs = q.get("status", {}).get("containerStatuses") or [{}]
            return q if cs[0].get("restartCount") == 1 and ready(q) else None

        t1 = time.monotonic()
        await until(restarted, 10)
        restart_seen = time.monotonic() - t1

        # Agent restart (clean SIGTERM): the container keeps running and is adopted, not restarted.
        run_file = agent.state_dir / "pods" / p["metadata"]["uid"] / "web" / "run.json"
        pid = json.loads(run_file.read_text())["pid"]
        assert agent.proc is not None
        os.killpg(agent.proc.pid, signal.SIGTERM)
        assert agent.proc.wait(timeout=10) == 0
        agent.proc = None
        os.kill(pid, 0)
        agent.start()
        await until(node_ready)
        await asyncio.sleep(1.0)
        q = await client.get("Pod", "default", "web")
        assert q["status"]["containerStatuses"][0]["restartCount"] == 1 and ready(q)
        assert json.loads(run_file.read_text())["pid"] == pid

        await client.delete("Pod", "default", "web")

        async def gone() -> bool:
            try:
                await client.get("Pod", "default", "web")
            except errors.NotFound:
                return True
            return False

        await until(gone, 10)
        print(
            f"create->running+ready {latency * 1000:.0f} ms; kill(container+master)->restart visible {restart_seen * 1000:.0f} ms"
        )
    finally:
        await client.close()
