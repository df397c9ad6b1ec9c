"""The container runtime with real shims and processes (no master): start, serve, crash, adopt, probes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from agents.lifecycle import BackoffConfig
from agents.runtime import ContainerRuntime, Isolation, RuntimeConfig, detect_isolation, stop_state_dir

ADDRESS = "127.0.60.1"
ISOLATION = detect_isolation()


class Harness:
    """Runtimes on one state dir, recording every status report."""

    def __init__(self, state_dir: Path, isolation: Isolation) -> None:
        self.state_dir = state_dir
        self.isolation = isolation
        self.reports: list[tuple[float, tuple[str, str, str], Any, bool]] = []
        self.runtime: ContainerRuntime | None = None
        self.task: asyncio.Task[None] | None = None

    def start(self, drain: float = 0.0) -> ContainerRuntime:
        cfg = RuntimeConfig(
            self.state_dir,
            "node-a",
            ADDRESS,
            isolation=self.isolation,
            backoff=BackoffConfig(1.0, 60.0, 600.0),
            termination_drain=drain,
        )
        self.runtime = ContainerRuntime(
            cfg, lambda ref, st, d: self.reports.append((time.monotonic(), ref, st, d))
        )
        self.runtime.adopt()
        self.task = asyncio.create_task(self.runtime.run())
        return self.runtime

    async def detach(self) -> None:
        """Drop the runtime as a crashed agent would (containers keep running)."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.task = None

    def latest(self, name: str) -> dict | None:
        for _, ref, st, _ in reversed(self.reports):
            if ref[1] == name and st is not None:
                return st
        return None

    async def until(self, pred: Callable[[], Any], timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = pred()
            if v:
                return v
            await asyncio.sleep(0.005)
        raise AssertionError(f"condition not met in {timeout}s; last status: {self.reports[-1:]}")


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness(tmp_path / "state", ISOLATION)
    try:
        yield h
    finally:
        await h.detach()
        await asyncio.to_thread(stop_state_dir, h.state_dir, 1.0)


def pod(name: str, containers: list[dict], uid: str = "", **spec: Any) -> dict:
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": uid or f"uid-{name}",
            "resourceVersion": "1",
        },
        "spec": {"containers": containers, "terminationGracePeriodSeconds": 2, **spec},
    }


def demo_pod(name: str = "demo-1") -> dict:
    return pod(
        name,
        [
            {
                "name": "web",
                "image": "jweissig/alpine-k8s-pod-lb-demo",
                "ports": [{"containerPort": 80, "name": "http"}],
            }
        ],
    )


def ready(st: dict | None) -> bool:
    if not st:
        return False
    return any(c["type"] == "Ready" and c["status"] == "True" for c in st["conditions"])


def cstatus(st: dict | None, i: int = 0) -> dict:
    return (st or {}).get("containerStatuses", [{}])[i]


def http_get(port: int) -> tuple[str, str]:
    with urllib.request.urlopen(f"http://{ADDRESS}:{port}/", timeout=2) as r:
        return r.read().decode(), r.headers["X-Hostname"]


async def test_demo_serves_and_restarts_fast_after_kill(harness: Harness) -> None:
    rt = harness.start()
    t0 = time.monotonic()
    rt.set_assignment([demo_pod()])
    st = await harness.until(lambda: ready(harness.latest("demo-1")) and harness.latest("demo-1"))
    start_latency = time.monotonic() - t0
    assert start_latency < 1.0, start_latency
    assert st["phase"] == "Running" and st["hostIP"] == ADDRESS
    mapping = st["portMappings"][0]
    assert mapping["containerPort"] == 80 and mapping["name"] == "http" and mapping["hostIP"] == ADDRESS
    body, host = await asyncio.to_thread(http_get, mapping["hostPort"])
    assert "<h1>Hello from demo-1</h1>" in body and host == "demo-1"

    cdir = harness.state_dir / "pods" / "uid-demo-1" / "web"
    run = json.loads((cdir / "run.json").read_text())
    os.kill(run["pid"], signal.SIGKILL)
    t1 = time.monotonic()
    st = await harness.until(
        lambda: (
            (s := harness.latest("demo-1"))
            and cstatus(s)["restartCount"] == 1
            and "running" in cstatus(s)["state"]
            and s
        )
    )
    restart_latency = time.monotonic() - t1
    assert restart_latency < 1.0, restart_latency
    last = cstatus(st)["lastState"]["terminated"]
    assert last["exitCode"] == 137 and last["reason"] == "Error" and last["signal"] == 9
    st = await harness.until(lambda: ready(harness.latest("demo-1")) and harness.latest("demo-1"))
    assert st["portMappings"][0]["hostPort"] == mapping["hostPort"]  # same host port across restarts
    body, _ = await asyncio.to_thread(http_get, mapping["hostPort"])
    assert "demo-1" in body
    assert "listening" in (cdir / "previous.log").read_text()
    print(f"start->ready {start_latency * 1000:.0f} ms, kill->running {restart_latency * 1000:.0f} ms")


async def test_adopt_keeps_pid_and_restart_count_then_delete(harness: Harness) -> None:
    rt = harness.start()
    p = demo_pod("adopt-1")
    rt.set_assignment([p])
    await harness.until(lambda: ready(harness.latest("adopt-1")))
    cdir = harness.state_dir / "pods" / "uid-adopt-1" / "web"
    os.kill(json.loads((cdir / "run.json").read_text())["pid"], signal.SIGKILL)
    await harness.until(
        lambda: cstatus(harness.latest("adopt-1"))["restartCount"] == 1 and ready(harness.latest("adopt-1"))
    )
    pid = json.loads((cdir / "run.json").read_text())["pid"]

    await harness.detach()  # the agent "crashes"; the container keeps running
    os.kill(pid, 0)
    harness.reports.clear()
    rt2 = harness.start()
    st = await harness.until(lambda: harness.latest("adopt-1"))
    assert cstatus(st)["restartCount"] == 1 and "running" in cstatus(st)["state"]
    assert json.loads((cdir / "run.json").read_text())["pid"] == pid
    rt2.set_assignment([p])
    await asyncio.sleep(0.3)
    assert json.loads((cdir / "run.json").read_text())["pid"] == pid  # not restarted
    assert cstatus(harness.latest("adopt-1"))["restartCount"] == 1

    # The adopted container's exit is still seen at once.
    os.kill(pid, signal.SIGKILL)
    await harness.until(lambda: cstatus(harness.latest("adopt-1"))["restartCount"] == 2, timeout=3)

    deleting = json.loads(json.dumps(p))
    deleting["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z", resourceVersion="2")
    t0 = time.monotonic()
    rt2.set_assignment([deleting])
    await harness.until(lambda: any(d for _, ref, _, d in harness.reports if ref[1] == "adopt-1"))
    assert time.monotonic() - t0 < 2.5  # the demo exits on SIGTERM, well within its grace
    rt2.set_assignment([])
    await harness.until(lambda: not (harness.state_dir / "pods" / "uid-adopt-1").exists())


async def test_deleted_pod_serves_through_the_termination_drain_then_stops(harness: Harness) -> None:
    """The balancers need a moment to drop a deleted pod's endpoint: until the drain ends, the
    container keeps answering new connections; only then does it get SIGTERM."""
    drain = 0.6
    rt = harness.start(drain=drain)
    p = demo_pod("drain-1")
    rt.set_assignment([p])
    st = await harness.until(lambda: ready(harness.latest("drain-1")) and harness.latest("drain-1"))
    port = st["portMappings"][0]["hostPort"]
    deleting = json.loads(json.dumps(p))
    deleting["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z", resourceVersion="2")
    deleted_at = time.monotonic()
    rt.set_assignment([deleting])
    answered = []
    while time.monotonic() - deleted_at < drain / 2:
        _, host = await asyncio.to_thread(http_get, port)
        answered.append(host)
    assert answered and set(answered) == {"drain-1"}
    await harness.until(lambda: any(d for _, ref, _, d in harness.reports if ref[1] == "drain-1"))
    assert time.monotonic() - deleted_at >= drain  # SIGTERM came after the drain, not before
    with pytest.raises(OSError):
        await asyncio.to_thread(http_get, port)


async def test_unassigned_pod_is_stopped_after_first_assignment(harness: Harness) -> None:
    rt = harness.start()
    rt.set_assignment([pod("orphan", [{"name": "c", "image": "busybox", "command": ["sleep", "60"]}])])
    await harness.until(lambda: "running" in cstatus(harness.latest("orphan")).get("state", {}))
    run_file = harness.state_dir / "pods/uid-orphan/c/run.json"
    await harness.until(run_file.exists)
    shim = json.loads(run_file.read_text())["shimPid"]
    rt.set_assignment([])
    await harness.until(lambda: not (harness.state_dir / "pods/uid-orphan").exists(), timeout=6)
    with pytest.raises(ProcessLookupError):
        for _ in range(100):
            os.kill(shim, 0)
            await asyncio.sleep(0.02)


async def test_unknown_image_waits_with_err_image_pull(harness: Harness) -> None:
    rt = harness.start()
    rt.set_assignment([pod("bad", [{"name": "c", "image": "no-such/image:1"}])])
    st = await harness.until(lambda: harness.latest("bad"))
    assert st["phase"] == "Pending"
    waiting = cstatus(st)["state"]["waiting"]
    assert waiting["reason"] == "ErrImagePull" and "no-such/image" in waiting["message"]
    st = await harness.until(
        lambda: (
            cstatus(harness.latest("bad"))["state"]["waiting"]["reason"] == "ImagePullBackOff"
            and harness.latest("bad")
        ),
        timeout=3,
    )


@pytest.mark.parametrize(
    ("policy", "code", "phase", "restarts"),
    [("Never", 0, "Succeeded", 0), ("Never", 3, "Failed", 0), ("OnFailure", 0, "Succeeded", 0)],
)
async def test_run_to_completion(harness: Harness, policy: str, code: int, phase: str, restarts: int) -> None:
    rt = harness.start()
    rt.set_assignment(
        [
            pod(
                "job",
                [{"name": "c", "image": "busybox", "command": ["sh", "-c", f"echo done; exit {code}"]}],
                restartPolicy=policy,
            )
        ]
    )
    st = await harness.until(
        lambda: (s := harness.latest("job")) and s["phase"] in ("Succeeded", "Failed") and s
    )
    assert st["phase"] == phase
    term = cstatus(st)["state"]["terminated"]
    assert term["exitCode"] == code and term["reason"] == ("Completed" if code == 0 else "Error")
    assert cstatus(st)["restartCount"] == restarts


async def test_crash_loop_backs_off(harness: Harness) -> None:
    rt = harness.start()
    rt.set_assignment([pod("crash", [{"name": "c", "image": "busybox", "command": ["sh", "-c", "exit 1"]}])])
    st = await harness.until(
        lambda: cstatus(harness.latest("crash")).get("restartCount", 0) >= 2 and harness.latest("crash"),
        timeout=5,
    )
    st = await harness.until(
        lambda: (
            cstatus(harness.latest("crash"))["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff"
            and harness.latest("crash")
        ),
        timeout=5,
    )
    assert st["phase"] == "Running"
    assert cstatus(st)["lastState"]["terminated"]["exitCode"] == 1


async def test_readiness_probe_gates_ready_without_restart(harness: Harness, tmp_path: Path) -> None:
    flag = tmp_path / "ready"
    rt = harness.start()
    c = {
        "name": "web",
        "image": "demo",
        "ports": [{"containerPort": 8080}],
        "readinessProbe": {
            "exec": {"command": ["test", "-f", str(flag)]},
            "periodSeconds": 1,
            "failureThreshold": 1,
        },
    }
    rt.set_assignment([pod("rp", [c])])
    await harness.until(
        lambda: "running" in cstatus(harness.latest("rp")).get("state", {}) and harness.latest("rp")
    )
    await asyncio.sleep(1.2)
    assert not ready(harness.latest("rp"))
    flag.touch()
    await harness.until(lambda: ready(harness.latest("rp")), timeout=3)
    flag.unlink()
    await harness.until(lambda: not ready(harness.latest("rp")), timeout=3)
    assert cstatus(harness.latest("rp"))["restartCount"] == 0


async def test_liveness_probe_failure_restarts(harness: Harness, tmp_path: Path) -> None:
    rt = harness.start()
    c = {
        "name": "web",
        "image": "demo",
        "ports": [{"containerPort": 8080, "name": "http"}],
        "livenessProbe": {
            "httpGet": {"path": "/", "port": "http"},
            "periodSeconds": 1,
            "failureThreshold": 2,
        },
    }
    rt.set_assignment([pod("lp", [c])])
    st = await harness.until(lambda: ready(harness.latest("lp")) and harness.latest("lp"))
    await asyncio.sleep(1.5)
    assert cstatus(harness.latest("lp"))["restartCount"] == 0  # a passing liveness probe changes nothing
    c2 = dict(c, livenessProbe={"tcpSocket": {"port": 1}, "periodSeconds": 1, "failureThreshold": 1})
    p2 = pod("lp2", [c2])
    rt.set_assignment([pod("lp", [c]), p2])
    st = await harness.until(
        lambda: cstatus(harness.latest("lp2")).get("restartCount", 0) >= 1 and harness.latest("lp2"),
        timeout=6,
    )
    assert cstatus(st)["lastState"]["terminated"]["reason"] == "Error"


root = pytest.mark.skipif(
    not (ISOLATION.uts and ISOLATION.cgroup), reason="needs root with namespaces and cgroups"
)


@root
async def test_hostname_is_pod_name_in_uts_namespace(harness: Harness) -> None:
    rt = harness.start()
    rt.set_assignment([demo_pod("uts-pod")])
    st = await harness.until(lambda: ready(harness.latest("uts-pod")) and harness.latest("uts-pod"))
    _, host = await asyncio.to_thread(http_get, st["portMappings"][0]["hostPort"])
    assert host == "uts-pod"
    rt.set_assignment(
        [
            demo_pod("uts-pod"),
            pod(
                "h",
                [
                    {
                        "name": "c",
                        "image": "busybox",
                        "command": ["sh", "-c", "hostname; echo pid=$$$$; sleep 60"],
                    }
                ],
            ),
        ]
    )
    log = harness.state_dir / "pods/uid-h/c/log"
    await harness.until(lambda: log.exists() and "pid=" in log.read_text())
    assert log.read_text().splitlines()[:2] == ["h", "pid=2"]  # PID 2: the shim's init is PID 1


@root
async def test_memory_limit_oom_killed(harness: Harness) -> None:
    rt = harness.start()
    c = {
        "name": "hog",
        "image": "python",
        "command": ["python", "-c", "x = bytearray(300 * 1024 * 1024); print(len(x))"],
        "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}},
    }
    rt.set_assignment([pod("oom", [c], restartPolicy="Never")])
    st = await harness.until(
        lambda: (s := harness.latest("oom")) and s["phase"] == "Failed" and s, timeout=10
    )
    term = cstatus(st)["state"]["terminated"]
    assert term["reason"] == "OOMKilled" and term["exitCode"] == 137
    cg = await asyncio.to_thread(lambda: list(Path("/sys/fs/cgroup/memory").rglob("node-a_uid-oom_hog")))
    assert cg == []  # the shim removed the cgroup


async def test_cleanup_stops_everything(harness: Harness) -> None:
    rt = harness.start()
    rt.set_assignment([pod("s", [{"name": "c", "image": "busybox", "command": ["sleep", "60"]}])])
    await harness.until(lambda: "running" in cstatus(harness.latest("s")).get("state", {}))
    await harness.detach()
    await harness.until((harness.state_dir / "pods/uid-s/c/run.json").exists)
    run = json.loads((harness.state_dir / "pods/uid-s/c/run.json").read_text())
    assert await asyncio.to_thread(stop_state_dir, harness.state_dir, 10.0) == 1
    exit_ = json.loads((harness.state_dir / "pods/uid-s/c/exit.json").read_text())
    assert exit_["instance"] == run["instance"] and exit_["signal"] == signal.SIGTERM


@pytest.mark.skipif(not ISOLATION.pid, reason="needs root with PID namespaces")
def test_a_stop_the_moment_the_shim_says_running_ends_the_container(tmp_path: Path) -> None:
    """run.json is the shim's word that the container runs. With a PID namespace the shim wrote it once
    it had forked the mini init, before the container itself was forked and had reset the shim's ignored
    SIGTERM: a stop in that window was lost, and cleanup waited its grace and killed (a CI flake of
    test_cleanup_stops_everything). A SIGTERM sent to the group as soon as run.json exists must end
    the container, every time."""
    shim = Path(__file__).resolve().parents[2] / "agents" / "shim.py"
    for attempt in range(15):
        cdir = tmp_path / f"c{attempt}"
        cdir.mkdir()
        spec = {
            "instance": 1,
            "argv": ["sleep", "30"],
            "env": {"PATH": os.environ["PATH"]},
            "cwd": str(cdir),
            "hostname": "h",
            "uts": True,
            "pid": True,
            "cgroup": {},
        }
        (cdir / "spec.json").write_text(json.dumps(spec))
        proc = subprocess.Popen([sys.executable, "-S", str(shim), str(cdir)], start_new_session=True)
        try:
            deadline = time.monotonic() + 10
            while not (cdir / "run.json").exists():
                assert time.monotonic() < deadline, "the shim never said the container runs"
                time.sleep(0.0005)
            run = json.loads((cdir / "run.json").read_text())
            os.killpg(run["pgid"], signal.SIGTERM)
            proc.wait(timeout=5)
            exit_ = json.loads((cdir / "exit.json").read_text())
            assert exit_["signal"] == signal.SIGTERM, (attempt, exit_)
        finally:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
