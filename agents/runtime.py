"""The container runtime: runs the pods assigned to this node as shim-supervised processes.

An actor: one task (`run`) owns every pod and container record; the assignment, shim exits and probe
results only change fields and wake it, and each wake re-plans every pod with `lifecycle.plan_pod`
(level-triggered, idempotent) and reports the pod statuses that changed through `on_status`.

Exit detection is instant: each shim's pid is watched with a pidfd (`os.pidfd_open` + `add_reader`);
the shim writes exit.json before it exits. Without pidfd support a 50 ms poll does the same.

State dir layout (`--state-dir`), which lets a restarted agent adopt its running containers:

    DIR/pods/<pod-uid>/pod.json                 the pod (as last assigned), portMappings, startTime
    DIR/pods/<pod-uid>/<container>/spec.json    what the shim runs (argv, env, isolation, limits)
    DIR/pods/<pod-uid>/<container>/record.json  the agent's record: instance, shimPid, restartCount,
                                                back-off streak, current/last termination
    DIR/pods/<pod-uid>/<container>/run.json     by the shim: instance, shimPid, pid, pgid, startedAt
    DIR/pods/<pod-uid>/<container>/exit.json    by the shim: instance, exitCode, signal, reason, times
    DIR/pods/<pod-uid>/<container>/log, log.1   the running instance's output (rotated by the shim)
    DIR/pods/<pod-uid>/<container>/previous.log the previous instance's output (`logs --previous`)

Containers outlive the runtime (and the agent): stopping the agent leaves them running; `stop_all`
(the `cleanup` command) stops them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from agents import images, lifecycle, probes
from agents.lifecycle import BackoffConfig, ContainerView, State, Termination
from orchestrator.model import parse_bytes, parse_cpu

log = logging.getLogger(__name__)

Obj = dict[str, Any]
SHIM = Path(__file__).resolve().parent / "shim.py"
POLL_INTERVAL = 0.05


# ---------------------------------------------------------------- isolation


@dataclass(frozen=True)
class Isolation:
    uts: bool = False
    pid: bool = False
    cgroup: str = ""  # "v1", "v2" or ""

    def describe(self) -> str:
        """'uts,pid,cgroup-v1' or 'none' (shown by describe node)."""
        parts = [p for p, on in (("uts", self.uts), ("pid", self.pid)) if on]
        if self.cgroup:
            parts.append(f"cgroup-{self.cgroup}")
        return ",".join(parts) or "none"


def detect_isolation(enabled: bool = True) -> Isolation:
    """Ask the shim what this machine allows (it forks and unshares; the agent itself must not)."""
    if not enabled or sys.platform != "linux" or os.geteuid() != 0:
        return Isolation()
    try:
        out = subprocess.run(
            [sys.executable, "-S", str(SHIM), "--probe"], capture_output=True, timeout=10, check=True
        ).stdout
        d = json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        log.warning("isolation probe failed: %s", e)
        return Isolation()
    return Isolation(uts=bool(d.get("uts")), pid=bool(d.get("pid")), cgroup=d.get("cgroup") or "")


# ---------------------------------------------------------------- helpers


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f"{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def process_alive(pid: int) -> bool:
    """True for a live (not zombie) process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            stat = f.read()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False


def is_our_shim(pid: int, cdir: Path) -> bool:
    """The pid is a live shim of this container dir (not a recycled pid)."""
    if not process_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return True  # no /proc: trust the pid
    return str(cdir).encode() in args and any(a.endswith(b"shim.py") for a in args)


def free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def pod_key(pod: Mapping[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return meta.get("uid") or f"{meta.get('namespace', 'default')}_{meta.get('name', '')}"


def env_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name).upper()


def allocate_ports(pod: Mapping[str, Any], address: str, taken: Iterable[int] = ()) -> list[Obj]:
    """Each container port -> a free host port on the node's address (a set hostPort is kept).

    A port the kernel hands out for bind(0) is free now but not reserved: a container that has not
    bound it yet leaves it free, and the next bind(0) may get it again. So `taken` (the ports of the
    node's other pods) and the ports chosen for this pod are never chosen twice.
    """
    used = set(taken)
    out = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            host_port = int(p.get("hostPort") or 0)
            while not host_port or (host_port in used and not p.get("hostPort")):
                host_port = free_port(address)
            used.add(host_port)
            m: Obj = {
                "containerPort": int(p["containerPort"]),
                "hostPort": host_port,
                "hostIP": address,
                "protocol": p.get("protocol") or "TCP",
                "container": c["name"],
            }
            if p.get("name"):
                m["name"] = p["name"]
            out.append(m)
    return out


def public_mappings(mappings: Iterable[Mapping[str, Any]]) -> list[Obj]:
    return [{k: v for k, v in m.items() if k != "container"} for m in mappings]


def view_to_record(view: ContainerView) -> Obj:
    d = asdict(view)
    d["state"] = view.state.value
    d["termination"] = view.termination.to_record() if view.termination else None
    d["last_termination"] = view.last_termination.to_record() if view.last_termination else None
    return d


def view_from_record(d: Mapping[str, Any]) -> ContainerView:
    fields = dict(d)
    fields["state"] = State(fields.get("state", "waiting"))
    for k in ("termination", "last_termination"):
        fields[k] = Termination.from_dict(fields[k]) if fields.get(k) else None
    known = ContainerView.__dataclass_fields__
    return ContainerView(**{k: v for k, v in fields.items() if k in known})


# ---------------------------------------------------------------- records


class PodNotFound(LookupError):
    """No such pod on this node."""


@dataclass
class ContainerSlot:
    name: str
    dir: Path
    view: ContainerView
    instance: int = 0
    shim_pid: int = 0
    popen: subprocess.Popen[bytes] | None = None
    pidfd: int = -1
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.shim_pid > 0

    def record(self) -> Obj:
        return {"instance": self.instance, "shimPid": self.shim_pid, "view": view_to_record(self.view)}


@dataclass
class PodSlot:
    key: str
    dir: Path
    pod: Obj
    mappings: list[Obj]
    start_time: float
    containers: dict[str, ContainerSlot] = field(default_factory=dict)
    last_status: Obj | None = None
    deleted_reported: bool = False
    orphan: bool = False

    @property
    def ref(self) -> tuple[str, str, str]:
        meta = self.pod.get("metadata") or {}
        return meta.get("namespace", "default"), meta.get("name", ""), meta.get("uid", "")

    def save(self) -> None:
        write_json(
            self.dir / "pod.json",
            {"pod": self.pod, "portMappings": self.mappings, "startTime": self.start_time},
        )


StatusSink = Callable[[tuple[str, str, str], Obj | None, bool], None]


@dataclass
class RuntimeConfig:
    state_dir: Path
    node_name: str
    address: str
    catalog: images.Catalog = field(default_factory=images.load_catalog)
    isolation: Isolation = field(default_factory=Isolation)
    backoff: BackoffConfig = field(default_factory=BackoffConfig)
    log_max_bytes: int = 10 << 20
    log_files: int = 2
    readiness_poll: float = 0.02  # the implicit port check of a container without a readiness probe
    # A deleted pod's containers get SIGTERM this long after the deletion (within the grace period):
    # the time for the endpoints change to reach the balancers, so that no new connection races a
    # server that is closing its listener. Kubernetes has no such default; users add a preStop sleep.
    termination_drain: float = 0.5


class ContainerRuntime:
    """Runs the assigned pods. Create and use inside the running loop; call `adopt()` before `run()`."""

    def __init__(
        self, cfg: RuntimeConfig, on_status: StatusSink, clock: Callable[[], float] = time.time
    ) -> None:
        self.cfg = cfg
        self.on_status = on_status
        self.clock = clock
        self.pods: dict[str, PodSlot] = {}
        self.assignment: list[Obj] | None = None
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self.pods_dir = cfg.state_dir / "pods"
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        self._use_pidfd = hasattr(os, "pidfd_open")
        self._bg: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ inputs

    def set_assignment(self, pods: list[Obj]) -> None:
        """Every pod bound to this node (the master's whole list); the runtime converges to it."""
        self.assignment = pods
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    def statuses(self) -> list[tuple[tuple[str, str, str], Obj]]:
        return [(p.ref, p.last_status) for p in self.pods.values() if p.last_status is not None]

    # ------------------------------------------------------------ the actor

    async def run(self) -> None:
        """Plan and act on every wake, and at the earliest time a plan asked for. Runs until cancelled."""
        try:
            while True:
                wake_at = self._sync()
                timeout = None if wake_at is None else max(0.0, wake_at - self.clock())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                self._wake.clear()
        finally:
            self._detach()

    def _detach(self) -> None:
        """Stop watching (containers keep running: a new runtime adopts them)."""
        for p in self.pods.values():
            for c in p.containers.values():
                for t in c.tasks:
                    t.cancel()
                if c.pidfd >= 0:
                    with contextlib.suppress(Exception):
                        self._loop.remove_reader(c.pidfd)
                    with contextlib.suppress(OSError):
                        os.close(c.pidfd)
                    c.pidfd = -1

    def _sync(self) -> float | None:
        now = self.clock()
        if self.assignment is not None:
            self._apply_assignment(self.assignment)
        wake: float | None = None
        for slot in list(self.pods.values()):
            views = {n: c.view for n, c in slot.containers.items()}
            active = {n: c.active for n, c in slot.containers.items()}
            pod = slot.pod
            if slot.orphan:
                pod = {**pod, "metadata": {**pod.get("metadata", {}), "deletionTimestamp": "orphan"}}
            plan = lifecycle.plan_pod(pod, views, active, now)
            for action in plan.actions:
                if isinstance(action, lifecycle.Start):
                    self._start(slot, action.container)
                elif isinstance(action, lifecycle.Stop):
                    self._stop(slot, slot.containers[action.container], action.grace)
                elif isinstance(action, lifecycle.ReportDeleted):
                    self._finish_deleted(slot)
            if plan.wake_at is not None:
                wake = plan.wake_at if wake is None else min(wake, plan.wake_at)
            if slot.key in self.pods and not slot.orphan and not slot.deleted_reported:
                self._report(slot, now)
        return wake

    def _apply_assignment(self, pods: list[Obj]) -> None:
        desired = {pod_key(p): p for p in pods}
        for key, pod in desired.items():
            slot = self.pods.get(key)
            if slot is None:
                slot = self._new_pod(key, pod)
            elif (
                slot.pod.get("metadata", {}).get("resourceVersion")
                != pod.get("metadata", {}).get("resourceVersion")
                or slot.orphan
            ):
                slot.pod = pod
                slot.orphan = False
                slot.save()
        for key, slot in self.pods.items():
            if key not in desired and not slot.orphan:
                log.info("pod no longer assigned; stopping it pod=%s/%s", *slot.ref[:2])
                slot.orphan = True

    def _new_pod(self, key: str, pod: Obj) -> PodSlot:
        d = self.pods_dir / key
        d.mkdir(parents=True, exist_ok=True)
        taken = [m["hostPort"] for other in self.pods.values() for m in other.mappings]
        slot = PodSlot(key, d, pod, allocate_ports(pod, self.cfg.address, taken), self.clock())
        slot.save()
        self.pods[key] = slot
        log.info("pod assigned pod=%s/%s ports=%s", *slot.ref[:2], [m["hostPort"] for m in slot.mappings])
        return slot

    def _report(self, slot: PodSlot, now: float) -> None:
        prev = (slot.last_status or {}).get("conditions") or ()
        status = lifecycle.pod_status(
            slot.pod,
            {n: c.view for n, c in slot.containers.items()},
            now,
            host_ip=self.cfg.address,
            port_mappings=public_mappings(slot.mappings),
            start_time=slot.start_time,
            prev_conditions=prev,
        )
        if status != slot.last_status:
            old_phase = (slot.last_status or {}).get("phase")
            slot.last_status = status
            if old_phase != status["phase"]:
                log.info("pod phase pod=%s/%s phase=%s", *slot.ref[:2], status["phase"])
            self.on_status(slot.ref, status, False)

    def _finish_deleted(self, slot: PodSlot) -> None:
        if not slot.orphan and not slot.deleted_reported:
            slot.deleted_reported = True
            log.info("pod stopped for deletion pod=%s/%s", *slot.ref[:2])
            self.on_status(slot.ref, slot.last_status, True)
        if slot.orphan:
            self._forget(slot)

    def _forget(self, slot: PodSlot) -> None:
        import shutil

        self.pods.pop(slot.key, None)
        shutil.rmtree(slot.dir, ignore_errors=True)

    # ------------------------------------------------------------ containers

    def _container_spec(self, slot: PodSlot, name: str) -> Obj:
        for c in slot.pod.get("spec", {}).get("containers") or []:
            if c["name"] == name:
                return c
        raise KeyError(name)

    def _slot(self, pod: PodSlot, name: str) -> ContainerSlot:
        c = pod.containers.get(name)
        if c is None:
            d = pod.dir / name
            d.mkdir(parents=True, exist_ok=True)
            c = ContainerSlot(name, d, ContainerView(name=name))
            pod.containers[name] = c
        return c

    def base_env(self, slot: PodSlot, container: str) -> dict[str, str]:
        ns, name, uid = slot.ref
        env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TZ", "HOME") if k in os.environ}
        env.update(
            {
                "HOSTNAME": name,
                "POD_NAME": name,
                "POD_NAMESPACE": ns,
                "POD_UID": uid,
                "POD_IP": self.cfg.address,
                "HOST_IP": self.cfg.address,
                "NODE_NAME": self.cfg.node_name,
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.cfg.isolation.uts:
            env["SKIFF_ISOLATION_UTS"] = "1"
        first = True
        for m in slot.mappings:
            if m.get("container") != container:
                continue
            if first:
                env["PORT"] = str(m["hostPort"])
                first = False
            env[f"PORT_{m['containerPort']}"] = str(m["hostPort"])
            if m.get("name"):
                env[f"PORT_{env_name(m['name'])}"] = str(m["hostPort"])
        return env

    def _start(self, slot: PodSlot, name: str) -> None:
        c = self._slot(slot, name)
        spec = self._container_spec(slot, name)
        now = self.clock()
        c.view = replace(c.view, image=spec.get("image", ""))
        try:
            program = images.resolve(self.cfg.catalog, spec, self.base_env(slot, name))
        except images.ImageNotFound as e:
            c.view = lifecycle.on_image_error(c.view, str(e), now, self.cfg.backoff)
            log.warning("image not found pod=%s/%s container=%s: %s", *slot.ref[:2], name, e)
            self._save(c)
            return
        c.instance += 1
        for old in ("exit.json", "run.json"):
            with contextlib.suppress(FileNotFoundError):
                (c.dir / old).unlink()
        if c.instance > 1:
            for src, dst in (("log", "previous.log"), ("log.1", "previous.log.1")):
                if (c.dir / src).exists():
                    os.replace(c.dir / src, c.dir / dst)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        (c.dir / dst).unlink()
        limits = (spec.get("resources") or {}).get("limits") or {}
        iso = self.cfg.isolation
        cgroup_name = f"{self.cfg.node_name}_{slot.key}_{name}"
        shim_spec = {
            "instance": c.instance,
            "argv": list(program.argv),
            "env": program.env,
            "cwd": spec.get("workingDir") or str(c.dir),
            "hostname": slot.ref[1],
            "uts": iso.uts,
            "pid": iso.pid,
            "cgroup": {
                "enabled": bool(iso.cgroup) and bool(limits),
                "name": cgroup_name,
                "memory": parse_bytes(limits["memory"]) if "memory" in limits else None,
                "cpuMillis": parse_cpu(limits["cpu"]) if "cpu" in limits else None,
            },
            "logMaxBytes": self.cfg.log_max_bytes,
            "logFiles": self.cfg.log_files,
        }
        write_json(c.dir / "spec.json", shim_spec)
        c.env = program.env
        try:
            with open(c.dir / "shim.log", "ab") as err:
                c.popen = subprocess.Popen(
                    [sys.executable, "-S", str(SHIM), str(c.dir)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    close_fds=True,
                    start_new_session=True,
                    cwd=str(c.dir),
                )
        except OSError as e:
            log.error("cannot start shim pod=%s/%s container=%s: %s", *slot.ref[:2], name, e)
            term = Termination(128, "StartError", now, now, message=str(e))
            c.view = lifecycle.on_exited(
                lifecycle.on_started(c.view, now, ""), term, self._policy(slot), self.cfg.backoff
            )
            self._save(c)
            return
        c.shim_pid = c.popen.pid
        c.exited = asyncio.Event()
        c.stopping = False
        container_id = f"skiff://{slot.key}/{name}/{c.instance}"
        restarting = c.view.termination is not None
        c.view = lifecycle.on_started(c.view, now, container_id)
        log.info(
            "container %s pod=%s/%s container=%s instance=%d restarts=%d",
            "restarted" if restarting else "started",
            *slot.ref[:2],
            name,
            c.instance,
            c.view.restart_count,
        )
        self._save(c)
        self._watch(slot, c)
        self._start_probes(slot, c, spec)

    def _policy(self, slot: PodSlot) -> str:
        return slot.pod.get("spec", {}).get("restartPolicy") or "Always"

    def _save(self, c: ContainerSlot) -> None:
        write_json(c.dir / "record.json", c.record())

    def _watch(self, slot: PodSlot, c: ContainerSlot) -> None:
        """Call `_on_exit` as soon as the shim exits: a pidfd when available, else a 50 ms poll."""
        pid = c.shim_pid
        if self._use_pidfd:
            try:
                c.pidfd = os.pidfd_open(pid)
                self._loop.add_reader(c.pidfd, self._on_exit, slot, c, pid)
                return
            except OSError:
                c.pidfd = -1
                self._on_exit(slot, c, pid)  # already gone
                return
        task = asyncio.ensure_future(self._poll_exit(slot, c, pid))
        c.tasks.add(task)
        task.add_done_callback(c.tasks.discard)

    async def _poll_exit(self, slot: PodSlot, c: ContainerSlot, pid: int) -> None:
        while process_alive(pid) and not (c.popen and c.popen.poll() is not None):  # noqa: ASYNC110
            await asyncio.sleep(POLL_INTERVAL)
        self._on_exit(slot, c, pid)

    def _on_exit(self, slot: PodSlot, c: ContainerSlot, pid: int) -> None:
        if c.shim_pid != pid:
            return
        if c.pidfd >= 0:
            self._loop.remove_reader(c.pidfd)
            os.close(c.pidfd)
            c.pidfd = -1
        if c.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                c.popen.wait(timeout=1)
            c.popen = None
        for t in list(c.tasks):
            t.cancel()
        term = self._read_exit(c)
        c.shim_pid = 0
        deleting = bool(slot.pod.get("metadata", {}).get("deletionTimestamp")) or slot.orphan
        c.view = lifecycle.on_exited(c.view, term, self._policy(slot), self.cfg.backoff, deleting=deleting)
        log.info(
            "container exited pod=%s/%s container=%s code=%d reason=%s restart_in=%s",
            *slot.ref[:2],
            c.name,
            term.exit_code,
            term.reason,
            None if c.view.restart_at is None else round(c.view.restart_at - self.clock(), 3),
        )
        self._save(c)
        c.exited.set()
        self.wake()

    def _read_exit(self, c: ContainerSlot) -> Termination:
        data = read_json(c.dir / "exit.json")
        cid = c.view.container_id
        if data and data.get("instance") == c.instance:
            return Termination(
                exit_code=int(data["exitCode"]),
                reason=data.get("reason") or "Error",
                started_at=float(data.get("startedAt") or c.view.started_at),
                finished_at=float(data.get("finishedAt") or self.clock()),
                signal=int(data.get("signal") or 0),
                message=data.get("message") or "",
                container_id=cid,
            )
        # The shim died without recording the exit (killed): make sure its container is gone too.
        run = read_json(c.dir / "run.json")
        if run and run.get("instance") == c.instance:
            with contextlib.suppress(OSError):
                os.killpg(int(run["pgid"]), signal.SIGKILL)
        now = self.clock()
        return Termination(
            137, "Error", c.view.started_at or now, now, signal=9, message="shim lost", container_id=cid
        )

    # ------------------------------------------------------------ stopping

    def _stop(self, slot: PodSlot, c: ContainerSlot, grace: float) -> None:
        if c.stopping or not c.active:
            return
        c.stopping = True
        task = asyncio.ensure_future(self._kill(slot, c, grace, "stop", self.cfg.termination_drain))
        # Not in c.tasks: those are cancelled when the container exits, this one ends by itself.
        self._background(task)

    def _background(self, task: asyncio.Task[None]) -> None:
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    async def _kill(
        self, slot: PodSlot, c: ContainerSlot, grace: float, why: str, drain: float = 0.0
    ) -> None:
        """SIGTERM to the container's process group after `drain` seconds, SIGKILL after `grace` seconds
        (both counted from now)."""
        instance = c.instance
        exited = c.exited
        pgid = await self._pgid(c, instance)
        log.info(
            "stopping container pod=%s/%s container=%s grace=%s why=%s drain=%s",
            *slot.ref[:2],
            c.name,
            grace,
            why,
            drain,
        )
        drain = min(drain, grace)
        if drain > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(exited.wait(), drain)
                return
            grace -= drain
        if pgid:
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(exited.wait(), grace)
            return
        if pgid:
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(exited.wait(), 5)

    async def _pgid(self, c: ContainerSlot, instance: int) -> int:
        """The container's process group from run.json (the shim writes it right after forking)."""
        for _ in range(100):
            run = read_json(c.dir / "run.json")
            if run and run.get("instance") == instance:
                return int(run["pgid"])
            if c.instance != instance or not c.active:
                return 0
            await asyncio.sleep(0.01)
        return 0

    # ------------------------------------------------------------ probes

    def _start_probes(self, slot: PodSlot, c: ContainerSlot, spec: Mapping[str, Any]) -> None:
        task = asyncio.ensure_future(self._probe(slot, c, spec, c.instance))
        c.tasks.add(task)
        task.add_done_callback(c.tasks.discard)

    def _resolve_port(self, slot: PodSlot, container: str) -> Callable[[Any], int | None]:
        def resolve(port: Any) -> int | None:
            for m in slot.mappings:
                if m.get("container") != container:
                    continue
                if (isinstance(port, str) and not port.isdigit() and m.get("name") == port) or str(
                    m["containerPort"]
                ) == str(port):
                    return int(m["hostPort"])
            if isinstance(port, int | float) or (isinstance(port, str) and port.isdigit()):
                return int(port)
            return None

        return resolve

    async def _probe(self, slot: PodSlot, c: ContainerSlot, spec: Mapping[str, Any], instance: int) -> None:
        """Runs the container's probes for one instance; cancelled when it exits.

        Without a readiness probe a container is Ready once running, and, when it declares ports, once
        its first port accepts a TCP connection (polled every 20 ms): endpoints then never route to a
        server that is not listening yet.
        """
        resolve = self._resolve_port(slot, c.name)
        run = lambda p: probes.run_probe(  # noqa: E731
            p, host=self.cfg.address, resolve_port=resolve, env=c.env, cwd=str(c.dir)
        )
        startup = probes.ProbeSpec.parse(spec.get("startupProbe"))
        if startup is not None:
            await asyncio.sleep(startup.initial_delay)
            tally = probes.initial_tally("startup")
            while not tally.ok:
                tally = probes.record(tally, await run(startup), startup)
                if not tally.ok and tally.failures >= startup.failure_threshold:
                    await self._probe_kill(slot, c, "startup")
                    return
                if not tally.ok:
                    await asyncio.sleep(startup.period)
        c.view = replace(c.view, started=True)
        self.wake()
        async with asyncio.TaskGroup() as tg:
            liveness = probes.ProbeSpec.parse(spec.get("livenessProbe"))
            if liveness is not None:
                tg.create_task(self._liveness(slot, c, liveness, run))
            tg.create_task(
                self._readiness(c, spec, probes.ProbeSpec.parse(spec.get("readinessProbe")), run, resolve)
            )

    async def _readiness(
        self, c: ContainerSlot, spec: Mapping[str, Any], p: probes.ProbeSpec | None, run: Any, resolve: Any
    ) -> None:
        if p is None:
            ports = spec.get("ports") or []
            if ports:
                host_port = resolve(ports[0]["containerPort"])
                while not await probes.tcp_check(self.cfg.address, host_port, 1.0):  # noqa: ASYNC110
                    await asyncio.sleep(self.cfg.readiness_poll)
            self._set_ready(c, True)
            return
        await asyncio.sleep(p.initial_delay)
        tally = probes.initial_tally("readiness")
        while True:
            tally = probes.record(tally, await run(p), p)
            self._set_ready(c, tally.ok)
            await asyncio.sleep(p.period)

    async def _liveness(self, slot: PodSlot, c: ContainerSlot, p: probes.ProbeSpec, run: Any) -> None:
        await asyncio.sleep(p.initial_delay)
        tally = probes.initial_tally("liveness")
        while True:
            tally = probes.record(tally, await run(p), p)
            if not tally.ok:
                await self._probe_kill(slot, c, "liveness")
                return
            await asyncio.sleep(p.period)

    def _set_ready(self, c: ContainerSlot, ready: bool) -> None:
        if c.view.ready != ready and c.view.state is State.RUNNING:
            c.view = replace(c.view, ready=ready)
            self.wake()

    async def _probe_kill(self, slot: PodSlot, c: ContainerSlot, which: str) -> None:
        log.info("%s probe failed; killing container pod=%s/%s container=%s", which, *slot.ref[:2], c.name)
        self._set_ready(c, False)
        task = asyncio.ensure_future(
            self._kill(slot, c, lifecycle.grace_period(slot.pod), f"{which} probe failed")
        )
        self._background(task)

    # ------------------------------------------------------------ adoption

    def adopt(self) -> int:
        """Take over the containers a previous runtime left in the state dir; returns how many run.

        Running shims are watched again (same PIDs, same restart counts); an exit recorded while no
        runtime watched is processed now (restart per policy). Pods stay until the first assignment
        says whether they are still wanted.
        """
        adopted = 0
        for d in sorted(self.pods_dir.iterdir()) if self.pods_dir.exists() else ():
            meta = read_json(d / "pod.json")
            if not meta:
                continue
            slot = PodSlot(
                d.name,
                d,
                meta["pod"],
                meta.get("portMappings") or [],
                float(meta.get("startTime") or self.clock()),
            )
            self.pods[d.name] = slot
            for cdir in sorted(p for p in d.iterdir() if p.is_dir()):
                rec = read_json(cdir / "record.json")
                if not rec:
                    continue
                c = ContainerSlot(
                    cdir.name, cdir, view_from_record(rec["view"]), instance=int(rec.get("instance", 0))
                )
                slot.containers[c.name] = c
                for cspec in slot.pod.get("spec", {}).get("containers") or []:
                    if cspec["name"] == c.name:
                        with contextlib.suppress(images.ImageNotFound):
                            c.env = images.resolve(self.cfg.catalog, cspec, self.base_env(slot, c.name)).env
                shim_pid = int(rec.get("shimPid") or 0)
                if c.view.state is not State.RUNNING or not shim_pid:
                    continue
                c.shim_pid = shim_pid
                if is_our_shim(shim_pid, cdir):
                    adopted += 1
                    run = read_json(cdir / "run.json") or {}
                    log.info(
                        "adopted container pod=%s/%s container=%s shim=%d pid=%s restarts=%d",
                        *slot.ref[:2],
                        c.name,
                        shim_pid,
                        run.get("pid"),
                        c.view.restart_count,
                    )
                    self._watch(slot, c)
                    cspec = self._container_spec(slot, c.name)
                    self._start_probes(slot, c, cspec)
                else:
                    self._on_exit(slot, c, shim_pid)
        self.wake()
        return adopted

    # ------------------------------------------------------------ logs

    def log_files(
        self, namespace: str, pod: str, container: str, previous: bool
    ) -> tuple[list[Path], Callable[[], bool]]:
        """The files of a container's log, oldest first, and whether that instance still runs."""
        slot = self.find(namespace, pod)
        if slot is None:
            raise PodNotFound(f'pods "{pod}" not found on node {self.cfg.node_name}')
        names = [c["name"] for c in slot.pod.get("spec", {}).get("containers") or []]
        if not container:
            if len(names) != 1:
                raise ValueError(
                    f"a container name must be specified for pod {pod}, choose one of: [{' '.join(names)}]"
                )
            container = names[0]
        if container not in names:
            raise ValueError(f"container {container} is not valid for pod {pod}")
        c = slot.containers.get(container)
        if c is None or c.instance == 0:
            raise ValueError(f'container "{container}" in pod "{pod}" is waiting to start: ContainerCreating')
        if previous:
            if not (c.dir / "previous.log").exists():
                raise ValueError(f'previous terminated container "{container}" in pod "{pod}" not found')
            return [c.dir / "previous.log.1", c.dir / "previous.log"], lambda: False
        instance = c.instance
        return [c.dir / "log.1", c.dir / "log"], lambda: c.active and c.instance == instance

    def find(self, namespace: str, name: str) -> PodSlot | None:
        for p in self.pods.values():
            if p.ref[0] == namespace and p.ref[1] == name and not p.orphan:
                return p
        return None

    async def stop_all(self, grace: float = 10.0) -> None:
        """Stop every container now (the `cleanup` path)."""
        tasks = [
            asyncio.ensure_future(self._kill(p, c, grace, "cleanup"))
            for p in self.pods.values()
            for c in p.containers.values()
            if c.active
        ]
        if tasks:
            await asyncio.gather(*tasks)


def stop_state_dir(state_dir: Path, grace: float = 10.0) -> int:
    """Stop every container recorded under `state_dir` (no runtime needed); returns how many were running."""
    groups: list[tuple[int, int]] = []
    # A shim started just now may not have written run.json for its instance yet (it does so once the
    # container runs): wait for it, or the container would escape the scan below.
    deadline = time.monotonic() + 3.0
    for rec_file in Path(state_dir).glob("pods/*/*/record.json"):
        rec = read_json(rec_file) or {}
        shim = rec.get("shimPid")
        if not shim or not is_our_shim(int(shim), rec_file.parent):
            continue
        while time.monotonic() < deadline and process_alive(int(shim)):
            run = read_json(rec_file.parent / "run.json") or {}
            if run.get("instance") == rec.get("instance"):
                break
            time.sleep(0.02)
    for run_file in Path(state_dir).glob("pods/*/*/run.json"):
        cdir = run_file.parent
        run = read_json(run_file)
        if (
            not run
            or (cdir / "exit.json").exists()
            and (read_json(cdir / "exit.json") or {}).get("instance") == run.get("instance")
        ):
            continue
        if is_our_shim(int(run["shimPid"]), cdir):
            groups.append((int(run["pgid"]), int(run["shimPid"])))
    for pgid, _ in groups:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(process_alive(shim) for _, shim in groups):
        time.sleep(0.05)
    for pgid, shim in groups:
        if process_alive(shim):
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(process_alive(shim) for _, shim in groups):
        time.sleep(0.05)
    return len(groups)
