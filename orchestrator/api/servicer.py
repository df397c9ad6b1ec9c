"""The API servicer: the clients' gRPC API over the store.

It authenticates, converts JSON to dicts, writes through `store.writer.Writer` (which validates and
builds the store commands) and maps errors to status codes in `api.status`. Reads are served from
this master's replica; writes go through Raft and are exactly-once per request id.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from orchestrator import errors, model
from orchestrator.api.logs import pod_logs
from orchestrator.api.status import ANSWERED, guard, guard_stream, internal, status_of
from orchestrator.api.wire import decode, encode
from orchestrator.audit import AuditLog
from orchestrator.auth import Authenticator, Identity
from orchestrator.store import paging
from orchestrator.store.admission import Admission
from orchestrator.store.query import Filter
from orchestrator.store.raft import Store
from orchestrator.store.state import not_found
from orchestrator.store.watch import caught_up, changes, fresh, parse_revision
from orchestrator.store.writer import Writer, namespace_of
from orchestrator.transport import ClientTLS
from skiffpb import api_pb2 as api
from skiffpb import api_pb2_grpc as api_grpc

log = logging.getLogger(__name__)

Obj = dict[str, Any]
BOOKMARK_INTERVAL = 2.0
STREAM_IN_FLIGHT = 64  # unanswered calls one Write stream may have; it reads no more until one is answered
STREAM_PAUSE = 0.25  # seconds a Write stream reads nothing after a call read then was refused (backpressure)


_CODE_NAMES = {c.value[0]: c.name for c in grpc.StatusCode}


def _kind(name: str) -> str:
    try:
        return model.resolve_kind(name)
    except model.ValidationError as e:
        raise errors.NotFound(str(e)) from None


def audited(fn: Callable) -> Callable:
    """Record a unary write in the master's audit log (when it has one), answered or refused."""

    @functools.wraps(fn)
    async def handler(self: ApiServicer, request: Any, context: grpc.aio.ServicerContext) -> Any:
        result = "OK"
        try:
            return await fn(self, request, context)
        except ANSWERED as e:
            result = status_of(e)[0].name
            raise
        except Exception:
            result = grpc.StatusCode.INTERNAL.name  # the guard answers it so
            raise
        finally:
            if self.audit is not None:
                self._record(self._identity(context.invocation_metadata()), fn.__name__, request, result)

    return handler


class ApiServicer(api_grpc.ApiServicer):
    def __init__(
        self,
        store: Store,
        auth: Authenticator,
        status: Callable[[], Awaitable[api.MasterStatus]],
        audit: AuditLog | None = None,
        *,
        agent_tls: ClientTLS,
        admission: Admission,
    ) -> None:
        self.store = store
        self.auth = auth
        self.admission = admission
        self.writer = Writer(store, admission=admission)
        self._status = status
        self.audit = audit
        self.agent_tls = agent_tls

    def _identity(self, metadata: Any) -> Identity:
        try:
            return self.auth.identity(metadata)
        except errors.SkiffError:
            return Identity("-")

    def _record(self, who: Identity, method: str, request: Any, result: str) -> None:
        """One audit line for a write: its kind, namespace and name from the request."""
        assert self.audit is not None
        if isinstance(request, api.WriteRequest):
            try:
                obj = decode(request.object)
            except errors.SkiffError:
                obj = {}
            obj = obj if isinstance(obj, dict) else {}
            found = obj.get("metadata")
            meta: dict[str, Any] = found if isinstance(found, dict) else {}
            kind, ns, name = (
                str(obj.get("kind", "")),
                str(meta.get("namespace", "")),
                str(meta.get("name", "")),
            )
        else:
            kind, ns, name = request.kind, request.namespace, request.name
        self.audit.record("grpc", who, method.lower(), kind, ns, name, result)

    @guard("write")
    @audited
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
        who = self._identity(context.invocation_metadata())
        with contextlib.ExitStack() as held:
            if refused is None:
                try:
                    held.enter_context(self.admission.stream(who.credential))
                except errors.TooManyRequests as e:
                    refused = e  # every call on this stream is answered RESOURCE_EXHAUSTED
            async for result in self._write_stream(request_iterator, refused, who):
                yield result

    async def _write_stream(
        self, request_iterator: AsyncIterator[api.WriteCall], refused: errors.SkiffError | None, who: Identity
    ) -> AsyncIterator[api.WriteResult]:
        """The calls of one Write stream, at most STREAM_IN_FLIGHT unanswered at a time. After a call
        is refused RESOURCE_EXHAUSTED the stream reads nothing more for STREAM_PAUSE seconds after
        that call was read: HTTP/2 flow control then holds the client's further writes, so a client
        that ignores the retry hint costs the master nothing while it waits, and a saturated stream
        is read in batches, one per pause, each answered within the admission's wait."""
        loop = asyncio.get_running_loop()
        results: asyncio.Queue[api.WriteResult | None] = asyncio.Queue()
        tasks: set[asyncio.Task[None]] = set()  # held here: the loop keeps only weak references
        room = asyncio.Semaphore(STREAM_IN_FLIGHT)
        resume_at = 0.0  # loop time before which the stream reads no further call
        spawned = 0

        async def one(call: api.WriteCall, read_at: float) -> None:
            nonlocal resume_at
            try:
                result = await self._write_result(call, refused)
                if result.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]:
                    resume_at = max(resume_at, read_at + STREAM_PAUSE)
                if self.audit is not None:
                    code = (
                        grpc.StatusCode.OK.name
                        if not result.code
                        else _CODE_NAMES.get(result.code, str(result.code))
                    )
                    self._record(who, call.method, call.request, code)
                results.put_nowait(result)  # exactly one result per call
            finally:
                room.release()

        async def read() -> None:
            nonlocal spawned
            calls = aiter(request_iterator)
            try:
                while True:
                    await room.acquire()
                    if (pause := resume_at - loop.time()) > 0:
                        await asyncio.sleep(pause)
                    try:
                        call = await anext(calls)
                    except StopAsyncIteration:
                        return
                    task = asyncio.create_task(one(call, loop.time()))
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
            code, message = internal(e, f"write {rid[:64]!r}")
            return api.WriteResult(request_id=rid, code=code.value[0], message=message)

    @guard("write")
    @audited
    async def Apply(self, request: api.WriteRequest, context: Any) -> api.ObjectReply:
        obj = await self.writer.update(decode(request.object), request.request_id, mode="apply")
        return api.ObjectReply(object=encode(obj))

    @guard("write")
    @audited
    async def Update(self, request: api.WriteRequest, context: Any) -> api.ObjectReply:
        obj = await self.writer.update(decode(request.object), request.request_id)
        return api.ObjectReply(object=encode(obj))

    @guard("write")
    @audited
    async def Patch(self, request: api.PatchRequest, context: Any) -> api.ObjectReply:
        obj = await self.writer.patch(
            _kind(request.kind),
            request.namespace,
            request.name,
            decode(request.patch, "the patch"),
            request.status,
            request.request_id,
        )
        return api.ObjectReply(object=encode(obj))

    @guard("write")
    @audited
    async def Delete(self, request: api.DeleteRequest, context: Any) -> api.ObjectReply:
        obj = await self.writer.delete(
            _kind(request.kind), request.namespace, request.name, request.request_id, request.resource_version
        )
        return api.ObjectReply(object=encode(obj))

    @guard("read")
    async def Get(self, request: api.GetRequest, context: Any) -> api.ObjectReply:
        kind = _kind(request.kind)
        await fresh(self.store, request.resource_version)
        obj = self.store.get(kind, namespace_of(kind, request.namespace), request.name)
        if obj is None:
            raise errors.NotFound(not_found(kind, request.name)[2])
        return api.ObjectReply(object=encode(obj))

    @guard("read")
    async def List(self, request: api.ListRequest, context: Any) -> api.ListReply:
        kind = _kind(request.kind)
        keep = Filter(kind, request.namespace, request.label_selector, request.field_selector)
        after = paging.after_of(request.continue_token)
        await fresh(self.store, request.resource_version)
        items, rev = self.store.list(kind)
        selected, token, remaining = paging.select(items, keep, after, request.limit, rev)
        return api.ListReply(
            items=[encode(o) for o in selected],
            resource_version=str(rev),
            continue_token=token,
            remaining_item_count=remaining,
        )

    @guard_stream("read")
    async def Watch(self, request: api.WatchRequest, context: Any) -> AsyncIterator[api.WatchEvent]:
        with self.admission.stream(self._identity(context.invocation_metadata()).credential):
            async for event in self._watch(request):
                yield event

    async def _watch(self, request: api.WatchRequest) -> AsyncIterator[api.WatchEvent]:
        kind = _kind(request.kind)
        keep = Filter(kind, request.namespace, request.label_selector, request.field_selector)
        if request.resource_version:
            rev = parse_revision(request.resource_version)
            await caught_up(self.store, rev)
        else:
            await self.store.read_barrier()  # the initial list is a consistent read too
            items, rev = self.store.list(kind)
            for obj in items:
                if keep(obj):
                    yield api.WatchEvent(type="ADDED", object=encode(obj))
            yield api.WatchEvent(type="BOOKMARK", resource_version=str(rev))
        async for etype, changed, at in changes(self.store, keep, rev, bookmark_interval=BOOKMARK_INTERVAL):
            if changed is None:
                yield api.WatchEvent(type=etype, resource_version=str(at))
            else:
                yield api.WatchEvent(type=etype, object=encode(changed), resource_version=str(at))

    @guard("read")
    async def Status(self, request: api.ClusterStatusRequest, context: Any) -> api.MasterStatus:
        return await self._status()

    @guard_stream("read")
    async def Logs(self, request: api.LogsRequest, context: Any) -> AsyncIterator[api.LogChunk]:
        with self.admission.stream(self._identity(context.invocation_metadata()).credential):
            async for chunk in pod_logs(self.store, self.auth, self.agent_tls, request):
                yield chunk
