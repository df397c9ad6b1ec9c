"""Deployment revisions: which ReplicaSets a Deployment owns, their revision numbers, which one is the
Deployment's current template, and which one `rollout undo` goes back to.

Pure functions of plain objects (no I/O), shared by the deployment controller and the CLI. A
ReplicaSet's template carries a `pod-template-hash` label its Deployment's does not, so templates are
compared without it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from orchestrator.model import controller_of, label_selector_matches, labels_of, name_of, template_hash

Obj = dict[str, Any]
RS = TypeVar("RS", bound=Mapping[str, Any])

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"


class UndoError(ValueError):
    """No ReplicaSet to roll back to; the message names what was asked for."""


def revision_of(obj: Mapping[str, Any]) -> int:
    """The revision annotation of a ReplicaSet (or Deployment); 0 when it is missing or not a number."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    try:
        return int(annotations.get(REVISION, 0))
    except ValueError:
        return 0


def template_without_hash(template: Mapping[str, Any]) -> Obj:
    """A copy of a pod template without its pod-template-hash label."""
    t = copy.deepcopy(dict(template))
    labels = (t.get("metadata") or {}).get("labels") or {}
    labels.pop(HASH_LABEL, None)
    return t


def deployment_template_hash(deployment: Mapping[str, Any]) -> str:
    """model.template_hash of the Deployment's template without the pod-template-hash label, so a
    template copied back from an old ReplicaSet (`rollout undo`) hashes to that ReplicaSet's hash."""
    return template_hash(template_without_hash(deployment["spec"].get("template") or {}))


def owned_replicasets(
    deployment: Mapping[str, Any], replicasets: Iterable[RS], *, orphans: bool = True
) -> list[RS]:
    """The ReplicaSets whose controller reference names the Deployment (and its uid, when both carry
    one), plus, with `orphans`, those with no controller that its selector matches (the ones the
    controller would adopt); in the given order."""
    uid = (deployment.get("metadata") or {}).get("uid")
    selector = (deployment.get("spec") or {}).get("selector")
    out = []
    for rs in replicasets:
        ref = controller_of(rs)
        if ref and ref.get("kind") == "Deployment" and ref.get("name") == name_of(deployment):
            if not uid or not ref.get("uid") or ref["uid"] == uid:
                out.append(rs)
        elif orphans and ref is None and label_selector_matches(selector, labels_of(rs)):
            out.append(rs)
    return out


def history(deployment: Mapping[str, Any], replicasets: Iterable[Obj]) -> list[Obj]:
    """The Deployment's ReplicaSets, oldest revision first (`rollout history`)."""
    return sorted(owned_replicasets(deployment, replicasets), key=revision_of)


def with_revision(replicasets: Iterable[Obj], revision: int) -> Obj | None:
    """The first ReplicaSet annotated with `revision`, else None."""
    return next((rs for rs in replicasets if revision_of(rs) == revision), None)


def newest_replicaset(
    deployment: Mapping[str, Any], owned: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The ReplicaSet whose template equals the Deployment's (ignoring pod-template-hash), else the one
    with the highest revision; None when there is none."""
    template = template_without_hash((deployment.get("spec") or {}).get("template") or {})
    for rs in owned:
        if template_without_hash((rs.get("spec") or {}).get("template") or {}) == template:
            return rs
    return max(owned, key=revision_of, default=None)


def undo_target(deployment: Mapping[str, Any], owned: Sequence[Obj], to_revision: int = 0) -> Obj:
    """The ReplicaSet `rollout undo` goes back to: the one of `to_revision` when given, else the newest
    revision older than the current ReplicaSet's. Raises UndoError when there is none."""
    if to_revision:
        target = with_revision(owned, to_revision)
        if target is None:
            raise UndoError(f"unable to find specified revision {to_revision} in history")
        return target
    ordered = sorted(owned, key=revision_of)
    current = newest_replicaset(deployment, ordered)
    older = [rs for rs in ordered if rs is not current and revision_of(rs) < revision_of(current or {})]
    if not older:
        raise UndoError(f'no rollout history found for deployment "{name_of(deployment)}"')
    return older[-1]


def rolled_back(deployment: Mapping[str, Any], target: Mapping[str, Any]) -> Obj | None:
    """A copy of the Deployment with the target ReplicaSet's template (without pod-template-hash), or
    None when its template already is that one."""
    template = template_without_hash(target["spec"]["template"])
    if template_without_hash(deployment["spec"]["template"]) == template:
        return None
    changed = copy.deepcopy(dict(deployment))
    changed["spec"]["template"] = template
    return changed
