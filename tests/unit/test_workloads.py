"""Deployment revisions: parsing, the owned ReplicaSets, the newest one, and `rollout undo`'s target."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import workloads as w
from orchestrator.model import template_hash

Obj = dict[str, Any]
UID = "dep-uid-1"


def template(image: str, pod_hash: str = "") -> Obj:
    labels = {"app": "web", **({w.HASH_LABEL: pod_hash} if pod_hash else {})}
    return {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": image}]}}


def deployment(image: str = "web:2") -> Obj:
    return {
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": UID},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template(image)},
    }


def replicaset(name: str, revision: int | str | None, image: str, owner: Obj | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": "default", "uid": f"rs-{name}", "labels": {"app": "web"}}
    if revision is not None:
        meta["annotations"] = {w.REVISION: str(revision)}
    if owner is not None:
        meta["ownerReferences"] = [{"controller": True, **owner}]
    return {"kind": "ReplicaSet", "metadata": meta, "spec": {"template": template(image, f"h-{name}")}}


OWNER = {"kind": "Deployment", "name": "web", "uid": UID}


@pytest.mark.parametrize(
    ("obj", "want"),
    [
        pytest.param({"metadata": {"annotations": {w.REVISION: "7"}}}, 7, id="number"),
        pytest.param({"metadata": {"annotations": {w.REVISION: "seven"}}}, 0, id="not-a-number"),
        pytest.param({"metadata": {"annotations": {"other": "1"}}}, 0, id="no-annotation"),
        pytest.param({"metadata": {"annotations": None}}, 0, id="annotations-null"),
        pytest.param({"metadata": {}}, 0, id="no-annotations"),
        pytest.param({}, 0, id="no-metadata"),
    ],
)
def test_revision_of(obj: Obj, want: int) -> None:
    assert w.revision_of(obj) == want


def test_template_without_hash_copies_and_drops_only_the_hash_label() -> None:
    t = template("web:1", "abc")
    out = w.template_without_hash(t)
    assert out["metadata"]["labels"] == {"app": "web"}
    assert t["metadata"]["labels"][w.HASH_LABEL] == "abc"  # the input is not mutated
    assert w.template_without_hash({}) == {}
    assert w.template_without_hash({"spec": {}}) == {"spec": {}}


def test_deployment_template_hash_ignores_the_hash_label() -> None:
    d = deployment("web:1")
    copied_back = deployment("web:1")
    copied_back["spec"]["template"] = template("web:1", "abc")
    assert w.deployment_template_hash(d) == w.deployment_template_hash(copied_back)
    assert w.deployment_template_hash(d) == template_hash(template("web:1"))
    assert w.deployment_template_hash(d) != w.deployment_template_hash(deployment("web:2"))


@pytest.mark.parametrize(
    ("rs", "owned"),
    [
        pytest.param(replicaset("a", 1, "web:1", OWNER), True, id="controller-ref-with-uid"),
        pytest.param(replicaset("a", 1, "web:1", {**OWNER, "uid": "other"}), False, id="same-name-other-uid"),
        pytest.param(
            replicaset("a", 1, "web:1", {"kind": "Deployment", "name": "web"}), True, id="ref-no-uid"
        ),
        pytest.param(replicaset("a", 1, "web:1", {**OWNER, "name": "api"}), False, id="other-deployment"),
        pytest.param(replicaset("a", 1, "web:1", {**OWNER, "kind": "Job"}), False, id="other-kind"),
        pytest.param(replicaset("a", 1, "web:1"), True, id="orphan-matching-selector"),
    ],
)
def test_owned_replicasets_by_owner_reference(rs: Obj, owned: bool) -> None:
    assert w.owned_replicasets(deployment(), [rs]) == ([rs] if owned else [])


def test_owned_replicasets_orphan_must_match_the_selector() -> None:
    orphan = replicaset("a", 1, "web:1")
    orphan["metadata"]["labels"] = {"app": "api"}
    assert w.owned_replicasets(deployment(), [orphan]) == []


def test_owned_replicasets_without_a_deployment_uid_match_by_name() -> None:
    d = deployment()
    del d["metadata"]["uid"]
    rs = replicaset("a", 1, "web:1", {**OWNER, "uid": "anything"})
    assert w.owned_replicasets(d, [rs]) == [rs]


def test_history_is_oldest_revision_first_and_owned_only() -> None:
    r3, r1, r2 = (replicaset(n, rev, f"web:{rev}", OWNER) for n, rev in (("c", 3), ("a", 1), ("b", 2)))
    stranger = replicaset("x", 9, "web:9", {**OWNER, "name": "api"})
    assert [w.revision_of(rs) for rs in w.history(deployment(), [r3, stranger, r1, r2])] == [1, 2, 3]


def test_with_revision() -> None:
    rss = [replicaset("a", 1, "web:1"), replicaset("b", 2, "web:2")]
    assert w.with_revision(rss, 2) is rss[1]
    assert w.with_revision(rss, 5) is None


@pytest.mark.parametrize(
    ("image", "revisions", "want"),
    [
        pytest.param("web:2", [1, 2, 3], "rs2", id="template-match-wins-over-higher-revision"),
        pytest.param("web:9", [1, 3, 2], "rs3", id="no-match-highest-revision"),
        pytest.param("web:1", [1], "rs1", id="single"),
    ],
)
def test_newest_replicaset(image: str, revisions: list[int], want: str) -> None:
    rss = [replicaset(f"rs{r}", r, f"web:{r}", OWNER) for r in revisions]
    newest = w.newest_replicaset(deployment(image), rss)
    assert newest is not None and newest["metadata"]["name"] == want


def test_newest_replicaset_of_none() -> None:
    assert w.newest_replicaset(deployment(), []) is None


def history_of(*revisions: int) -> list[Obj]:
    return [replicaset(f"rs{r}", r, f"web:{r}", OWNER) for r in revisions]


@pytest.mark.parametrize(
    ("image", "revisions", "to_revision", "want"),
    [
        pytest.param("web:3", [1, 2, 3], 0, "rs2", id="previous-of-current"),
        pytest.param("web:2", [1, 2, 3], 0, "rs1", id="current-is-not-the-newest-revision"),
        pytest.param("web:3", [3, 1, 2], 0, "rs2", id="unsorted-history"),
        pytest.param("web:3", [1, 2, 3], 1, "rs1", id="to-revision"),
        pytest.param("web:3", [1, 2, 3], 3, "rs3", id="to-revision-current"),
        pytest.param("web:9", [1, 2], 0, "rs1", id="no-template-match-newest-is-current"),
    ],
)
def test_undo_target(image: str, revisions: list[int], to_revision: int, want: str) -> None:
    target = w.undo_target(deployment(image), history_of(*revisions), to_revision)
    assert target["metadata"]["name"] == want


@pytest.mark.parametrize(
    ("image", "revisions", "to_revision", "message"),
    [
        pytest.param("web:1", [1], 0, 'no rollout history found for deployment "web"', id="only-current"),
        pytest.param("web:1", [], 0, 'no rollout history found for deployment "web"', id="no-replicasets"),
        pytest.param(
            "web:2", [1, 2], 5, "unable to find specified revision 5 in history", id="missing-to-revision"
        ),
    ],
)
def test_undo_target_none(image: str, revisions: list[int], to_revision: int, message: str) -> None:
    with pytest.raises(w.UndoError, match=message):
        w.undo_target(deployment(image), history_of(*revisions), to_revision)


def test_rolled_back_takes_the_template_without_its_hash() -> None:
    d = deployment("web:3")
    target = replicaset("rs1", 1, "web:1", OWNER)
    out = w.rolled_back(d, target)
    assert out is not None and out["spec"]["template"] == template("web:1")
    assert d["spec"]["template"] == template("web:3")  # the input is not mutated
    assert out["spec"]["replicas"] == d["spec"]["replicas"]


def test_rolled_back_to_the_current_template_changes_nothing() -> None:
    d = deployment("web:1")
    assert w.rolled_back(d, replicaset("rs1", 1, "web:1", OWNER)) is None
