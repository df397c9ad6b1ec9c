"""The Kubernetes API's resource verbs over Skiff's store: get, list, watch, create, update, patch,
delete, deletecollection, and the subresources (scale, status, log, eviction, binding).

Every write goes through `store.writer.Writer` (the one validation and write path the gRPC API uses
too); reads come from this master's replica through `store.query.Filter`, the same selection the gRPC
API makes. An object leaves in the version the request's path names (`convert.to_version`) and enters
in its stored form (`convert.to_stored`). Errors are raised as Skiff errors (or `Answer`) and the
server turns them into `Status` objects.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator import errors, model, tables
from orchestrator.api.logs import pod_logs
from orchestrator.auth import Authenticator
from orchestrator.kubeapi import bodies, convert, patch, slices
from orchestrator.kubeapi.resources import Resource
from orchestrator.kubeapi.routes import Target
from orchestrator.store import paging
from orchestrator.store.admission import Admission
from orchestrator.store.query import Filter
from orchestrator.store.raft import Store
from orchestrator.store.watch import BOOKMARK, caught_up, changes, parse_revision
from orchestrator.store.writer import Writer, check
from orchestrator.transport import ClientTLS
from skiffpb import api_pb2 as api

Obj = dict[str, Any]
PATCH_RETRIES = 5
WATCH_BOOKMARK_INTERVAL = 5.0


@dataclass
class Answer:
    """What a verb answers: a JSON document with its HTTP code, and headers (e.g. Warning)."""

    code: int
    doc: Obj
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Query:
    """The query parameters the verbs read (Kubernetes' ListOptions, DeleteOptions, ...)."""

    params: dict[str, str]

    def get(self, name: str, default: str = "") -> str:
        return self.params.get(name, default)

    def flag(self, name: str) -> bool:
        return self.get(name).lower() in ("true", "1")

    def integer(self, name: str) -> int | None:
        text = self.get(name)
        if not text:
            return None
        if not text.isascii() or not text.lstrip("-").isdigit():
            raise errors.Invalid(f"{name}: {text!r} is not an integer")
        return int(text)


def as_version(obj: Obj, resource: Resource) -> Obj:
    """A stored object as the version of the resource the client asked through."""
    if resource.kind == "EndpointSlice":
        return obj  # derived, already in its one version
    return convert.to_version(obj, resource.api_version)


def partial_metadata(obj: Obj) -> Obj:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def as_table(
    resource: Resource,
    objs: list[Obj],
    now: float,
    revision: int | None,
    *,
    headers: bool = True,
    ingress_address: str = "",
) -> Obj:
    """A meta.k8s.io/v1 Table of objs (with `skiff get`'s columns), each row's object as metadata."""
    doc = tables.table(resource.kind, objs, now, wide=True, lb_address=ingress_address)
    for row in doc["rows"]:
        row["object"] = partial_metadata(row["object"])
    if not headers:
        doc["columnDefinitions"] = []
    doc["metadata"] = {"resourceVersion": str(revision)} if revision is not None else {}
    return doc


def applied(media_type: str, current: Obj, body: bytes) -> Obj:
    """`current` patched by `body`; a patch that does not apply is errors.Invalid (422), an unknown
    patch media type stays patch.UnsupportedPatch (415)."""
    try:
        return patch.apply(media_type, current, body)
    except patch.UnsupportedPatch:
        raise
    except patch.PatchError as e:
        raise errors.Invalid(f"the patch does not apply: {e}") from None


def merge_diff(old: Any, new: Any) -> Any:
    """The JSON merge patch that turns `old` into `new` (keys `new` lacks are set to null)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    out: Obj = {k: None for k in old if k not in new}
    for k, v in new.items():
        if k not in old:
            out[k] = v
        elif old[k] != v:
            out[k] = merge_diff(old[k], v)
    return out


def selector_text(selector: Obj | None) -> str:
    """A label selector as the `status.selector` string of a Scale ('app=demo,tier in (a,b)')."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for req in selector.get("matchExpressions") or []:
        op = req.get("operator", "")
        values = ",".join(req.get("values") or [])
        if op == "In":
            parts.append(f"{req['key']} in ({values})")
        elif op == "NotIn":
            parts.append(f"{req['key']} notin ({values})")
        elif op == "Exists":
            parts.append(req["key"])
        elif op == "DoesNotExist":
            parts.append(f"!{req['key']}")
    return ",".join(parts)


class ResourceHandlers:
    """The verbs on stored resources. One instance per master, shared by all requests."""

    def __init__(
        self,
        store: Store,
        auth: Authenticator,
        *,
        clock: Callable[[], float] = time.time,
        ingress_address: str = "",
        agent_tls: ClientTLS,
        admission: Admission,
    ) -> None:
        self.ingress_address = ingress_address
        self.agent_tls = agent_tls
        self.store = store
        self.auth = auth
        self.writer = Writer(store, admission=admission)
        self.clock = clock

    # ------------------------------------------------------------ helpers

    def _namespace(self, target: Target) -> str:
        if not target.resource.namespaced:
            return ""
        return target.namespace or model.DEFAULT_NAMESPACE

    def _stored(self, target: Target) -> Obj:
        obj = self.store.get(target.resource.kind, self._namespace(target), target.name)
        if obj is None:
            raise errors.NotFound(f'{target.resource.group_resource} "{target.name}" not found')
        return obj

    def _filter(self, target: Target, query: Query) -> Filter:
        namespace = target.namespace if target.resource.namespaced else ""
        return Filter(target.resource.kind, namespace, query.get("labelSelector"), query.get("fieldSelector"))

    def _incoming(self, target: Target, obj: Obj, query: Query) -> tuple[Obj, list[str]]:
        """A written object checked against the path (kind, version, namespace, name) in stored form."""
        r = target.resource
        obj = dict(obj)
        obj.setdefault("kind", r.kind)
        obj.setdefault("apiVersion", r.api_version)
        if obj["kind"] != r.kind:
            raise errors.Invalid(
                f"kind: {obj['kind']!r} does not match the resource {r.group_resource} ({r.kind})"
            )
        if obj["apiVersion"] not in convert.versions_of(r.kind):
            raise errors.Invalid(
                f'apiVersion: no kind "{r.kind}" is registered for version "{obj["apiVersion"]}"'
            )
        meta = obj.get("metadata")
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise errors.Invalid("metadata: must be an object")
        meta = dict(meta)
        if r.namespaced:
            namespace = self._namespace(target)
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.Invalid(
                    "metadata.namespace: the namespace of the provided object does not match the namespace"
                    " sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if target.name and meta.get("name", target.name) != target.name:
            raise errors.Invalid("metadata.name: the name of the object does not match the name on the URL")
        if target.name:
            meta["name"] = target.name
        obj["metadata"] = meta
        obj, warnings = bodies.drop_unknown_fields(obj, query.get("fieldValidation", bodies.STRICT))
        return convert.to_stored(obj), warnings

    def _dry_run(self, query: Query) -> bool:
        return query.get("dryRun") == "All"

    def _out(self, target: Target, obj: Obj, code: int = 200, warnings: list[str] | None = None) -> Answer:
        headers = {"Warning": ", ".join(f'299 - "{w}"' for w in warnings)} if warnings else {}
        return Answer(code, as_version(obj, target.resource), headers)

    # ------------------------------------------------------------ reads

    def get(self, target: Target, want_table: bool) -> Answer:
        if target.resource.kind == "EndpointSlice":
            namespaced = Target(target.resource, self._namespace(target))
            found = [
                s for s in self._slices(namespaced, Query({}))[0] if s["metadata"]["name"] == target.name
            ]
            if not found:
                raise errors.NotFound(f'{target.resource.group_resource} "{target.name}" not found')
            obj = found[0]
        else:
            obj = self._stored(target)
        if want_table:
            return Answer(
                200,
                as_table(target.resource, [obj], self.clock(), None, ingress_address=self.ingress_address),
            )
        return self._out(target, obj)

    def _slices(self, target: Target, query: Query) -> tuple[builtins.list[Obj], int]:
        """EndpointSlices derived from the stored Endpoints, selected like any list."""
        try:
            labels = model.parse_selector(query.get("labelSelector")) if query.get("labelSelector") else ()
        except model.ValidationError as e:
            raise errors.Invalid(str(e)) from None
        items, revision = self.store.list("Endpoints")
        out = [
            s
            for ep in items
            if not target.namespace or ep["metadata"].get("namespace") == target.namespace
            for s in slices.slices_of(ep)
            if not labels or model.requirements_match(labels, model.labels_of(s))
        ]
        return out, revision

    def list(self, target: Target, query: Query, want_table: bool) -> Answer:
        r = target.resource
        after = paging.after_of(query.get("continue"))
        limit = query.integer("limit") or 0
        if r.kind == "EndpointSlice":
            slices, revision = self._slices(target, query)
            selected, token, remaining = paging.select(slices, lambda _: True, after, limit, revision)
        else:
            items, revision = self.store.list(r.kind)
            selected, token, remaining = paging.select(
                items, self._filter(target, query), after, limit, revision
            )
        meta: Obj = {"resourceVersion": str(revision)}
        if token:
            meta["continue"] = token
            meta["remainingItemCount"] = remaining
        if want_table:
            doc = as_table(r, selected, self.clock(), revision, ingress_address=self.ingress_address)
            doc["metadata"] = meta
            return Answer(200, doc)
        return Answer(
            200,
            {
                "kind": f"{r.kind}List",
                "apiVersion": r.api_version,
                "metadata": meta,
                "items": [as_version(o, r) for o in selected],
            },
        )

    async def watch(self, target: Target, query: Query, want_table: bool) -> AsyncGenerator[Obj, None]:
        """The events of a watch, as Kubernetes' WatchEvent documents ({type, object}).

        The request is checked (and this replica given a moment to reach the revision asked for)
        before this returns, so that a bad request is answered before the stream starts. Without a
        resourceVersion (or with "0") the current objects come first as ADDED. A revision the
        history has dropped ends the stream with errors.TooOld (the server sends an ERROR event)."""
        r = target.resource
        keep = self._filter(target, query)
        start = query.get("resourceVersion")
        timeout = query.integer("timeoutSeconds")
        initial: tuple[Obj, ...] = ()
        if start in ("", "0"):
            if start == "":
                await self.store.read_barrier()  # the initial list is a consistent read
            items, revision = self.store.list(r.kind)
            initial = tuple(sorted((o for o in items if keep(o)), key=paging.key))
        else:
            revision = parse_revision(start)
            await caught_up(self.store, revision)
        return self._events(
            r, keep, revision, initial, want_table, query.flag("allowWatchBookmarks"), timeout
        )

    async def _events(
        self,
        r: Resource,
        keep: Filter,
        revision: int,
        initial: tuple[Obj, ...],
        want_table: bool,
        bookmarks: bool,
        timeout: int | None,
    ) -> AsyncGenerator[Obj, None]:
        deadline = None if not timeout or timeout <= 0 else asyncio.get_running_loop().time() + timeout
        for obj in initial:
            yield self._event("ADDED", obj, r, want_table, revision)
        stream = changes(self.store, keep, revision, bookmark_interval=WATCH_BOOKMARK_INTERVAL)
        try:
            while True:
                remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
                if remaining is not None and remaining <= 0:
                    return
                try:
                    item: tuple[str, Obj | None, int] = await asyncio.wait_for(anext(stream), remaining)
                except TimeoutError:
                    return
                etype, changed, at = item
                if etype == BOOKMARK:
                    if bookmarks:
                        yield {
                            "type": "BOOKMARK",
                            "object": {
                                "kind": r.kind,
                                "apiVersion": r.api_version,
                                "metadata": {"resourceVersion": str(at)},
                            },
                        }
                elif changed is not None:
                    yield self._event(etype, changed, r, want_table, at)
        finally:
            await stream.aclose()

    def _event(self, etype: str, obj: Obj, r: Resource, want_table: bool, revision: int) -> Obj:
        if want_table:
            return {
                "type": etype,
                "object": as_table(
                    r, [obj], self.clock(), revision, headers=False, ingress_address=self.ingress_address
                ),
            }
        return {"type": etype, "object": as_version(obj, r)}

    # ------------------------------------------------------------ writes

    async def create(self, target: Target, body: Obj, query: Query) -> Answer:
        obj, warnings = self._incoming(target, body, query)
        if self._dry_run(query):
            return self._out(target, check(obj), 201, warnings)
        return self._out(target, await self.writer.create(obj), 201, warnings)

    async def update(self, target: Target, body: Obj, query: Query) -> Answer:
        obj, warnings = self._incoming(target, body, query)
        if self._dry_run(query):
            return self._out(target, check(obj), 200, warnings)
        exists = self.store.get(target.resource.kind, self._namespace(target), target.name) is not None
        stored = await self.writer.update(obj, mode="update" if exists else "apply")
        return self._out(target, stored, 200 if exists else 201, warnings)

    async def patch(self, target: Target, media_type: str, body: bytes, query: Query) -> Answer:
        """Patch the object (server-side apply creates it when absent); a lost compare-and-set race
        with another writer is retried on the newer object, as the API server does."""
        for attempt in range(PATCH_RETRIES):
            current = self.store.get(target.resource.kind, self._namespace(target), target.name)
            if current is None and media_type != patch.APPLY_PATCH:
                raise errors.NotFound(f'{target.resource.group_resource} "{target.name}" not found')
            base = as_version(current, target.resource) if current is not None else {}
            patched = applied(media_type, base, body)
            obj, warnings = self._incoming(target, patched, query)
            if current is not None:
                obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            if self._dry_run(query):
                return self._out(target, check(obj), 200, warnings)
            try:
                if current is None:
                    return self._out(target, await self.writer.create(obj), 201, warnings)
                return self._out(target, await self.writer.update(obj), 200, warnings)
            except errors.Conflict:
                if attempt == PATCH_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    async def delete(self, target: Target, body: Obj | None, query: Query) -> Answer:
        options = body or {}
        preconditions = options.get("preconditions") or {}
        grace = options.get("gracePeriodSeconds", query.integer("gracePeriodSeconds"))
        if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool) or grace < 0):
            raise errors.Invalid(f"gracePeriodSeconds: {grace!r} must be a non-negative integer")
        if self._dry_run(query):
            return self._out(target, self._stored(target))
        obj = await self.writer.delete(
            target.resource.kind,
            self._namespace(target),
            target.name,
            resource_version=str(preconditions.get("resourceVersion") or ""),
            force=grace == 0,
            grace=grace,
        )
        return self._out(target, obj)

    async def delete_collection(self, target: Target, body: Obj | None, query: Query) -> Answer:
        keep = self._filter(target, query)
        items, _ = self.store.list(target.resource.kind)
        for obj in sorted((o for o in items if keep(o)), key=paging.key):
            meta = obj["metadata"]
            sub = Target(target.resource, meta.get("namespace", ""), meta["name"])
            try:
                await self.delete(sub, body, query)
            except errors.NotFound:
                pass
        return Answer(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})

    # ------------------------------------------------------------ subresources

    def _scale_of(self, target: Target, obj: Obj) -> Obj:
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        meta = obj["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": spec.get("replicas", 1)},
            "status": {
                "replicas": status.get("replicas", 0),
                "selector": selector_text(spec.get("selector")),
            },
        }

    def get_scale(self, target: Target) -> Answer:
        return Answer(200, self._scale_of(target, self._stored(target)))

    async def set_scale(self, target: Target, scale: Obj) -> Answer:
        for part in ("metadata", "spec"):
            if not isinstance(scale.get(part) or {}, dict):
                raise errors.Invalid(f"{part}: Invalid value: must be an object")
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.Invalid(
                f"spec.replicas: Invalid value: {replicas!r}: must be a non-negative integer"
            )
        current = self._stored(target)
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv and rv != current["metadata"]["resourceVersion"]:
            raise errors.Conflict(
                "the object has been modified; please apply your changes to the latest version and try again"
            )
        updated = await self.writer.patch(
            target.resource.kind, self._namespace(target), target.name, {"spec": {"replicas": replicas}}
        )
        return Answer(200, self._scale_of(target, updated))

    async def patch_scale(self, target: Target, media_type: str, body: bytes) -> Answer:
        scale = self._scale_of(target, self._stored(target))
        patched = applied(media_type, scale, body)
        if isinstance(patched.get("metadata"), dict):
            patched["metadata"].pop("resourceVersion", None)
        return await self.set_scale(target, patched)

    async def set_status(self, target: Target, obj: Obj) -> Answer:
        current = self._stored(target)
        status = obj.get("status")
        if status is not None and not isinstance(status, dict):
            raise errors.Invalid("status: must be an object")
        diff = merge_diff(current.get("status") or {}, status or {})
        updated = await self.writer.patch(
            target.resource.kind, self._namespace(target), target.name, {"status": diff}, status=True
        )
        return self._out(target, updated)

    async def patch_status(self, target: Target, media_type: str, body: bytes) -> Answer:
        current = as_version(self._stored(target), target.resource)
        patched = applied(media_type, current, body)
        return await self.set_status(target, patched)

    async def evict(self, target: Target, body: Obj) -> Answer:
        """pods/eviction (kubectl drain): a graceful delete of the pod."""
        options = body.get("deleteOptions") or {}
        await self.delete(target, options, Query({}))
        return Answer(
            201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
        )

    async def bind(self, target: Target, body: Obj) -> Answer:
        """pods/binding: set the pod's node (what a scheduler does)."""
        node = (body.get("target") or {}).get("name")
        if not isinstance(node, str) or not node:
            raise errors.Invalid("target.name: Required value: the node to bind to")
        await self.writer.bind(self._namespace(target), target.name, node)
        return Answer(
            201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
        )

    def logs(self, target: Target, query: Query) -> AsyncGenerator[api.LogChunk, None]:
        pod = self._stored(target)
        containers = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
        container = query.get("container")
        if not container:
            if len(containers) != 1:
                raise errors.Invalid(
                    f"container: a container name must be specified for pod {target.name}, choose one of: [{' '.join(containers)}]"
                )
            container = containers[0]
        elif container not in containers:
            raise errors.Invalid(f"container: {container!r} is not a container of pod {target.name}")
        tail = query.integer("tailLines")
        request = api.LogsRequest(
            namespace=self._namespace(target),
            pod=target.name,
            container=container,
            follow=query.flag("follow"),
            tail_lines=-1 if tail is None else tail,
            previous=query.flag("previous"),
        )
        return pod_logs(self.store, self.auth, self.agent_tls, request)
