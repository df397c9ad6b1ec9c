"""The API servicer: the clients' gRPC API over the store.

It authenticates, converts JSON to dicts, writes through `store.writer.Writer` (which validates and
builds the store commands) and maps errors to status codes in `api.status`. Reads are served from
this master's replica; writes go through Raft and are exactly-once per request id.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from orchestrator import errors, model
from orchestrator.api.status import ANSWERED, guard, guard_stream, status_of
from orchestrator.auth import Authenticator
from orchestrator.client import CHANNEL_OPTIONS
from orchestrator.store.raft import Store
from orchestrator.store.state import not_found
from orchestrator.store.writer import Writer, namespace_of
from skiffpb import api_pb2 as api
from skiffpb import api_pb2_grpc as api_grpc

log = logging.getLogger(__name__)

Obj = dict[str, Any]
BOOKMARK_INTERVAL = 2.0


def decode(data: bytes) -> Obj:
    obj = json.loads(data)
    if not isinstance(obj, dict):
        raise errors.Invalid("object must be a JSON object")
    return obj


def encode(obj: Obj | None) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() if obj is not None else b""


def _kind(name: str) -> str:
    try:
        return model.resolve_kind(name)
    except model.ValidationError as e:
        raise errors.NotFound(str(e)) from None


class Filter:
    """A list/watch filter: namespace, label selector, field selector."""

    def __init__(self, kind: str, namespace: str, label_selector: str, field_selector: str) -> None:
        self.kind = kind
        self.namespace = namespace if model.KINDS[kind].namespaced else ""
        try:
            self.labels = model.parse_selector(label_selector) if label_selector else ()
            self.fields = model.parse_field_selector(field_selector) if field_selector else ()
        except model.ValidationError as e:
            raise errors.Invalid(str(e)) from None

    def __call__(self, obj: Obj) -> bool:
        if self.namespace and obj["metadata"].get("namespace") != self.namespace:
            return False
        if self.labels and not model.requirements_match(self.labels, model.labels_of(obj)):
            return False
        return not self.fields or model.fields_match(self.fields, obj)


class ApiServicer(api_grpc.ApiServicer):
    def __init__(self, store: Store, auth: Authenticator, status: Callable[[], api.MasterStatus]) -> None:
        self.store = store
        self.auth = auth
        self.writer = Writer(store)
        self._status = status

    @guard("write")
    async def Create(self, request: api.WriteRequest, context: Any) -> api.ObjectReply:
        return api.ObjectReply(
            object=encode(await self.writer.create(decode(request.object), request.request_id))
        )

    async def Write(self, request_iterator: AsyncIterator[api.WriteCall], context: Any) -> AsyncIterator:
        """Pipelined writes: each call runs as its own task; results go out as they complete.

        A caller without the right is answered call by call (UNAUTHENTICATED or PERMISSION_DENIED in
        each result), not by ending the stream: a stream ended while the client is still sending can
        reach the client as a bare INTERNAL error instead of its status.
        """
        refused: errors.SkiffError | None = None
        try:
            self.auth.require(context.invocation_metadata(), "write")
        except errors.SkiffError as e:
            refused = e
        results: asyncio.Queue[api.WriteResult | None] = asyncio.Queue()
        tasks: set[asyncio.Task[None]] = set()  # held here: the loop keeps only weak references
        spawned = 0

        async def one(call: api.WriteCall) -> None:
            results.put_nowait(await self._write_result(call, refused))  # exactly one result per call

        async def read() -> None:
            nonlocal spawned
            try:
                async for call in request_iterator:
                    task = asyncio.create_task(one(call))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    spawned += 1
            finally:
                results.put_nowait(None)  # the client is done writing (or gone)

        reader = asyncio.create_task(read())
        reading, sent = True, 0
        try:
            while reading or sent < spawned:
                item = await results.get()
                if item is None:
                    reading = False
                    continue
                sent += 1
                yield item
        finally:
            reader.cancel()
            for t in list(tasks):
                t.cancel()

    async def _write_result(self, call: api.WriteCall, refused: errors.SkiffError | None) -> api.WriteResult:
        req = call.request
        rid = req.request_id
        try:
            if refused is not None:
                raise refused
            if not rid:
                raise errors.Invalid("request_id is required on a Write stream")
            if call.method == "Create":
                obj = await self.writer.create(decode(req.object), rid)
            elif call.method in ("Apply", "Update"):
                obj = await self.writer.update(decode(req.object), rid, mode=call.method.lower())
            else:
                raise errors.Invalid(f"unknown write method {call.method!r} (known: Create, Apply, Update)")
            return api.WriteResult(request_id=rid, object=encode(obj))
        except ANSWERED as e:
            code, message = status_of(e)
            return api.WriteResult(request_id=rid, code=code.value[0], message=message)
        except Exception as e:  # one write's bug must not end the stream of the others
            log.exception("write %s failed", rid)
            return api.WriteResult(request_id=rid, code=grpc.StatusCode.INTERNAL.value[0], message=repr(e))

    @guard("write")
    async def Apply(self, request: api.WriteRequest, context: Any) -> api.ObjectReply:
        obj = await self.writer.update(decode(request.object), request.request_id, mode="apply")
        return api.ObjectReply(object=encode(obj))

    @guard("write")
    async def Update(self, request: api.WriteRequest, context: Any) -> api.ObjectReply:
        obj = await self.writer.update(decode(request.object), request.request_id)
        return api.ObjectReply(object=encode(obj))

    @guard("write")
    async def Patch(self, request: api.PatchRequest, context: Any) -> api.ObjectReply:
        obj = await self.writer.patch(
            _kind(request.kind),
            request.namespace,
            request.name,
            decode(request.patch),
            request.status,
            request.request_id,
        )
        return api.ObjectReply(object=encode(obj))

    @guard("write")
    async def Delete(self, request: api.DeleteRequest, context: Any) -> api.ObjectReply:
        obj = await self.writer.delete(
            _kind(request.kind), request.namespace, request.name, request.request_id, request.resource_version
        )
        return api.ObjectReply(object=encode(obj))

    @guard("read")
    async def Get(self, request: api.GetRequest, context: Any) -> api.ObjectReply:
        kind = _kind(request.kind)
        obj = self.store.get(kind, namespace_of(kind, request.namespace), request.name)
        if obj is None:
            raise errors.NotFound(not_found(kind, request.name)[2])
        return api.ObjectReply(object=encode(obj))

    @guard("read")
    async def List(self, request: api.ListRequest, context: Any) -> api.ListReply:
        kind = _kind(request.kind)
        keep = Filter(kind, request.namespace, request.label_selector, request.field_selector)
        items, rev = self.store.list(kind)
        return api.ListReply(items=[encode(o) for o in items if keep(o)], resource_version=str(rev))

    @guard_stream("read")
    async def Watch(self, request: api.WatchRequest, context: Any) -> AsyncIterator[api.WatchEvent]:
        kind = _kind(request.kind)
        keep = Filter(kind, request.namespace, request.label_selector, request.field_selector)
        if request.resource_version:
            try:
                rev = int(request.resource_version)
            except ValueError:
                raise errors.Invalid(
                    f"resourceVersion {request.resource_version!r} is not a number"
                ) from None
        else:
            items, rev = self.store.list(kind)
            for obj in items:
                if keep(obj):
                    yield api.WatchEvent(type="ADDED", object=encode(obj))
            yield api.WatchEvent(type="BOOKMARK", resource_version=str(rev))
        loop = asyncio.get_running_loop()
        last_bookmark = loop.time()
        while True:
            changed = self.store.change_event()
            for ev in self.store.events_after(rev):
                rev = ev.revision
                if ev.key.startswith(kind + "/") and keep(ev.obj):
                    yield api.WatchEvent(type=ev.type, object=encode(ev.obj), resource_version=str(rev))
                    last_bookmark = loop.time()
            if loop.time() - last_bookmark >= BOOKMARK_INTERVAL:
                # Lets a quiet filtered watch resume from a recent revision instead of a too-old one.
                yield api.WatchEvent(type="BOOKMARK", resource_version=str(rev))
                last_bookmark = loop.time()
            try:
                await asyncio.wait_for(changed.wait(), BOOKMARK_INTERVAL)
            except TimeoutError:
                pass

    @guard("read")
    async def Status(self, request: api.ClusterStatusRequest, context: Any) -> api.MasterStatus:
        return self._status()

    @guard_stream("read")
    async def Logs(self, request: api.LogsRequest, context: Any) -> AsyncIterator[api.LogChunk]:
        namespace = request.namespace or model.DEFAULT_NAMESPACE
        pod = self.store.get("Pod", namespace, request.pod)
        if pod is None:
            raise errors.NotFound(f'pods "{request.pod}" not found')
        node_name = pod.get("spec", {}).get("nodeName")
        if not node_name:
            raise errors.Precondition(f'pod "{request.pod}" is not scheduled to a node yet')
        node = self.store.get("Node", "", node_name)
        address = _agent_address(node)
        if not address:
            raise errors.Unavailable(f'node "{node_name}" has no agent address')
        token = self.auth.token_for("node")
        async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
            call = api_grpc.AgentStub(channel).Logs(request, metadata=(("authorization", f"Bearer {token}"),))
            try:
                async for chunk in call:
                    yield chunk
            except grpc.aio.AioRpcError as e:
                from orchestrator.client import to_error

                raise to_error(e) from None


def _agent_address(node: Obj | None) -> str:
    if node is None:
        return ""
    status = node.get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    address = next((a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), "")
    return f"{address}:{port}" if address and port else ""
