"""The Kubernetes REST API of a master: aiohttp over HTTPS, in the master's own event loop.

Requests are authenticated by bearer token with the same `Authenticator` and roles as the gRPC API
(GET needs "read", every other verb "write"); /version and the health paths are public, as Kubernetes
makes them. A request's path is parsed by `routes`, its verb served by `handlers`, and every error is
answered as a Kubernetes `Status` (`status.status_for`), one line, never a traceback. Bodies above
3 MiB (Kubernetes' limit) are refused with 413 before they are read whole.
"""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
from collections.abc import Callable
from typing import Any

from aiohttp import web

from orchestrator import errors
from orchestrator.audit import AuditLog
from orchestrator.auth import PERMISSIONS, Authenticator, Identity
from orchestrator.kubeapi import bodies, discovery, openapi, patch, routes, status
from orchestrator.kubeapi.handlers import Answer, Query, ResourceHandlers
from orchestrator.kubeapi.routes import PathError, Target
from orchestrator.store.admission import Admission
from orchestrator.store.raft import Store
from orchestrator.store.watch import fresh
from orchestrator.transport import ClientTLS

log = logging.getLogger(__name__)

Obj = dict[str, Any]
MAX_BODY = 3 * 1024 * 1024
PUBLIC = ("/version", "/healthz", "/livez", "/readyz")
JSON_TYPE = "application/json"
SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
READ_VERBS = ("get", "list", "watch")


def _json(
    code: int, doc: Obj, content_type: str = JSON_TYPE, headers: dict[str, str] | None = None
) -> web.Response:
    all_headers = {**(headers or {}), "Content-Type": content_type}
    if code in (429, 503, 504):
        all_headers.setdefault("Retry-After", str((doc.get("details") or {}).get("retryAfterSeconds", 1)))
    return web.Response(
        status=code, body=json.dumps(doc, separators=(",", ":")).encode(), headers=all_headers
    )


_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def _verb(method: str, target: Target, query: Query) -> str:
    """The Kubernetes verb of a request on a resource itself ("" for a subresource's own rules)."""
    if target.subresource:
        return ""
    if method == "GET":
        return (
            "watch"
            if query.flag("watch") and target.is_collection
            else "list"
            if target.is_collection
            else "get"
        )
    if method == "DELETE" and target.is_collection:
        return "deletecollection"
    return _VERBS.get(method, "")


def _status(answer: tuple[int, Obj]) -> web.Response:
    return _json(*answer)


class KubeApi:
    """The routes of one master's Kubernetes API. `ready` says whether this master can serve
    (it sees a Raft leader); /readyz answers 503 when it cannot."""

    def __init__(
        self,
        store: Store,
        auth: Authenticator,
        ready: Callable[[], bool],
        *,
        ingress_address: str = "",
        audit: AuditLog | None = None,
        agent_tls: ClientTLS,
        admission: Admission,
    ) -> None:
        self.audit = audit
        self.store = store
        self.auth = auth
        self.ready = ready
        self.admission = admission
        self.resources = ResourceHandlers(
            store, auth, ingress_address=ingress_address, agent_tls=agent_tls, admission=admission
        )

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._errors])
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except web.HTTPRequestEntityTooLarge:
            return _status(status.too_large(f"limit is {MAX_BODY} bytes"))
        except patch.UnsupportedPatch:
            return _status(status.unsupported_media_type(patch.PATCH_TYPES))
        except bodies.UnsupportedBody:
            return _status(status.unsupported_media_type(bodies.DECODED))
        except bodies.BodyTooLarge as e:
            return _status(status.too_large(str(e)))
        except bodies.BodyError as e:
            return _status(status.bad_request(str(e)))
        except (errors.SkiffError, json.JSONDecodeError) as e:
            return _status(status.status_for(e))
        except Exception as e:  # a bug must not kill the connection: answer it, and log it
            log.exception("kube-api %s %s failed", request.method, request.path)
            return _status(status.status_for(e))

    # ------------------------------------------------------------ entry

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.path.strip("/")
        if path in PUBLIC or path.startswith(("/healthz/", "/livez/", "/readyz/")):
            return self._public(path)
        role = self.auth.role(
            [("authorization", request.headers.get("Authorization", ""))]
            if "Authorization" in request.headers
            else None
        )
        if path == SSAR_PATH and request.method == "POST":
            return await self._access_review(request, role)
        need = "read" if request.method in ("GET", "HEAD") else "write"
        if need not in PERMISSIONS[role]:
            denied = errors.PermissionDenied(
                f'User with role "{role}" cannot {request.method.lower()} {path}'
            )
            try:
                refused = routes.parse(path)
            except PathError:
                raise denied from None
            r = refused.resource
            forbidden = _status(
                status.status_for(denied, kind_plural=r.plural, group=r.group, name=refused.name or None)
            )
            if self.audit is not None:  # a refused write is audited too
                self._record(request, refused, forbidden)
            return forbidden
        if request.method == "GET":
            doc = discovery.document(path, request.headers.get("Accept"), server_address=request.host)
            if doc is not None:
                return _json(200, doc[1], doc[0])
            if path == openapi.ROOT_PATH:
                return _json(200, openapi.root())
            if path.startswith(openapi.ROOT_PATH + "/"):
                spec = openapi.group_version(path)
                return _json(200, spec) if spec is not None else _status(status.path_not_found())
        try:
            target = routes.parse(path)
        except PathError:
            return _status(status.path_not_found())
        r = target.resource
        response: web.StreamResponse
        try:
            response = await self._serve(request, target)
        except (errors.SkiffError, json.JSONDecodeError) as e:
            response = _status(
                status.status_for(e, kind_plural=r.plural, group=r.group, name=target.name or None)
            )
        except (bodies.BodyError, patch.UnsupportedPatch) as e:
            response = await self._errors_of(e)
        if self.audit is not None and request.method not in ("GET", "HEAD"):
            self._record(request, target, response)
        return response

    async def _errors_of(self, e: Exception) -> web.Response:
        """The answer the error middleware gives, here so that the audit line sees it too."""
        if isinstance(e, patch.UnsupportedPatch):
            return _status(status.unsupported_media_type(patch.PATCH_TYPES))
        if isinstance(e, bodies.UnsupportedBody):
            return _status(status.unsupported_media_type(bodies.DECODED))
        if isinstance(e, bodies.BodyTooLarge):
            return _status(status.too_large(str(e)))
        return _status(status.bad_request(str(e)))

    def _who(self, request: web.Request) -> Identity:
        header = request.headers.get("Authorization")
        try:
            return self.auth.identity([("authorization", header)] if header is not None else None)
        except errors.SkiffError:
            return Identity("-")

    def _record(self, request: web.Request, target: Target, response: web.StreamResponse) -> None:
        assert self.audit is not None
        who = self._who(request)
        name = target.name
        body = getattr(response, "body", None)
        if not name and isinstance(body, bytes) and response.status < 300:
            try:
                name = str((json.loads(body).get("metadata") or {}).get("name", ""))
            except (ValueError, AttributeError):
                name = ""
        verb = _verb(request.method, target, Query(dict(request.query)))
        if target.subresource:
            verb = f"{request.method.lower()} {target.subresource}"
        self.audit.record("rest", who, verb, target.resource.kind, target.namespace, name, response.status)

    def _public(self, path: str) -> web.Response:
        if path == "/version":
            return _json(200, discovery.version_info())
        if path.startswith("/readyz") and not self.ready():
            return web.Response(
                status=503, text="[-]raft-leader failed: no leader known\nreadyz check failed\n"
            )
        return web.Response(text="ok")

    async def _access_review(self, request: web.Request, role: str) -> web.Response:
        """SelfSubjectAccessReview: may the caller do this verb? (kubectl auth can-i)"""
        review = bodies.decode_object(
            routes.content_type(request.headers.get("Content-Type", "")), await request.read()
        )
        spec = review.get("spec") or {}
        attrs = spec.get("resourceAttributes") or spec.get("nonResourceAttributes") or {}
        verb = attrs.get("verb", "")
        need = "read" if verb in READ_VERBS else "write"
        allowed = role == "admin" or need in PERMISSIONS[role]
        # Kubernetes' RBAC gives a reason when it allows and none when it denies; kubectl prints it.
        reason = f'role "{role}" may {need}' if allowed else ""
        return _json(
            201,
            {
                "kind": "SelfSubjectAccessReview",
                "apiVersion": "authorization.k8s.io/v1",
                "metadata": {},
                "spec": review.get("spec") or {},
                "status": {"allowed": allowed, "reason": reason},
            },
        )

    # ------------------------------------------------------------ resources

    async def _body(self, request: web.Request) -> Obj:
        return bodies.decode_object(
            routes.content_type(request.headers.get("Content-Type", "")), await request.read()
        )

    async def _optional_body(self, request: web.Request) -> Obj | None:
        raw = await request.read()
        if not raw.strip():
            return None
        return bodies.decode_object(routes.content_type(request.headers.get("Content-Type", "")), raw)

    async def _serve(self, request: web.Request, target: Target) -> web.StreamResponse:
        h = self.resources
        query = Query(dict(request.query))
        method = request.method
        verb = _verb(method, target, query)
        if verb and verb not in target.resource.verbs:
            return self._not_allowed(method, target)
        table = routes.wants_table(request.headers.get("Accept", ""))
        media = routes.content_type(request.headers.get("Content-Type", ""))
        sub = target.subresource
        answer: Answer
        if method == "GET" and sub != "log" and not (target.is_collection and query.flag("watch")):
            await fresh(self.store, query.get("resourceVersion"))  # linearizable unless asked otherwise
        if sub == "":
            if target.is_collection:
                if method == "GET" and query.flag("watch"):
                    with self.admission.stream(self._who(request).credential):
                        return await self._watch(request, target, query, table)
                if method == "GET":
                    answer = h.list(target, query, table)
                elif method == "POST":
                    answer = await h.create(target, await self._body(request), query)
                elif method == "DELETE":
                    answer = await h.delete_collection(target, await self._optional_body(request), query)
                else:
                    return self._not_allowed(method, target)
            elif method == "GET":
                answer = h.get(target, table)
            elif method == "PUT":
                answer = await h.update(target, await self._body(request), query)
            elif method == "PATCH":
                answer = await h.patch(target, media, await request.read(), query)
            elif method == "DELETE":
                answer = await h.delete(target, await self._optional_body(request), query)
            else:
                return self._not_allowed(method, target)
        elif sub == "scale":
            if method == "GET":
                answer = h.get_scale(target)
            elif method == "PUT":
                answer = await h.set_scale(target, await self._body(request))
            elif method == "PATCH":
                answer = await h.patch_scale(target, media, await request.read())
            else:
                return self._not_allowed(method, target)
        elif sub == "status":
            if method == "GET":
                answer = h.get(target, table)
            elif method == "PUT":
                answer = await h.set_status(target, await self._body(request))
            elif method == "PATCH":
                answer = await h.patch_status(target, media, await request.read())
            else:
                return self._not_allowed(method, target)
        elif sub == "log" and method == "GET":
            with self.admission.stream(self._who(request).credential):
                return await self._logs(request, target, query)
        elif sub == "eviction" and method == "POST":
            answer = await h.evict(target, await self._body(request))
        elif sub == "binding" and method == "POST":
            answer = await h.bind(target, await self._body(request))
        else:
            return self._not_allowed(method, target)
        return _json(answer.code, answer.doc, headers=answer.headers)

    def _not_allowed(self, method: str, target: Target) -> web.Response:
        return _status(
            status.method_not_allowed(method, kind_plural=target.resource.plural, group=target.resource.group)
        )

    async def _watch(
        self, request: web.Request, target: Target, query: Query, table: bool
    ) -> web.StreamResponse:
        events = await self.resources.watch(target, query, table)
        response = web.StreamResponse(headers={"Content-Type": JSON_TYPE})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            async for event in events:
                await response.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")
        except errors.TooOld as e:
            code, doc = status.status_for(e)
            await response.write(json.dumps({"type": "ERROR", "object": doc}).encode() + b"\n")
        except (ConnectionResetError, errors.SkiffError) as e:
            log.debug("watch of %s ended: %s", target.resource.plural, e)
        finally:
            await events.aclose()
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    async def _logs(self, request: web.Request, target: Target, query: Query) -> web.StreamResponse:
        chunks = self.resources.logs(target, query)
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            first = None
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            if first is not None:
                await response.write(first.data)
                async for chunk in chunks:
                    await response.write(chunk.data)
        except (ConnectionResetError, errors.SkiffError) as e:
            log.debug("logs of %s ended: %s", target.name, e)
        finally:
            await chunks.aclose()
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response


async def serve(api: KubeApi, address: str, ssl_context: ssl.SSLContext | None) -> tuple[web.AppRunner, int]:
    """Start serving `api` on `address` (host:port, port 0 = any); returns the runner and the bound
    port. Stop with `await runner.cleanup()`."""
    host, _, port = address.rpartition(":")
    runner = web.AppRunner(api.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, int(port), ssl_context=ssl_context, reuse_address=True)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else int(port)
    return runner, bound


def server_ssl_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """TLS for the API: our certificate, TLS 1.2 or newer."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx
