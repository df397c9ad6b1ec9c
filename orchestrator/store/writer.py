"""The one write path: every edge (the gRPC API, the agent gateway, the lease keeper, the controllers)
validates and writes through `Writer`.

A write is validated here, turned into a command by `store.commands`, and proposed through Raft. The
writer chooses what an apply may not (time, uids, request ids, generated names), so every master
applies the same command the same way. A write whose outcome is unknown raises errors.Unavailable:
retry it with the same request id and the store answers it once.
"""

from __future__ import annotations

import json
import secrets
import string
import time
import uuid
from typing import Any

from orchestrator import errors, model, validation
from orchestrator.store import commands
from orchestrator.store.admission import Admission
from orchestrator.store.raft import Store
from orchestrator.store.state import merge_patch

Obj = dict[str, Any]
WRITE_TIMEOUT = 5.0
NAME_ATTEMPTS = 5
MAX_OBJECT_BYTES = 3 * 1024 * 1024  # as Kubernetes limits one object


def check(obj: Obj) -> Obj:
    """Validate and default a written object (errors.Invalid names the field, errors.TooLarge the
    size limit: Kubernetes' 3 MiB per object)."""
    size = len(json.dumps(obj, separators=(",", ":")))
    if size > MAX_OBJECT_BYTES:
        raise errors.TooLarge(f"the object is {size} bytes; the limit is {MAX_OBJECT_BYTES} bytes (3 MiB)")
    try:
        return model.apply_defaults(model.validate(obj), copy=False)  # validate's result is a copy
    except model.ValidationError as e:
        raise errors.Invalid(str(e)) from None


def namespace_of(kind: str, namespace: str) -> str:
    """The namespace an object of `kind` is stored under: "" for cluster-scoped kinds."""
    if not model.KINDS[kind].namespaced:
        return ""
    return namespace or model.DEFAULT_NAMESPACE


def _kind(kind: str) -> str:
    return kind if kind in model.KINDS else model.resolve_kind(kind)


def _suffix() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))


def _rid(rid: str) -> str:
    return rid or uuid.uuid4().hex


class Writer:
    """Validates writes and proposes them as store commands; with `fence`, only while that lease holds.

    With `admission` (the API's writers), each proposal first takes one of its slots, and is refused
    with TooManyRequests, before anything is proposed, when none frees in time; the writers of the
    node gateway and the controllers have none (their traffic is exempt, see store/admission.py).
    """

    def __init__(
        self, store: Store, fence: tuple[str, int] | None = None, admission: Admission | None = None
    ) -> None:
        self.store = store
        self.fence = fence
        self.admission = admission

    async def _propose(self, cmd: commands.Command, timeout: float = WRITE_TIMEOUT) -> Any:
        if self.fence is not None:
            cmd = commands.fenced(cmd, self.fence)
        if self.admission is None:
            return await self.store.propose(cmd, timeout=timeout)
        async with self.admission.slot():
            return await self.store.propose(cmd, timeout=timeout)

    async def create(self, obj: Obj, rid: str = "") -> Obj:
        obj = check(obj)
        named = bool(obj["metadata"].get("name"))
        for _ in range(NAME_ATTEMPTS):
            cmd = commands.create(
                obj,
                uid=str(uuid.uuid4()),
                now=time.time(),
                rid=_rid(rid),
                suffix=None if named else _suffix(),
            )
            try:
                return await self._propose(cmd)
            except errors.AlreadyExists:
                if named:
                    raise
                rid = ""  # a generated name collided: try another suffix
        raise errors.AlreadyExists("could not generate a unique name")

    async def update(self, obj: Obj, rid: str = "", mode: str = "update") -> Obj:
        obj = check(obj)
        return await self._propose(
            commands.update(obj, mode=mode, uid=str(uuid.uuid4()), now=time.time(), rid=_rid(rid))
        )

    async def patch(
        self, kind: str, namespace: str, name: str, patch: Obj, status: bool = False, rid: str = ""
    ) -> Obj:
        kind = _kind(kind)
        namespace = namespace_of(kind, namespace)
        if not isinstance(patch, dict):
            raise errors.Invalid("patch must be a JSON object")
        current = self.store.get(kind, namespace, name)
        if current is None:
            raise errors.NotFound(f'{kind.lower()}s "{name}" not found')
        if status:  # the object as the status patch leaves it (the store merges it the same way)
            check({**current, "status": merge_patch(current.get("status") or {}, patch.get("status", patch))})
        else:
            check(merge_patch(current, patch))
        return await self._propose_patch(kind, namespace, name, patch, status, rid)

    async def _propose_patch(
        self, kind: str, namespace: str, name: str, patch: Obj, status: bool, rid: str
    ) -> Obj:
        return await self._propose(
            commands.patch(kind, namespace, name, patch, status=status, now=time.time(), rid=_rid(rid))
        )

    async def bind(self, namespace: str, name: str, node: str, rid: str = "") -> Obj:
        """Kubernetes' pods/binding: set a pod's spec.nodeName. The pod was valid and only the node name
        is new, so only that is checked (not the whole pod, as a patch would be)."""
        if not model.valid_name(node):
            raise errors.Invalid(f"spec.nodeName: {node!r} is not a valid node name")
        return await self._propose_patch("Pod", namespace, name, {"spec": {"nodeName": node}}, False, rid)

    async def delete(
        self,
        kind: str,
        namespace: str,
        name: str,
        rid: str = "",
        resource_version: str = "",
        force: bool = False,
        grace: int | None = None,
    ) -> Obj:
        kind = _kind(kind)
        return await self._propose(
            commands.delete(
                kind,
                namespace_of(kind, namespace),
                name,
                resource_version=resource_version,
                force=force,
                grace=grace,
                now=time.time(),
                rid=_rid(rid),
            )
        )

    async def register_node(self, node: Any) -> Obj:
        """An agent's Node, validated (errors.Invalid names the field), created or refreshed as Ready."""
        if not isinstance(node, dict):
            raise errors.Invalid("a registered Node must be a JSON object")
        node = {"apiVersion": "v1", "kind": "Node", **node}
        if node["kind"] != "Node":
            raise errors.Invalid(f"kind: an agent registers a Node, not a {node['kind']!r}")
        try:
            node = model.validate(node)
        except model.ValidationError as e:
            raise errors.Invalid(str(e)) from None
        return await self._propose(
            commands.register_node(node, uid=str(uuid.uuid4()), now=time.time(), rid=_rid(""))
        )

    async def heartbeat(
        self, node: str, node_status: Obj | None, pods: list[Obj], rid: str, timeout: float = WRITE_TIMEOUT
    ) -> None:
        """An agent's heartbeat: `pods` are `commands.pod_update` reports of pods bound to `node`.
        The node status and each pod status pass the same validation as any write (errors.Invalid)."""
        try:
            if node_status is not None:
                current = self.store.get("Node", "", node) or {"metadata": {"name": node}}
                status = {**(current.get("status") or {}), **node_status}
                validation.validate_object({**current, "apiVersion": "v1", "kind": "Node", "status": status})
            for p in pods:
                if p.get("status") is not None:
                    validation.pod_status(p["status"], f"pod {p.get('namespace')}/{p.get('name')} status")
        except validation.FieldError as e:
            raise errors.Invalid(str(e)) from None
        await self._propose(
            commands.heartbeat(node, node_status=node_status, pods=pods, now=time.time(), rid=rid),
            timeout=timeout,
        )

    async def renew(
        self, holder: str, set_id: int, nodes: list[str] | None, timeout: float = WRITE_TIMEOUT
    ) -> None:
        """Nodes' liveness, batched (commands.renew): `holder`'s renewal set `set_id` heard now, with
        its nodes when the store may not hold that set yet. errors.Precondition: it does not."""
        await self._propose(commands.renew(holder, set_id, now=time.time(), nodes=nodes), timeout=timeout)

    async def lease(self, holder: str, term: int, duration: float) -> Obj:
        """Take or renew the controllers' lease for `holder` in Raft term `term`; returns the lease
        as stored (another holder's, when this one lost). Waits at most half the lease."""
        return await self._propose(
            commands.lease(holder, term, now=time.time(), duration=duration), timeout=duration / 2
        )
