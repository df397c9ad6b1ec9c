"""The agents' gateway: one bidirectional stream per connected agent.

Up the stream: `register` (the Node), then heartbeats carrying node status and pod status updates.
A heartbeat that carries an update becomes one Raft write; its `seq` is acked only after that write
committed, so an agent never believes a status is recorded that the cluster could lose.

Liveness is the stream itself, as Kubernetes moved node heartbeats to cheap Lease objects: every
RENEW_INTERVAL this master writes "heard now" for every node whose stream is open here, all in one
Raft entry (commands.renew), which names the nodes only when they changed and otherwise the id of the
set the store already holds (RenewalSet). A stream stays open while its connection is alive, and HTTP/2 keepalive
pings (answered by gRPC's C core, every KEEPALIVE_S, see orchestrator.master.SERVER_OPTIONS) close a
connection whose agent stopped answering; an agent that exits closes its connection at once. So an
idle agent sends a heartbeat message only every 10 s (its own check that this master still answers),
and 1,000 idle nodes cost the masters no Python work per node per second. A node is judged silent at
most RENEW_INTERVAL plus a commit later than with a write per heartbeat, and, for an agent that hangs
with its connection open, after up to two keepalive periods more.

Pings are answered below Python, so an open stream alone is not trusted for ever. The renewal skips,
and ends, a stream that sent nothing for STREAM_SILENT_AFTER (an agent whose loop hangs, its gRPC core
still answering pings) or whose token was revoked. And when this master's renewals have not committed
for RENEW_GIVE_UP (its Raft path is stuck, though it knows a leader), it ends every stream it holds, so
its agents move to another master before their nodes' grace runs out.

The Raft leader serves no agent streams while another master is connected to it: it runs the
controllers, and during a scale-up its event loop, shared by thousands of pod writes and a third of the
nodes' streams, answered every gRPC call seconds late (a Get took up to 12 s while the followers
answered within 0.5 s, and the agents on it gave up waiting for acks and all left at once, 2026-12-04);
without the streams it answered within 0.7 s. As kubelets talk to API servers and not to the
controller manager, an agent that connects to the leader is refused (UNAVAILABLE), and the streams a
master holds when it becomes leader are ended, SHED_PER_PASS each renewal pass, so their agents move to
the next master. The leader still takes an agent whose last attempts, one at each other master, all
failed (FAILED_MASTERS, as the agent counts them, the stream that broke included): when the followers
are down or out of its reach, it is better served here than not at all. It keeps such a stream for
LAST_RESORT_FOR, then ends it like the others, so that the agent goes back to a follower once one
answers again.

Down the stream: the pods bound to the node. The first assignment on a stream is the whole set; each
later one carries only the pods that changed and the uids of those that left (`incremental`), so a
node's 30th pod does not resend the 29 before it. The agent keeps the set (like a kubelet's pod source).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import grpc

from orchestrator import errors
from orchestrator.api.status import ANSWERED, internal, one_line, status_of
from orchestrator.api.wire import decode
from orchestrator.auth import Authenticator, Identity, bearer
from orchestrator.store import commands
from orchestrator.store.raft import RESYNC, Store
from orchestrator.store.writer import Writer
from orchestrator.transport import FAILED_MASTERS
from skiffpb import api_pb2 as api
from skiffpb import api_pb2_grpc as api_grpc

log = logging.getLogger(__name__)

Obj = dict[str, Any]
ASSIGNMENT_COALESCE = 0.005
RENEW_INTERVAL = 0.5
RENEW_GIVE_UP = 2.0  # renewals failing this long end this master's streams (node grace: 3 s)
RENEWALS_IN_FLIGHT = 4  # renewals committing at once (RENEW_GIVE_UP / RENEW_INTERVAL)
ACK_WITHIN = 4.0  # a heartbeat is acked (an error ack: not committed) within this; the agent waits 6 s
STREAM_SILENT_AFTER = 25.0  # an agent heartbeats every 10 s: a stream silent this long is not renewed
LEADER_SHEDS = "this master is the Raft leader, which runs the controllers: agents connect to the others"
SHED_PER_PASS = 50  # streams a new leader ends per renewal pass, so their agents do not all move at once
LAST_RESORT_FOR = 30.0  # seconds the leader keeps a last-resort stream before it sends the agent to try again


@dataclass(eq=False)
class _Stream:
    """One agent's open stream: what its sender waits on, whose credential it is, when it last spoke."""

    token: str
    heard: float  # loop time of its last message
    last_resort: bool = False  # taken by the leader from an agent no other master kept (module docstring)
    opened: float = 0.0  # loop time it was opened
    dirty: asyncio.Event = field(default_factory=asyncio.Event)  # "its node's pods changed"
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    reason: Exception | None = None

    def end(self, reason: Exception) -> None:
        if self.reason is None:
            self.reason = reason
        self.ended.set()
        self.dirty.set()


class NodeGatewayServicer(api_grpc.NodeGatewayServicer):
    def __init__(self, store: Store, auth: Authenticator) -> None:
        self.store = store
        self.auth = auth
        self.writer = Writer(store)
        self._streams: dict[str, _Stream] = {}  # node name -> its open stream here
        self._renewer: asyncio.Task[None] | None = None
        self._renewal_set = RenewalSet()
        self._encodings: dict[str, tuple[str, bytes]] = {}  # pod uid -> (resourceVersion, its JSON)
        store.subscribe(self._on_change)

    @property
    def connected(self) -> int:
        return len(self._streams)

    def _on_change(self, etype: str, obj: Obj) -> None:
        if etype == RESYNC:  # pod events were lost: every stream compares its node's pods again
            for stream in self._streams.values():
                stream.dirty.set()
            return
        if obj.get("kind") != "Pod":
            return
        if etype == "DELETED":
            self._encodings.pop(obj["metadata"].get("uid", ""), None)
        node = obj.get("spec", {}).get("nodeName")
        open_stream = self._streams.get(node) if node else None
        if open_stream is not None:
            open_stream.dirty.set()

    # A coroutine reading and writing through `context` (grpc.aio's reader/writer API), which the generated
    # servicer stub does not type: it only has the iterator form of a stream handler.
    async def Connect(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:  # type: ignore[override]
        try:
            metadata = context.invocation_metadata()
            self.auth.require(metadata, "node")
            ident = self.auth.identity(metadata)
            token = bearer(metadata) or ""
            sheds = self._sheds()
            last_resort = sheds and _failed_masters(metadata) >= self.store.members() - 1
            if sheds and not last_resort:
                raise errors.Unavailable(LEADER_SHEDS)
            first = await context.read()
            if first is grpc.aio.EOF or not first.HasField("register"):
                raise errors.Invalid("the first message on the stream must be register")
            registered = decode(first.register, "the registered Node")
            _may_register(ident, registered)
            node = await self.writer.register_node(registered)
            name = node["metadata"]["name"]
        except ANSWERED as e:
            await context.abort(*status_of(e))
            return
        except grpc.aio.AbortError:
            raise
        except Exception as e:
            await context.abort(*internal(e, "node registration"))
            return
        log.info("agent connected node=%s peer=%s", name, context.peer())
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew_forever())
        now = asyncio.get_running_loop().time()
        stream = _Stream(token, now, last_resort=last_resort, opened=now)
        stream.dirty.set()
        previous = self._streams.get(name)
        self._streams[name] = stream
        if previous is not None:
            previous.end(_StreamEnded())  # another stream for this node replaced that one
        out: asyncio.Queue[api.MasterMessage] = asyncio.Queue()
        stream_id = uuid.uuid4().hex[:8]
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._send_assignments(name, stream, out))
                tg.create_task(self._write(context, out))
                tg.create_task(self._end_when_leaderless())
                tg.create_task(self._end_when_told(stream))
                await self._read(context, name, stream_id, out, ident, stream)
                raise _StreamEnded
        except* _StreamEnded:
            pass
        except* _AgentGone as eg:
            log.info("agent stream node=%s ended: %s", name, eg.exceptions[0])
        except* errors.SkiffError as eg:
            ended = _first(eg)
            log.info("agent stream node=%s ended: %s", name, ended)
            await context.abort(*status_of(ended))  # the agent learns why (and moves)
        except* grpc.aio.AbortError:
            raise
        except* Exception as eg:
            await context.abort(*internal(eg.exceptions[0], f"agent stream of node {name!r}"))
        finally:
            if self._streams.get(name) is stream:
                del self._streams[name]
            log.info("agent disconnected node=%s", name)

    @staticmethod
    async def _end_when_told(stream: _Stream) -> None:
        await stream.ended.wait()
        raise stream.reason or _StreamEnded()

    async def _end_when_leaderless(self) -> None:
        """End the stream once this master has known no Raft leader for a while (Store.cut_off): its heartbeats cannot commit here, and the agent moves to another master well
        within the node grace instead of going NotReady behind a cut-off master."""
        await self.store.cut_off().wait()
        raise errors.Unavailable(
            f"this master has known no Raft leader for {self.store.leaderless_for():.1f}s"
        )

    async def _read(
        self, context: Any, name: str, stream_id: str, out: asyncio.Queue, ident: Identity, stream: _Stream
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            msg = await context.read()
            if msg is grpc.aio.EOF:
                return
            stream.heard = loop.time()
            if not self.auth.valid(stream.token):
                raise errors.Unauthenticated(f'the credential of node "{name}" was revoked')
            if not msg.HasField("heartbeat"):
                continue
            hb = msg.heartbeat
            if not hb.pods and not hb.node_status:  # liveness only: the open stream is renewed anyway
                await out.put(api.MasterMessage(ack=api.HeartbeatAck(seq=hb.seq)))
                continue
            if ident.node:  # NodeRestriction: a node reports only the pods bound to it
                for p in hb.pods:
                    pod = self.store.get("Pod", p.namespace, p.name)
                    bound = (pod.get("spec") or {}).get("nodeName") if pod else name
                    if bound and bound != name:
                        raise errors.PermissionDenied(
                            f'node "{name}" may not report pod {p.namespace}/{p.name}, bound to "{bound}"'
                        )
            rid = f"hb/{name}/{stream_id}/{hb.seq}"
            try:
                node_status, pods = _parse_heartbeat(hb)
            except ValueError as e:  # a malformed heartbeat is answered on the stream, which goes on
                await out.put(api.MasterMessage(ack=api.HeartbeatAck(seq=hb.seq, error=one_line(str(e)))))
                continue
            error = ""
            deadline = loop.time() + ACK_WITHIN
            while (left := deadline - loop.time()) > 0.05:
                try:
                    await self.writer.heartbeat(name, node_status, pods, rid, timeout=left)
                    error = ""
                    break
                except errors.Unavailable as e:  # retried (same request id) while time is left
                    error = str(e)
                    await asyncio.sleep(0.05)
                except errors.SkiffError as e:
                    error = str(e)
                    break
            await out.put(api.MasterMessage(ack=api.HeartbeatAck(seq=hb.seq, error=error)))

    async def _send_assignments(self, name: str, stream: _Stream, out: asyncio.Queue) -> None:
        sent: dict[str, tuple] | None = None  # uid -> the version sent; None: nothing sent yet
        dirty = stream.dirty
        while not stream.ended.is_set():
            await dirty.wait()
            dirty.clear()
            await asyncio.sleep(ASSIGNMENT_COALESCE)  # coalesce a burst of bindings into one message
            pods, rev = self.store.pods_on_node(name)
            current = {p["metadata"]["uid"]: (p, _version(p)) for p in pods}
            if sent is None:  # the first assignment is always sent, even when empty
                message = api.PodAssignment(pods=[self._encoded(p) for p, _ in current.values()])
            else:
                changed = [p for uid, (p, v) in current.items() if sent.get(uid) != v]
                removed = [uid for uid in sent if uid not in current]
                if not changed and not removed:
                    continue
                message = api.PodAssignment(
                    pods=[self._encoded(p) for p in changed], removed=removed, incremental=True
                )
            sent = {uid: v for uid, (_, v) in current.items()}
            message.resource_version = str(rev)
            await out.put(api.MasterMessage(assignment=message))

    def _encoded(self, pod: Obj) -> bytes:
        """A pod's JSON, encoded once per version: a node's assignment is its whole set of pods,
        sent again at each change, so without this each pod was encoded once per later change."""
        meta = pod["metadata"]
        version = meta.get("resourceVersion", "")
        cached = self._encodings.get(meta["uid"])
        if cached is None or cached[0] != version:
            cached = (version, json.dumps(pod).encode())
            self._encodings[meta["uid"]] = cached
        return cached[1]

    async def _write(self, context: Any, out: asyncio.Queue) -> None:
        while True:
            message = await out.get()
            try:
                await context.write(message)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # grpc's ExecuteBatchError: the agent's end of the stream is gone
                raise _AgentGone(f"the stream closed under a write ({type(e).__name__})") from None

    async def _renew_forever(self) -> None:
        """Every RENEW_INTERVAL: "heard now" for every node whose stream here is open, has spoken
        within STREAM_SILENT_AFTER and holds a valid token, in one Raft write (the others are ended).

        A renewal does not wait for the one before it: under load a commit can take longer than the
        interval, and renewals proposed one after another would then commit that much further apart
        (a commit of 1.5 s and the 0.5 s interval leave a node 2 s without news, most of its grace).
        Up to RENEWALS_IN_FLIGHT are committing at once, so they keep committing an interval apart
        however slow each is. Once none has committed for RENEW_GIVE_UP, every stream here is ended,
        and the agents move."""
        loop = asyncio.get_running_loop()
        committed = loop.time()  # when a renewal last committed, or there was none to make
        pending: set[asyncio.Task[None]] = set()

        async def renew(names: frozenset[str]) -> None:
            nonlocal committed
            set_id, nodes = self._renewal_set.next(names)
            try:
                await self.writer.renew(self.store.address, set_id, nodes, timeout=RENEW_GIVE_UP)
            except errors.Precondition as e:  # committed, and refused: the next renewal sends the set
                self._renewal_set.refused(set_id)
                committed = loop.time()
                log.info("renewal of %d nodes' liveness refused: %s", len(names), e)
            except errors.SkiffError as e:
                silent = loop.time() - committed
                log.info(
                    "renewing %d nodes' liveness failed (%.1fs since a commit): %s", len(names), silent, e
                )
            else:
                self._renewal_set.stored(set_id, names)
                committed = loop.time()

        try:
            while True:
                await asyncio.sleep(RENEW_INTERVAL)
                started = loop.time()
                beats = self._renewable(started)
                if not beats:
                    if not pending:
                        committed = started
                    continue
                failing = started - committed
                if failing >= RENEW_GIVE_UP:
                    log.warning(
                        "renewals have not committed for %.1fs: ending %d agent streams, so they move to another master",
                        failing,
                        len(beats),
                    )
                    for stream in beats.values():
                        stream.end(
                            errors.Unavailable(
                                f"this master's renewals have not committed for {failing:.1f}s"
                            )
                        )
                    committed = started
                elif len(pending) < RENEWALS_IN_FLIGHT:
                    task = asyncio.create_task(renew(frozenset(beats)))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
        finally:
            for task in pending:
                task.cancel()

    def _sheds(self) -> bool:
        """Whether agents' streams belong on other masters: this one leads, and another is connected."""
        return self.store.is_leader() and self.store.peers_connected() > 0

    def _renewable(self, now: float) -> dict[str, _Stream]:
        """The streams to renew: open, heard from within STREAM_SILENT_AFTER, with a valid token, and
        not to be shed by a leader; the others are ended."""
        beats = {}
        shed = SHED_PER_PASS if self._sheds() else 0
        for name, stream in list(self._streams.items()):
            if shed and (not stream.last_resort or now - stream.opened > LAST_RESORT_FOR):
                shed -= 1
                stream.end(errors.Unavailable(LEADER_SHEDS))
            elif not self.auth.valid(stream.token):
                stream.end(errors.Unauthenticated(f'the credential of node "{name}" was revoked'))
            elif now - stream.heard > STREAM_SILENT_AFTER:
                silence = now - stream.heard
                stream.end(errors.Unavailable(f"no message from the agent for {silence:.0f}s"))
            else:
                beats[name] = stream
        return beats


class RenewalSet:
    """Which renewal set a master's next renewal names (commands.renew): the set the store holds for
    it, by id alone, while its streams are the same nodes; otherwise the new set, in full."""

    def __init__(self) -> None:
        self._stored: tuple[int, frozenset[str]] | None = None  # as far as this master knows
        self._proposed: tuple[int, frozenset[str]] | None = None

    def next(self, names: frozenset[str]) -> tuple[int, list[str] | None]:
        """(the set's id, its nodes or None: the store holds it)."""
        if self._stored is not None and self._stored[1] == names:
            return self._stored[0], None
        if self._proposed is None or self._proposed[1] != names:
            self._proposed = (uuid.uuid4().int >> 66, names)  # one id for as long as it is resent
            # Until it commits the store may hold either set: a return to the stored one, while
            # this one is still committing, is sent in full too, or it would be refused.
            self._stored = None
        return self._proposed[0], sorted(names)

    def stored(self, set_id: int, names: frozenset[str]) -> None:
        """A renewal of `set_id` committed: the store holds that set."""
        self._stored = (set_id, names)

    def refused(self, set_id: int) -> None:
        """The store does not hold `set_id` (its full renewal was lost, or another replaced it)."""
        if self._stored is not None and self._stored[0] == set_id:
            self._stored = None


def _failed_masters(metadata: Any) -> int:
    """The agent's count of masters it failed to stay connected to in a row (0 when absent or bad)."""
    for key, value in metadata or ():
        if key == FAILED_MASTERS:
            try:
                return max(0, int(value))
            except (TypeError, ValueError):
                return 0
    return 0


def _may_register(ident: Identity, obj: Any) -> None:
    """Kubernetes' NodeRestriction for registration: a node's own credential registers only its own
    Node (the shared node credential, for hollow nodes, may register any)."""
    if not ident.node:
        return
    kind = obj.get("kind", "Node") if isinstance(obj, dict) else None
    name = ((obj.get("metadata") or {}) if isinstance(obj, dict) else {}).get("name")
    if kind != "Node" or name != ident.node:
        raise errors.PermissionDenied(
            f'node "{ident.node}" may register only the Node "{ident.node}", not {kind or "that"} {name!r}'
        )


def _version(pod: Obj) -> tuple:
    """What the agent acts on: spec (its generation) and deletion, not the status it reported itself;
    a Ready condition that is not True counts, so that the agent sees (and corrects) another writer
    marking its pods not Ready. The agent's own Ready reports cause no new assignment."""
    meta = pod["metadata"]
    return meta.get("generation", 0), meta.get("deletionTimestamp", ""), _ready(pod) not in ("True", "")


def _ready(pod: Obj) -> str:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status", "")
    return ""


def _first(eg: BaseExceptionGroup[errors.SkiffError]) -> errors.SkiffError:
    first = eg.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


class _StreamEnded(Exception):
    pass


class _AgentGone(Exception):
    """The agent's end of the stream closed while the master wrote to it."""


def _parse_heartbeat(hb: api.Heartbeat) -> tuple[Obj | None, list[Obj]]:
    """The node status and the pod updates a heartbeat carries; ValueError (one line) when one of
    its JSON documents is malformed or not an object."""
    node_status = _json_object(hb.node_status, "node_status") if hb.node_status else None
    pods = [
        commands.pod_update(
            p.namespace,
            p.name,
            p.uid,
            _json_object(p.status, f"pod {p.namespace}/{p.name} status") if p.status else None,
            p.deleted,
        )
        for p in hb.pods
    ]
    return node_status, pods


def _json_object(data: str | bytes, what: str) -> Obj:
    try:
        return decode(data.encode() if isinstance(data, str) else data, what)
    except errors.Invalid as e:
        raise ValueError(f"malformed heartbeat: {e}") from None
