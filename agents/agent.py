"""The agent shell: the node's stream to the masters, and the Agent gRPC service (logs).

`NodeSession` keeps one NodeGateway.Connect stream open to some master:
- first message `register` (the Node: name, labels, capacity, addresses, daemon endpoint, isolation);
- then heartbeats: at once (batched for `batch_window`, 20 ms) when pod statuses or the node status
  changed, carrying the node status when it changed (and on a new stream) and every pod status update
  not yet acknowledged; with nothing to report, one every `heartbeat` seconds (10 s), to check that
  the master still answers. The node's liveness is the open stream itself: the master renews every
  node whose stream it holds, and HTTP/2 keepalive pings (KEEPALIVE_OPTIONS, answered by gRPC's C
  core) end a stream whose other end stopped answering, on either side, within about two seconds;
- the master acks heartbeat `seq` after its Raft write committed: only then is an update dropped
  (`UpdateQueue`); an error ack, a silent master (no ack after `resend_after`) or a new stream sends it
  again. Updates are idempotent (the latest status per pod);
- `assignment` messages go to the runtime: the first on a stream is every pod bound to the node, later
  ones only what changed (`Assignment` keeps the whole set);
- the stream is abandoned when it breaks, when nothing arrived for `3 x heartbeat`, or when a
  heartbeat has had no ack for ACK_TIMEOUT (the master acks every one within 4 s, an error ack if its
  write did not commit: a master whose Python loop hangs still answers pings from its C core); the
  session then connects to the next master in the list, without touching any container. The Raft
  leader refuses the stream unless the agent's last attempts, one at each other master, all failed (the
  count travels with each Connect): it runs the controllers, and the followers serve the nodes.

The hollow nodes of one process (`--hollow N`) share one channel, so one HTTP/2 connection, per master
(`channels`), as a kubelet's clients share theirs; each starts at a different master.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import platform
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import grpc

from orchestrator.client import CHANNEL_OPTIONS
from orchestrator.model import format_bytes, rfc3339
from orchestrator.transport import FAILED_MASTERS, KEEPALIVE_MS, ClientTLS
from skiffpb import api_pb2 as api
from skiffpb import api_pb2_grpc as api_grpc

log = logging.getLogger(__name__)

Obj = dict[str, Any]
HEARTBEAT = 10.0  # seconds between heartbeats when there is nothing to report
ACK_TIMEOUT = 6.0  # a heartbeat not acked this long: the master is silent (it acks within 4 s)
# The stream is the node's liveness, so a connection that stopped answering must end in about two
# seconds (the node grace is 3 s): a ping every second, one second to answer it.
KEEPALIVE = [
    ("grpc.keepalive_time_ms", KEEPALIVE_MS),
    ("grpc.keepalive_timeout_ms", KEEPALIVE_MS),
    ("grpc.http2.ping_timeout_ms", KEEPALIVE_MS),
]
KEEPALIVE_OPTIONS = [
    *((k, v) for k, v in CHANNEL_OPTIONS if k not in dict(KEEPALIVE)),
    *KEEPALIVE,
]
PodRef = tuple[str, str, str]  # namespace, name, uid
VERSION = "skiff-v0.1.0"


# ---------------------------------------------------------------- the Node object


def machine_capacity() -> tuple[str, str]:
    """(cpu, memory) of this machine as quantities."""
    cpu = str(os.cpu_count() or 1)
    mem = 0
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) * 1024
    return cpu, format_bytes(mem - mem % (1 << 20)) if mem else "4Gi"


def _os_image() -> str:
    with contextlib.suppress(OSError):
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    return platform.system()


def _machine_id() -> str:
    with contextlib.suppress(OSError):
        return Path("/etc/machine-id").read_text().strip()
    return ""


ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


@dataclass(frozen=True)
class NodeSpec:
    name: str
    address: str
    cpu: str
    memory: str
    max_pods: int = 110
    labels: Mapping[str, str] = field(default_factory=dict)
    agent_port: int = 0
    isolation: str = "none"


def node_status(spec: NodeSpec, ready: bool = True) -> Obj:
    """The NodeStatus this agent reports (no timestamps: the master stamps heartbeats itself)."""
    resources = {"cpu": spec.cpu, "memory": spec.memory, "pods": str(spec.max_pods)}
    return {
        "capacity": dict(resources),
        "allocatable": dict(resources),
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "reason": "KubeletReady" if ready else "KubeletNotReady",
                "message": "skiff agent is posting ready status" if ready else "agent is stopping",
            }
        ],
        "addresses": [
            {"type": "InternalIP", "address": spec.address},
            {"type": "Hostname", "address": spec.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": spec.agent_port}},
        "nodeInfo": {
            "machineID": _machine_id(),
            "kernelVersion": platform.release(),
            "osImage": _os_image(),
            "containerRuntimeVersion": "skiff-shim://0.1.0",
            "kubeletVersion": VERSION,
            "operatingSystem": platform.system().lower(),
            "architecture": ARCH.get(platform.machine(), platform.machine()),
        },
        "isolation": spec.isolation,
    }


def build_node(spec: NodeSpec) -> Obj:
    labels = {
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": platform.system().lower(),
        "kubernetes.io/arch": ARCH.get(platform.machine(), platform.machine()),
        **spec.labels,
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": spec.name, "labels": labels},
        "spec": {},
        "status": node_status(spec),
    }


def parse_labels(text: str) -> dict[str, str]:
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        k, _, v = part.partition("=")
        out[k.strip()] = v.strip()
    return out


# ---------------------------------------------------------------- updates awaiting their ack


class UpdateQueue:
    """Pod status updates not yet committed: the latest per pod, until the heartbeat carrying it is acked.

    `take(seq, now)` picks what heartbeat `seq` carries (updates not already in flight in their latest
    version, and those in flight longer than `resend_after`); `ack(seq, ok)` drops what it carried
    unless a newer version arrived meanwhile (or, on an error ack, makes it due again); `reset()` (new
    stream) makes everything due again.
    """

    def __init__(self, resend_after: float = 3.0) -> None:
        self.resend_after = resend_after
        self.pending: dict[PodRef, tuple[int, api.PodStatusUpdate]] = {}
        self._version = 0
        self._inflight: dict[int, dict[PodRef, int]] = {}
        self._sent: dict[PodRef, tuple[int, float]] = {}  # version in flight, when sent

    def put(self, ref: PodRef, status: Obj | None, deleted: bool) -> None:
        self._version += 1
        update = api.PodStatusUpdate(
            namespace=ref[0],
            name=ref[1],
            uid=ref[2],
            status=json.dumps(status).encode() if status is not None else b"",
            deleted=deleted,
        )
        self.pending[ref] = (self._version, update)

    def due(self, now: float) -> bool:
        return any(self._is_due(ref, v, now) for ref, (v, _) in self.pending.items())

    def next_resend(self) -> float:
        """When the earliest update in flight is due again (infinity: none is in flight)."""
        return min(
            (self._sent[ref][1] + self.resend_after for ref in self.pending if ref in self._sent),
            default=float("inf"),
        )

    def _is_due(self, ref: PodRef, version: int, now: float) -> bool:
        sent = self._sent.get(ref)
        return sent is None or sent[0] != version or now - sent[1] >= self.resend_after

    def take(self, seq: int, now: float) -> list[api.PodStatusUpdate]:
        out = []
        carried: dict[PodRef, int] = {}
        for ref, (version, update) in self.pending.items():
            if self._is_due(ref, version, now):
                out.append(update)
                carried[ref] = version
                self._sent[ref] = (version, now)
        if carried:
            self._inflight[seq] = carried
        return out

    def ack(self, seq: int, ok: bool) -> None:
        carried = self._inflight.pop(seq, {})
        for ref, version in carried.items():
            current = self.pending.get(ref)
            if ok and current is not None and current[0] == version:
                del self.pending[ref]
                self._sent.pop(ref, None)
            elif not ok and self._sent.get(ref, (None,))[0] == version:
                self._sent.pop(ref, None)

    def reset(self) -> None:
        self._inflight.clear()
        self._sent.clear()

    def __len__(self) -> int:
        return len(self.pending)


# ---------------------------------------------------------------- the session


class PodRunner(Protocol):
    def set_assignment(self, pods: list[Obj]) -> None: ...


class Assignment:
    """The pods bound to this node, as the master's assignments build it: a whole one replaces the
    set; an incremental one replaces the pods it carries and drops the uids it names as removed."""

    def __init__(self) -> None:
        self.pods: dict[str, Obj] = {}  # uid -> pod, in the order the master sent them

    def apply(self, msg: api.PodAssignment) -> list[Obj]:
        """Apply one assignment message; the pods it carried (decoded)."""
        carried = [json.loads(p) for p in msg.pods]
        if not msg.incremental:
            self.pods = {}
        for uid in msg.removed:
            self.pods.pop(uid, None)
        for pod in carried:
            self.pods[(pod.get("metadata") or {}).get("uid", "")] = pod
        return carried

    def all(self) -> list[Obj]:
        return list(self.pods.values())


def _one_failure(group: BaseExceptionGroup) -> Exception:
    """What ended a stream, as one exception: the master's status when it sent one (a master that
    refuses the stream at once fails the reader with its status and the writer with "RPC already
    finished", both together), else the silence, else the call found closed."""
    found: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        e = pending.pop()
        if isinstance(e, BaseExceptionGroup):
            pending.extend(e.exceptions)
        else:
            found.append(e)
    for kind in (grpc.aio.AioRpcError, _Silent):
        for e in found:
            if isinstance(e, kind):
                return e
    return _Silent(f"stream closed ({found[0] if found else group})")


class NodeSession:
    """One node's registration and stream, failing over between masters. `run()` until cancelled."""

    def __init__(
        self,
        spec: NodeSpec,
        masters: Sequence[str],
        token: str,
        *,
        tls: ClientTLS,
        heartbeat: float = HEARTBEAT,
        batch_window: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
        channels: dict[str, grpc.aio.Channel] | None = None,
        first: int = 0,
    ) -> None:
        """`channels`: a channel per master address, shared with other sessions of this process (the
        caller closes them); `first`: the index in `masters` of the master tried first."""
        if not masters:
            raise ValueError("no master address given")
        self.spec = spec
        self.masters = list(masters)
        self.token = token
        self.tls = tls
        self.heartbeat = heartbeat
        self.batch_window = batch_window
        self.clock = clock
        self.queue = UpdateQueue(resend_after=3.0)
        self.runner: PodRunner | None = None
        self.connected = asyncio.Event()
        self.current_master = ""
        self.streams = 0  # streams opened so far (for tests and logs)
        self._changed = asyncio.Event()
        self._index = first
        self._shared = channels is not None
        self._channels: dict[str, grpc.aio.Channel] = {} if channels is None else channels
        self._assignment = Assignment()
        self._node_status: Obj = node_status(spec)
        self._status_sent: Obj | None = None
        self._unacked: dict[int, float] = {}  # heartbeat seq -> when it was sent (this stream)
        self.last_assignment: list[Obj] | None = None

    # -- inputs

    def report(self, ref: PodRef, status: Obj | None, deleted: bool) -> None:
        """A pod's new status (or its deletion): sent within `batch_window`, kept until acked."""
        self.queue.put(ref, status, deleted)
        self._changed.set()

    def set_node_status(self, status: Obj) -> None:
        self._node_status = status
        self._changed.set()

    # -- the loop

    async def run(self) -> None:
        delay = 0.05
        failed = 0  # masters in a row that ended or refused this session's stream (told to each one)
        try:
            while True:
                address = self.masters[self._index % len(self.masters)]
                started = self.clock()
                try:
                    await self._stream(address, failed)
                    reason = "stream ended"
                except grpc.aio.AioRpcError as e:
                    reason = self.tls.explain(e.details() or "") or f"{e.code().name}: {e.details()}"
                except _Silent as e:
                    reason = str(e)
                failed = 1 if self.connected.is_set() else failed + 1  # the master just left counts
                self.connected.clear()
                log.info("lost master=%s node=%s (%s); failing over", address, self.spec.name, reason)
                self._index += 1
                # A stream that lasted was healthy: try the next master at once.
                delay = 0.05 if self.clock() - started > 2 * self.heartbeat else min(delay * 2, 1.0)
                await asyncio.sleep(delay if self._index % len(self.masters) == 0 else 0.02)
        finally:
            if not self._shared:
                channels, self._channels = self._channels, {}
                for ch in channels.values():
                    await ch.close(grace=None)

    def _channel(self, address: str) -> grpc.aio.Channel:
        ch = self._channels.get(address)
        if ch is None:
            ch = self.tls.channel(address, KEEPALIVE_OPTIONS)
            self._channels[address] = ch
        return ch

    async def _stream(self, address: str, failed: int = 0) -> None:
        """One stream to `address`; `failed`: masters in a row that did not keep one (the Raft leader
        takes a stream only from an agent every other master failed, see orchestrator.api.gateway)."""
        stub = api_grpc.NodeGatewayStub(self._channel(address))
        call = stub.Connect(
            metadata=(("authorization", f"Bearer {self.token}"), (FAILED_MASTERS, str(failed)))
        )
        self.streams += 1
        self.queue.reset()
        self._status_sent = None
        self._unacked = {}  # heartbeat seq -> when it was sent, on this stream
        last_heard = [self.clock()]
        try:
            await call.write(api.AgentMessage(register=json.dumps(build_node(self.spec)).encode()))
            async with asyncio.TaskGroup() as tg:
                reader = tg.create_task(self._read(call, last_heard, address))
                writer = tg.create_task(self._write(call, last_heard))
                done, _ = await asyncio.wait([reader, writer], return_when=asyncio.FIRST_COMPLETED)
                for t in (reader, writer):
                    t.cancel()
        except* (grpc.aio.AioRpcError, _Silent, asyncio.InvalidStateError, grpc.aio.UsageError) as eg:
            raise _one_failure(eg) from None
        finally:
            call.cancel()

    async def _read(self, call: Any, last_heard: list[float], address: str) -> None:
        while True:
            msg = await call.read()
            if msg is grpc.aio.EOF:
                return
            last_heard[0] = self.clock()
            if not self.connected.is_set():
                self.current_master = address
                self.connected.set()
                log.info("connected node=%s master=%s", self.spec.name, address)
            if msg.HasField("ack"):
                self._unacked.pop(msg.ack.seq, None)
                ok = not msg.ack.error
                if not ok:
                    log.warning("heartbeat %d not committed: %s", msg.ack.seq, msg.ack.error)
                self.queue.ack(msg.ack.seq, ok)
                if not ok:
                    self._changed.set()
            elif msg.HasField("assignment"):
                carried = self._assignment.apply(msg.assignment)
                pods = self._assignment.all()
                self.last_assignment = pods
                log.debug(
                    "assignment node=%s pods=%d carried=%d removed=%d rv=%s",
                    self.spec.name,
                    len(pods),
                    len(carried),
                    len(msg.assignment.removed),
                    msg.assignment.resource_version,
                )
                if self.runner is not None:
                    self.runner.set_assignment(pods)
                    self._resync_statuses(carried)

    def _resync_statuses(self, pods: list[Obj]) -> None:
        """Re-send our status of a pod whose stored status another writer changed (`pods`: those
        the last assignment carried, whose stored status is current).

        The node lifecycle controller marks the pods of a silent node not Ready; when the node is back,
        the stored status must return to what this agent observes, though nothing changed here.
        """
        statuses = getattr(self.runner, "statuses", None)
        if statuses is None:
            return
        stored = {
            (p["metadata"].get("namespace", ""), p["metadata"]["name"], p["metadata"].get("uid", "")): p.get(
                "status"
            )
            for p in pods
        }
        for ref, status in statuses():
            if ref in stored and status != stored[ref] and ref not in self.queue.pending:
                log.info("status of pod=%s/%s differs from the stored one; sending it again", ref[0], ref[1])
                self.queue.put(ref, status, False)
                self._changed.set()

    async def _write(self, call: Any, last_heard: list[float]) -> None:
        seq = 0
        silent_after = 3 * self.heartbeat
        next_beat = self.clock()
        while True:
            now = self.clock()
            if now - last_heard[0] > silent_after:
                raise _Silent(f"no message for {now - last_heard[0]:.1f}s")
            oldest = min(self._unacked.values(), default=float("inf"))
            if now - oldest > ACK_TIMEOUT:
                raise _Silent(f"no ack of a heartbeat for {now - oldest:.1f}s")
            status_changed = self._status_sent != self._node_status
            if now >= next_beat or self.queue.due(now) or status_changed:
                if now < next_beat and self.batch_window > 0:
                    await asyncio.sleep(self.batch_window)  # let a burst of updates ride together
                    now = self.clock()
                seq += 1
                hb = api.Heartbeat(seq=seq, pods=self.queue.take(seq, now))
                if self._status_sent != self._node_status:
                    hb.node_status = json.dumps(self._node_status).encode()
                    self._status_sent = self._node_status
                self._unacked[seq] = now
                await call.write(api.AgentMessage(heartbeat=hb))
                next_beat = now + self.heartbeat
            self._changed.clear()
            wake = min(
                next_beat,
                self.queue.next_resend(),
                last_heard[0] + silent_after + 0.01,
                min(self._unacked.values(), default=float("inf")) + ACK_TIMEOUT + 0.01,
            )
            wait = max(0.0, wake - self.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait)


class _Silent(Exception):
    """The master stopped answering on an open stream."""


# ---------------------------------------------------------------- hollow nodes


class HollowRunner:
    """Pretends to run pods (kubemark's hollow kubelet): Running and Ready at once, with a fake port map."""

    def __init__(self, session: NodeSession, address: str) -> None:
        self.session = session
        self.address = address
        self.known: dict[str, str] = {}  # uid -> "running" | "deleted"
        self._next_port = 20000

    def set_assignment(self, pods: list[Obj]) -> None:
        now = time.time()
        seen = set()
        for pod in pods:
            meta = pod.get("metadata") or {}
            uid = meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}"
            seen.add(uid)
            ref = (meta.get("namespace", "default"), meta.get("name", ""), meta.get("uid", ""))
            if meta.get("deletionTimestamp"):
                if self.known.get(uid) != "deleted":
                    self.known[uid] = "deleted"
                    self.session.report(ref, None, True)
            elif uid not in self.known:
                self.known[uid] = "running"
                self.session.report(ref, self._status(pod, now), False)
        for uid in [u for u in self.known if u not in seen]:
            del self.known[uid]

    def _status(self, pod: Obj, now: float) -> Obj:
        ts = rfc3339(now)
        mappings, statuses = [], []
        for c in pod.get("spec", {}).get("containers") or []:
            for p in c.get("ports") or []:
                self._next_port = 20000 + (self._next_port - 19999) % 40000
                m = {
                    "containerPort": int(p["containerPort"]),
                    "hostPort": self._next_port,
                    "hostIP": self.address,
                    "protocol": p.get("protocol") or "TCP",
                }
                if p.get("name"):
                    m["name"] = p["name"]
                mappings.append(m)
            statuses.append(
                {
                    "name": c["name"],
                    "state": {"running": {"startedAt": ts}},
                    "lastState": {},
                    "ready": True,
                    "restartCount": 0,
                    "image": c.get("image", ""),
                    "imageID": f"skiff://{c.get('image', '')}",
                    "containerID": f"hollow://{pod['metadata'].get('uid', '')}/{c['name']}",
                    "started": True,
                }
            )
        conditions = [
            {"type": t, "status": "True", "lastTransitionTime": ts}
            for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
        ]
        return {
            "phase": "Running",
            "conditions": conditions,
            "hostIP": self.address,
            "podIP": self.address,
            "startTime": ts,
            "containerStatuses": statuses,
            "portMappings": mappings,
        }


# ---------------------------------------------------------------- the Agent service (logs)


class Tokens:
    """The bearer tokens the Agent service accepts: the node token and every token of a tokens file."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self.tokens = {t for t in tokens if t}

    @staticmethod
    def load(token: str, tokens_file: str | None) -> Tokens:
        tokens = [token]
        if tokens_file:
            with open(tokens_file, encoding="utf-8") as f:
                tokens.extend(json.load(f).keys())
        return Tokens(tokens)

    def check(self, metadata: Iterable[tuple[str, Any]] | None) -> bool:
        for k, v in metadata or ():
            if k == "authorization" and isinstance(v, str) and v.startswith("Bearer "):
                return v[len("Bearer ") :].strip() in self.tokens
        return False


class LogSource(Protocol):
    def log_files(
        self, namespace: str, pod: str, container: str, previous: bool
    ) -> tuple[list[Path], Callable[[], bool]]:
        """The files holding the log (oldest first) and a `running()` test for follow."""
        ...


def _read_from(path: Path, pos: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(pos)
        return f.read(1 << 20)


def tail(data: bytes, lines: int) -> bytes:
    """The last `lines` lines of `data` (all when negative)."""
    if lines < 0:
        return data
    if lines == 0:
        return b""
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:])


class AgentServicer(api_grpc.AgentServicer):
    """Agent.Logs: a container's log (tail, follow, previous instance), for bearer tokens it accepts."""

    def __init__(self, source: LogSource, tokens: Tokens, *, poll: float = 0.1) -> None:
        self.source = source
        self.tokens = tokens
        self.poll = poll

    async def Logs(
        self, request: api.LogsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[api.LogChunk]:
        if not self.tokens.check(context.invocation_metadata()):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid or missing bearer token")
        try:
            files, running = self.source.log_files(
                request.namespace or "default", request.pod, request.container, request.previous
            )
        except LookupError as e:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(e))
        except ValueError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        data = b""
        for f in files:
            with contextlib.suppress(OSError):
                data += f.read_bytes()
        out = tail(data, request.tail_lines)
        for i in range(0, len(out), 64 * 1024):
            yield api.LogChunk(data=out[i : i + 64 * 1024])
        if not request.follow or request.previous or not files:
            return
        path = files[-1]
        pos = len(data) - sum(f.stat().st_size for f in files[:-1] if f.exists()) if files else 0
        ino = path.stat().st_ino if path.exists() else 0
        pos = max(0, pos)
        while True:
            alive = running()
            try:
                st = path.stat()
                if st.st_ino != ino:
                    ino, pos = st.st_ino, 0
                if st.st_size > pos:
                    chunk = _read_from(path, pos)
                    pos += len(chunk)
                    yield api.LogChunk(data=chunk)
                    continue
            except FileNotFoundError:
                pass
            if not alive:
                return
            await asyncio.sleep(self.poll)
