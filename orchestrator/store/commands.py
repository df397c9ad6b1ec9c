"""The store's command vocabulary: one constructor per op that `state.apply` understands.

A command is a plain dict (it is pickled into the Raft log, so it holds only plain data). Everything
an apply needs that is not deterministic (the time, a new uid, the request id, a generated name's
suffix) is chosen by the proposer and passed in here, never looked up inside an apply. These
constructors are the only place that spells a command's keys; `store.writer.Writer` is the only
caller outside tests.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

Obj = dict[str, Any]
Command = dict[str, Any]

# What a retry chooses anew (the time, a uid, a generated name's suffix): not part of what was asked.
_CHOSEN_BY_PROPOSER = ("uid", "now", "rid", "suffix", "fence", "fp")


def fingerprinted(cmd: Command) -> Command:
    """`cmd` with "fp": a digest of what the client asked for. A request id seen again with another
    fingerprint is a different request under a reused id, and is refused (see state.apply)."""
    asked = {k: v for k, v in cmd.items() if k not in _CHOSEN_BY_PROPOSER}
    digest = hashlib.sha256(json.dumps(asked, sort_keys=True, separators=(",", ":")).encode())
    cmd["fp"] = digest.hexdigest()[:32]
    return cmd


def create(obj: Obj, *, uid: str, now: float, rid: str, suffix: str | None = None) -> Command:
    """Store a new object; with `suffix`, its name is metadata.generateName + suffix."""
    cmd: Command = {"op": "create", "obj": obj, "uid": uid, "now": now, "rid": rid}
    if suffix is not None:
        cmd["suffix"] = suffix
    return fingerprinted(cmd)


def update(obj: Obj, *, mode: str, uid: str, now: float, rid: str) -> Command:
    """Replace an object: mode "update" needs it to exist, "apply" creates it when missing."""
    return fingerprinted({"op": "update", "obj": obj, "mode": mode, "uid": uid, "now": now, "rid": rid})


def patch(kind: str, namespace: str, name: str, body: Obj, *, status: bool, now: float, rid: str) -> Command:
    """JSON-merge-patch an object's spec and metadata, or only its status with `status`."""
    return fingerprinted(
        {
            "op": "patch",
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "patch": body,
            "status": status,
            "now": now,
            "rid": rid,
        }
    )


def delete(
    kind: str,
    namespace: str,
    name: str,
    *,
    resource_version: str,
    force: bool,
    grace: int | None,
    now: float,
    rid: str,
) -> Command:
    """Delete an object (a pod on a node is marked for a graceful stop unless `force`)."""
    return fingerprinted(
        {
            "op": "delete",
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "rv": resource_version,
            "force": force,
            "grace": grace,
            "now": now,
            "rid": rid,
        }
    )


def register_node(node: Obj, *, uid: str, now: float, rid: str) -> Command:
    """An agent's registration: create or refresh its Node and mark it Ready."""
    return {"op": "register_node", "obj": node, "now": now, "uid": uid, "rid": rid}


def pod_update(namespace: str, name: str, uid: str, status: Obj | None, deleted: bool) -> Obj:
    """One pod's report inside a heartbeat: its new status, or that its containers are gone."""
    return {"namespace": namespace, "name": name, "uid": uid, "status": status, "deleted": deleted}


def heartbeat(node: str, *, node_status: Obj | None, pods: list[Obj], now: float, rid: str) -> Command:
    """An agent's liveness, changed node status and pod updates (from `pod_update`), in one write."""
    return {"op": "heartbeat", "node": node, "now": now, "rid": rid, "node_status": node_status, "pods": pods}


def renew(holder: str, set_id: int, *, now: float, nodes: list[str] | None = None) -> Command:
    """Nodes' liveness, batched: the nodes whose streams master `holder` holds were heard at `now`.
    One write per interval per master, in place of a write per heartbeat.

    `nodes` is sent only when the set changed: it is stored as `set_id`, and each later renewal of
    the same set names only the id, so an idle renewal is a few dozen bytes, not a list of
    hundreds of names, and applies in constant time. A renewal naming an id the store does not
    hold (its full set was lost, or superseded) is refused, and the holder sends the set again.
    No request id: a renewal repeated is harmless (the store keeps the newest time)."""
    cmd: Command = {"op": "renew", "holder": holder, "set": set_id, "now": now}
    if nodes is not None:
        cmd["nodes"] = nodes
    return cmd


def lease(holder: str, term: int, *, now: float, duration: float) -> Command:
    """Take or renew the controllers' lease. No request id: a renewal repeated is harmless, and
    keeping it out of the request table spares that table four entries a second."""
    return {"op": "lease", "holder": holder, "term": term, "now": now, "duration": duration}


def barrier() -> Command:
    """A no-op entry whose commit confirms a read (see Store.read_barrier). No request id."""
    return {"op": "barrier"}


def batch(cmds: list[Command]) -> Command:
    """Several proposals travelling as one Raft entry (group commit); each keeps its own id."""
    return {"op": "batch", "cmds": cmds}


def fenced(cmd: Command, fence: tuple[str, int]) -> Command:
    """`cmd` applied only while `fence` (lease holder, term) still holds the controllers' lease."""
    return {**cmd, "fence": fence}
