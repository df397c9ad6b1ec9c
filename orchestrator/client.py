"""The Skiff API client: one logical connection to "the cluster" over any of its masters.

Used by the CLI, the agents and the load balancer. It authenticates every call with a bearer token,
retries a call that failed for a transient reason (UNAVAILABLE, CANCELLED, DEADLINE_EXCEEDED) on the
next master with the same request id, so a retried write is applied at most once, and resumes watches
on another master from the last revision seen.

Channels must be created inside the running event loop (grpc.aio); create the client there.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from orchestrator import errors
from orchestrator.model import obj_key
from orchestrator.transport import ClientTLS
from skiffpb import api_pb2 as api
from skiffpb import api_pb2_grpc as api_grpc

log = logging.getLogger(__name__)

Obj = dict[str, Any]
T = TypeVar("T")

RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNKNOWN,
}

CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 2000),
    ("grpc.keepalive_timeout_ms", 2000),
    ("grpc.http2.ping_timeout_ms", 2000),  # grpc 1.85 times pings out by this (60 s unset)
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    # Fail over quickly: do not wait seconds between reconnect attempts to a restarted master.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.enable_retries", 0),
]


# Items a list reads per call (kubectl's default --chunk-size, client-go's reflector's page size).
LIST_PAGE = 500

_STATUS_BY_VALUE = {c.value[0]: c for c in grpc.StatusCode}
# Stream failures a retry cannot fix.
_STREAM_FATAL = {
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def status_error(code: grpc.StatusCode, message: str) -> errors.SkiffError:
    """The Skiff error of a gRPC status code, with the server's one-line message."""
    cls = errors.BY_CODE.get(code.name, errors.SkiffError)
    err = cls(message or code.name)
    err.code = code.name
    return err


def to_error(e: grpc.aio.AioRpcError) -> errors.SkiffError:
    """A gRPC error -> the Skiff error of its status code, with the server's one-line message."""
    return status_error(e.code(), e.details() or "")


class _Retry(Exception):
    """An attempt failed for a transient reason: try the next master (the message says why)."""


M = TypeVar("M")


def _request(message: Callable[..., M], **fields: Any) -> M:
    """A request message; errors.Invalid when a text field holds what protobuf cannot send (a lone
    surrogate, as a shell passes undecodable bytes of argv)."""
    try:
        return message(**fields)
    except ValueError:
        bad = next((k for k, v in fields.items() if isinstance(v, str) and not _encodable(v)), "a field")
        raise errors.Invalid(f"{bad}: not valid UTF-8 text (a lone surrogate)") from None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    obj: Obj | None
    resource_version: str


class _WriteStream:
    """One open Write stream to one master: writes go out as messages, answers come back by request id.

    Concurrent writes share it (a lock keeps one message in flight on the wire at a time, as gRPC
    requires). When the stream ends or breaks, every write still waiting gets that error, and the
    client opens a new stream (on the next master) for its retry.
    """

    def __init__(self, stub: api_grpc.ApiAsyncStub, metadata: tuple[tuple[str, str], ...]) -> None:
        self.call = stub.Write(metadata=metadata)
        self.waiting: dict[str, asyncio.Future[api.WriteResult]] = {}
        self.lock = asyncio.Lock()
        self.error: BaseException | None = None
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        error: BaseException
        try:
            async for result in self.call:
                fut = self.waiting.pop(result.request_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(result)
            error = errors.Unavailable("write stream ended by the master")
        except grpc.aio.AioRpcError as e:
            error = e
        except asyncio.CancelledError:
            error = errors.Unavailable("write stream closed")
        self.error = error
        waiting, self.waiting = self.waiting, {}
        for fut in waiting.values():
            if not fut.done():
                fut.set_exception(error)

    async def write(self, method: str, req: api.WriteRequest, timeout: float) -> api.WriteResult:
        if self.error is not None:
            raise self.error
        fut: asyncio.Future[api.WriteResult] = asyncio.get_running_loop().create_future()
        self.waiting[req.request_id] = fut
        try:
            async with asyncio.timeout(timeout):
                try:
                    async with self.lock:
                        await self.call.write(api.WriteCall(method=method, request=req))
                except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                    # The call ended (say, the master refused the token): a write may fail before
                    # the status arrives, with a generic "Internal error from Core". The reader
                    # fails `fut` with the call's real status.
                    pass
                return await fut
        finally:
            self.waiting.pop(req.request_id, None)

    def close(self) -> None:
        self.call.cancel()
        self.reader.cancel()


class ApiClient:
    """A client of the Skiff API over a list of masters ("host:port"), failing over between them.

    Create, Apply and Update travel over one Write stream per master (`pipelined`, the default): a
    message on an open stream costs the master about a fifth of a unary call. With the same request ids
    and the same failover, so the semantics are those of the unary calls, which `pipelined=False` uses.
    """

    def __init__(
        self,
        masters: Sequence[str],
        token: str,
        *,
        tls: ClientTLS,
        timeout: float = 10.0,
        call_timeout: float = 3.0,
        pipelined: bool = True,
    ) -> None:
        if not masters:
            raise ValueError("no master address given")
        self.masters = list(masters)
        self.token = token
        self.tls = tls
        self.timeout = timeout
        self.call_timeout = call_timeout
        self._current = 0
        self._channels: dict[str, grpc.aio.Channel] = {}
        # One per channel (a stub builds a callable per method). ApiStub(an aio channel) is an ApiAsyncStub.
        self._stubs: dict[str, api_grpc.ApiAsyncStub] = {}
        self._metadata = (("authorization", f"Bearer {token}"),)
        self.pipelined = pipelined
        self._streams: dict[str, _WriteStream] = {}

    # ------------------------------------------------------------ channels

    @property
    def current_master(self) -> str:
        return self.masters[self._current % len(self.masters)]

    def channel(self, address: str) -> grpc.aio.Channel:
        ch = self._channels.get(address)
        if ch is None:
            ch = self.tls.channel(address, CHANNEL_OPTIONS)
            self._channels[address] = ch
            self._stubs[address] = api_grpc.ApiStub(ch)
        return ch

    def stub(self, address: str | None = None) -> api_grpc.ApiAsyncStub:
        address = address or self.current_master
        self.channel(address)
        return self._stubs[address]

    def _fail_over(self, address: str) -> None:
        if self.current_master == address:
            self._current += 1

    async def close(self) -> None:
        streams, self._streams = self._streams, {}
        for st in streams.values():
            st.close()
        channels, self._channels = self._channels, {}
        self._stubs = {}
        for ch in channels.values():
            await ch.close(grace=None)

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ calls

    async def _failing_over(self, what: str, attempt: Callable[[str], Awaitable[T]]) -> T:
        """`attempt(address)` on the current master; when it raises _Retry, on the next one (with
        backoff), until `timeout`. Any other error ends it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        delay = 0.02
        while True:
            address = self.current_master
            try:
                return await attempt(address)
            except _Retry as e:
                detail = str(e)
                log.debug("%s on %s failed: %s; failing over", what, address, detail)
                self._fail_over(address)
            if loop.time() + delay > deadline:
                raise errors.Unavailable(f"no master answered ({', '.join(self.masters)}): {detail}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def _call(self, method: str, request: Any) -> Any:
        """Call `method` on the current master; on a transient failure, the next one, until `timeout`."""

        async def attempt(address: str) -> Any:
            try:
                return await getattr(self.stub(address), method)(
                    request, metadata=self._metadata, timeout=self.call_timeout
                )
            except grpc.aio.AioRpcError as e:
                raise self._failure(e, address) from None

        return await self._failing_over(f"call {method}", attempt)

    def _error(self, e: grpc.aio.AioRpcError, address: str) -> errors.SkiffError:
        """The Skiff error of a failed call; a failed TLS handshake says what is wrong with it."""
        reason = self.tls.explain(e.details() or "")
        if reason is not None:
            return errors.Unavailable(f"{reason} ({address})")
        return to_error(e)

    def _failure(self, e: grpc.aio.AioRpcError, address: str) -> Exception:
        """What a failed call raises: a Skiff error, or _Retry to try the next master. A failed TLS
        handshake is no reason to fail over (every master has the same CA): it is said at once."""
        if e.code() in RETRYABLE and self.tls.explain(e.details() or "") is None:
            return _Retry(e.details() or e.code().name)
        return self._error(e, address)

    async def create(self, obj: Obj, *, request_id: str | None = None) -> Obj:
        return await self._write("Create", obj, request_id)

    async def apply(self, obj: Obj, *, request_id: str | None = None) -> Obj:
        return await self._write("Apply", obj, request_id)

    async def update(self, obj: Obj, *, request_id: str | None = None) -> Obj:
        return await self._write("Update", obj, request_id)

    async def _write(self, method: str, obj: Obj, request_id: str | None) -> Obj:
        req = api.WriteRequest(request_id=request_id or new_request_id(), object=json.dumps(obj).encode())
        if not self.pipelined:
            return json.loads((await self._call(method, req)).object)
        return json.loads(await self._stream_write(method, req))

    async def _stream_write(self, method: str, req: api.WriteRequest) -> bytes:
        """`_call` for a write on the master's Write stream: the same retries and failover."""

        async def attempt(address: str) -> bytes:
            stream = self._streams.get(address)
            if stream is None or stream.error is not None:
                stream = self._streams[address] = _WriteStream(self.stub(address), self._metadata)
            try:
                result = await stream.write(method, req, self.call_timeout)
            except grpc.aio.AioRpcError as e:
                # The stream itself failed. Its answers carry the writes' own errors, so this is the
                # connection (a dead master shows as INTERNAL "Internal error from Core"), and the
                # write is retried with its request id, as a unary call is on UNAVAILABLE.
                if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                    log.info("master %s has no Write stream; using unary writes", address)
                    self.pipelined = False
                    return (await self._call(method, req)).object
                stream.close()
                if e.code() in _STREAM_FATAL or self.tls.explain(e.details() or ""):
                    raise self._error(e, address) from None
                raise _Retry(e.details() or e.code().name) from None
            except (TimeoutError, errors.Unavailable) as e:
                stream.close()  # a master that does not answer in time: start afresh elsewhere
                raise _Retry(str(e) or "write timed out") from None
            if result.code == 0:
                return result.object
            code = _STATUS_BY_VALUE.get(result.code, grpc.StatusCode.UNKNOWN)
            if code in RETRYABLE:
                raise _Retry(result.message or code.name)
            raise status_error(code, result.message)

        return await self._failing_over(f"write {req.request_id}", attempt)

    async def patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        patch: Obj,
        *,
        status: bool = False,
        request_id: str | None = None,
    ) -> Obj:
        req = _request(
            api.PatchRequest,
            request_id=request_id or new_request_id(),
            kind=kind,
            namespace=namespace,
            name=name,
            patch=json.dumps(patch).encode(),
            status=status,
        )
        return json.loads((await self._call("Patch", req)).object)

    async def delete(
        self,
        kind: str,
        namespace: str,
        name: str,
        *,
        resource_version: str = "",
        request_id: str | None = None,
    ) -> Obj:
        req = _request(
            api.DeleteRequest,
            request_id=request_id or new_request_id(),
            kind=kind,
            namespace=namespace,
            name=name,
            resource_version=resource_version,
        )
        return json.loads((await self._call("Delete", req)).object)

    async def get(self, kind: str, namespace: str, name: str, *, resource_version: str = "") -> Obj:
        """One object, read linearizably; `resource_version="0"`: the master's replica at once (may be stale)."""
        request = _request(
            api.GetRequest, kind=kind, namespace=namespace, name=name, resource_version=resource_version
        )
        reply = await self._call("Get", request)
        return json.loads(reply.object)

    async def list(
        self,
        kind: str,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        *,
        resource_version: str = "",
    ) -> tuple[list[Obj], str]:
        """(items, resourceVersion) — watch from that revision to miss nothing. Linearizable unless
        `resource_version="0"` (the master's replica at once, possibly stale).

        Read in pages of LIST_PAGE items, one call each. A list of more than one page is not one
        snapshot: each page is read from the state current when it is served (see
        orchestrator.store.paging), and the revision is the first page's, so a watch from it misses
        nothing (it may repeat a change a later page already showed)."""
        items: list[Obj] = []
        revision = ""
        async for page, rv in self._pages(
            kind, namespace, label_selector, field_selector, LIST_PAGE, resource_version
        ):
            items += page
            revision = revision or rv
        return items, revision

    async def list_pages(
        self,
        kind: str,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        *,
        limit: int = LIST_PAGE,
        resource_version: str = "",
    ) -> AsyncIterator[builtins.list[Obj]]:
        """The items of a list, page by page: at most `limit` a page (0 = all in one), sorted by
        namespace/name, each page one call (with its own timeout and failover) that continues after
        the last. Consistency as `list`'s."""
        async for page, _ in self._pages(
            kind, namespace, label_selector, field_selector, limit, resource_version
        ):
            yield page

    async def _pages(
        self,
        kind: str,
        namespace: str,
        label_selector: str,
        field_selector: str,
        limit: int,
        resource_version: str,
    ) -> AsyncIterator[tuple[builtins.list[Obj], str]]:
        """(items, resourceVersion) of each page, following the continue tokens to the end."""
        token = ""
        while True:
            reply = await self._call(
                "List",
                _request(
                    api.ListRequest,
                    kind=kind,
                    namespace=namespace,
                    label_selector=label_selector,
                    field_selector=field_selector,
                    resource_version=resource_version,
                    limit=limit,
                    continue_token=token,
                ),
            )
            yield [json.loads(i) for i in reply.items], reply.resource_version
            token = reply.continue_token
            if not token:
                return

    async def status(self, address: str, timeout: float = 2.0) -> api.MasterStatus:
        """One master's own view of the Raft cluster (no failover: it asks that master)."""
        try:
            return await self.stub(address).Status(
                api.ClusterStatusRequest(), metadata=self._metadata, timeout=timeout
            )
        except grpc.aio.AioRpcError as e:
            raise self._error(e, address) from None

    async def logs(
        self,
        namespace: str,
        pod: str,
        *,
        container: str = "",
        follow: bool = False,
        tail_lines: int = -1,
        previous: bool = False,
    ) -> AsyncIterator[bytes]:
        req = _request(
            api.LogsRequest,
            namespace=namespace,
            pod=pod,
            container=container,
            follow=follow,
            tail_lines=tail_lines,
            previous=previous,
        )
        address = self.current_master
        call = self.stub(address).Logs(req, metadata=self._metadata)
        try:
            async for chunk in call:
                yield chunk.data
        except grpc.aio.AioRpcError as e:
            raise self._error(e, address) from None
        finally:
            call.cancel()

    # ------------------------------------------------------------ watches

    async def watch(
        self,
        kind: str,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        resource_version: str = "",
    ) -> AsyncIterator[WatchEvent]:
        """Changes after `resource_version` ("" = current objects as ADDED, then BOOKMARK, then changes).

        Survives the loss of its master: it resumes on the next one from the last revision it yielded,
        so no event is missed or repeated. Raises errors.TooOld when history has moved past that revision
        (relist and watch again).
        """
        rv = resource_version
        delay = 0.05
        while True:
            address = self.current_master
            req = _request(
                api.WatchRequest,
                kind=kind,
                namespace=namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                resource_version=rv,
            )
            call = self.stub(address).Watch(req, metadata=self._metadata)
            try:
                async for ev in call:
                    delay = 0.05
                    obj = json.loads(ev.object) if ev.object else None
                    rv = ev.resource_version or rv
                    yield WatchEvent(ev.type, obj, ev.resource_version)
                # The server ended the stream (shutting down): resume elsewhere.
                self._fail_over(address)
            except grpc.aio.AioRpcError as e:
                failure = self._failure(e, address)
                if not isinstance(failure, _Retry):
                    raise failure from None
                log.info("watch %s on %s broke (%s); resuming from rv=%s", kind, address, e.code().name, rv)
                self._fail_over(address)
            finally:
                call.cancel()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


class Informer:
    """A local cache of one kind kept current by list + watch; relists when the watch is too old.

    `on_change(event_type, obj)` runs for every change (type ADDED, MODIFIED, DELETED) and with
    ("SYNCED", None) after each (re)list has been applied. `synced` is set after the first list.
    """

    def __init__(
        self,
        client: ApiClient,
        kind: str,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        on_change: Callable[[str, Obj | None], None] | None = None,
    ) -> None:
        self.client = client
        self.kind = kind
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.on_change = on_change or (lambda t, o: None)
        self.cache: dict[str, Obj] = {}
        self.resource_version = ""
        self.synced = asyncio.Event()

    async def run(self) -> None:
        """Run until cancelled."""
        while True:
            try:
                await self._relist()
                async for ev in self.client.watch(
                    self.kind,
                    self.namespace,
                    self.label_selector,
                    self.field_selector,
                    resource_version=self.resource_version,
                ):
                    self._apply(ev)
            except errors.TooOld:
                log.info("watch of %s too old; relisting", self.kind)
            except errors.Unavailable as e:
                log.warning("informer %s: %s", self.kind, e)
                await asyncio.sleep(0.5)

    async def _relist(self) -> None:
        items, rv = await self.client.list(
            self.kind, self.namespace, self.label_selector, self.field_selector
        )
        fresh = {obj_key(o): o for o in items}
        old, self.cache = self.cache, fresh
        self.resource_version = rv
        for key, obj in old.items():
            if key not in fresh:
                self.on_change("DELETED", obj)
        for key, obj in fresh.items():
            prev = old.get(key)
            if prev is None:
                self.on_change("ADDED", obj)
            elif prev.get("metadata", {}).get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                self.on_change("MODIFIED", obj)
        self.synced.set()
        self.on_change("SYNCED", None)

    def _apply(self, ev: WatchEvent) -> None:
        self.resource_version = ev.resource_version or self.resource_version
        if ev.obj is None:
            return
        key = obj_key(ev.obj)
        if ev.type == "DELETED":
            self.cache.pop(key, None)
        else:
            self.cache[key] = ev.obj
        self.on_change(ev.type, ev.obj)
