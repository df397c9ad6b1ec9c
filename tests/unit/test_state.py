"""The store's pure apply function: one command at a time, no Raft."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from orchestrator.store import commands as st_commands
from orchestrator.store import state as st


def cm(name: str, value: str = "v", **meta) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", **meta},
        "data": {"k": value},
    }


def create(obj: dict, rid: str = "", uid: str = "u", now: float = 100.0, **kw) -> dict:
    return {"op": "create", "obj": obj, "uid": uid, "now": now, "rid": rid, **kw}


def pod(name: str, node: str = "", phase: str = "Running", owner_uid: str = "") -> dict:
    meta: dict[str, object] = {"name": name, "namespace": "default"}
    if owner_uid:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": "rs", "uid": owner_uid, "controller": True}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "demo"}]},
        "status": {"phase": phase},
    }


def test_create_sets_server_fields_and_revision() -> None:
    s = st.State()
    code, obj = st.apply(s, create(cm("a"), uid="uid-1", now=0.0))
    assert code == "ok"
    assert obj["metadata"]["uid"] == "uid-1"
    assert obj["metadata"]["resourceVersion"] == "1"
    assert obj["metadata"]["creationTimestamp"] == "1970-01-01T00:00:00Z"
    assert [e.type for e in s.history] == ["ADDED"]


def test_create_twice_is_already_exists() -> None:
    s = st.State()
    st.apply(s, create(cm("a")))
    assert st.apply(s, create(cm("a")))[:2] == ("err", "ALREADY_EXISTS")


def test_generate_name_takes_the_proposers_suffix() -> None:
    s = st.State()
    obj = cm("")
    obj["metadata"] = {"generateName": "web-", "namespace": "default"}
    _, created = st.apply(s, create(obj, suffix="x7k2p"))
    assert created["metadata"]["name"] == "web-x7k2p"


def test_retried_request_id_returns_first_result_and_applies_once() -> None:
    s = st.State()
    first = st.apply(s, create(cm("a"), rid="r1"))
    again = st.apply(s, create(cm("a"), rid="r1"))
    assert first == again
    assert s.revision == 1


def test_update_is_compare_and_set_on_resource_version() -> None:
    s = st.State()
    _, a = st.apply(s, create(cm("a", "1")))
    _, b = st.apply(s, {"op": "update", "obj": {**a, "data": {"k": "2"}}, "now": 1.0})
    assert b["data"] == {"k": "2"} and b["metadata"]["resourceVersion"] == "2"
    stale = st.apply(s, {"op": "update", "obj": {**a, "data": {"k": "3"}}, "now": 1.0})
    assert stale[:2] == ("err", "ABORTED")


def test_unchanged_apply_does_not_bump_revision() -> None:
    s = st.State()
    st.apply(s, create(cm("a")))
    _, same = st.apply(s, {"op": "update", "mode": "apply", "obj": cm("a"), "now": 2.0, "uid": "x"})
    assert same["metadata"]["resourceVersion"] == "1" and s.revision == 1


def test_merge_patch_follows_rfc7386() -> None:
    target = {"a": 1, "b": {"c": 2, "d": 3}}
    assert st.merge_patch(target, {"b": {"c": None, "e": 4}}) == {"a": 1, "b": {"d": 3, "e": 4}}
    assert target == {"a": 1, "b": {"c": 2, "d": 3}}


def test_bound_pod_delete_is_graceful_then_agent_confirms() -> None:
    s = st.State()
    st.apply(
        s,
        {"op": "register_node", "obj": {"kind": "Node", "metadata": {"name": "w1"}}, "now": 1.0, "uid": "n"},
    )
    _, p = st.apply(s, create(pod("p", node="w1"), uid="pod-uid"))
    _, marked = st.apply(s, {"op": "delete", "kind": "Pod", "namespace": "default", "name": "p", "now": 5.0})
    assert marked["metadata"]["deletionTimestamp"] and s.get("Pod", "default", "p") is not None
    st.apply(
        s,
        {
            "op": "heartbeat",
            "node": "w1",
            "now": 6.0,
            "pods": [
                {"namespace": "default", "name": "p", "uid": "pod-uid", "status": None, "deleted": True}
            ],
        },
    )
    assert s.get("Pod", "default", "p") is None
    assert "w1" not in s.pods_by_node  # the index holds no emptied entries


def test_unbound_or_forced_pod_delete_is_immediate() -> None:
    s = st.State()
    st.apply(s, create(pod("p")))
    st.apply(s, create(pod("q", node="w1")))
    st.apply(s, {"op": "delete", "kind": "Pod", "namespace": "default", "name": "p", "now": 1.0})
    st.apply(
        s, {"op": "delete", "kind": "Pod", "namespace": "default", "name": "q", "now": 1.0, "force": True}
    )
    assert s.objects["Pod"] == {}


def test_delete_cascades_to_owned_objects() -> None:
    s = st.State()
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "rs", "namespace": "default"},
        "spec": {},
    }
    st.apply(s, create(rs, uid="rs-uid"))
    st.apply(s, create(pod("p1", owner_uid="rs-uid"), uid="p1"))
    st.apply(s, create(pod("p2", owner_uid="other"), uid="p2"))
    st.apply(s, {"op": "delete", "kind": "ReplicaSet", "namespace": "default", "name": "rs", "now": 1.0})
    assert list(s.objects["Pod"]) == ["Pod/default/p2"]


def test_service_gets_cluster_ip_and_unique_node_ports() -> None:
    s = st.State()

    def svc(name: str, node_port: int = 0) -> dict:
        port = {"port": 80, "targetPort": 5005}
        if node_port:
            port["nodePort"] = node_port
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": "NodePort", "ports": [port], "selector": {"app": name}},
        }

    _, a = st.apply(s, create(svc("a"), uid="a"))
    _, b = st.apply(s, create(svc("b"), uid="b"))
    assert a["spec"]["ports"][0]["nodePort"] == 30000 and b["spec"]["ports"][0]["nodePort"] == 30001
    assert a["spec"]["clusterIP"] == "127.1.0.1" and b["spec"]["clusterIP"] == "127.1.0.2"
    taken = st.apply(s, create(svc("c", node_port=30001), uid="c"))
    assert taken[:2] == ("err", "INVALID_ARGUMENT")
    _, a2 = st.apply(s, {"op": "update", "obj": svc("a"), "now": 2.0})
    assert a2["spec"]["ports"][0]["nodePort"] == 30000  # kept across updates


@pytest.mark.parametrize(
    ("lease", "cmd", "holder"),
    [
        pytest.param(st.Lease("", 0, 0), ("m1", 1, 10.0), "m1", id="free lease is taken"),
        pytest.param(st.Lease("m1", 1, 20.0), ("m2", 1, 10.0), "m1", id="same term, unexpired: kept"),
        pytest.param(st.Lease("m1", 1, 20.0), ("m2", 2, 10.0), "m2", id="newer term always wins"),
        pytest.param(st.Lease("m2", 3, 20.0), ("m1", 2, 30.0), "m2", id="older term never wins"),
        pytest.param(st.Lease("m1", 1, 20.0), ("m1", 1, 15.0), "m1", id="holder renews"),
    ],
)
def test_lease(lease: st.Lease, cmd: tuple, holder: str) -> None:
    s = st.State(lease=lease)
    st.apply(s, {"op": "lease", "holder": cmd[0], "term": cmd[1], "now": cmd[2], "duration": 3.0})
    assert s.lease.holder == holder


def test_fenced_write_rejected_after_lease_moves() -> None:
    s = st.State(lease=st.Lease("m2", 2, 99.0))
    result = st.apply(s, {**create(cm("a")), "fence": ("m1", 1)})
    assert result[:2] == ("err", "FAILED_PRECONDITION") and s.revision == 0


def test_history_revisions_are_contiguous() -> None:
    s = st.State()
    for i in range(5):
        st.apply(s, create(cm(f"c{i}")))
    st.apply(s, {"op": "delete", "kind": "ConfigMap", "namespace": "default", "name": "c0", "now": 1.0})
    assert [e.revision for e in s.history] == list(range(1, 7))
    assert s.first_revision() == 0


commands = hs.lists(
    hs.one_of(
        hs.builds(
            lambda n, v: create(cm(f"c{n}", v), rid=f"r{n}{v}"), hs.integers(0, 5), hs.sampled_from("xyz")
        ),
        hs.builds(
            lambda n: {
                "op": "delete",
                "kind": "ConfigMap",
                "namespace": "default",
                "name": f"c{n}",
                "now": 1.0,
            },
            hs.integers(0, 5),
        ),
        hs.builds(
            lambda n, v: {
                "op": "patch",
                "kind": "ConfigMap",
                "namespace": "default",
                "name": f"c{n}",
                "patch": {"data": {"k": v}},
                "now": 1.0,
            },
            hs.integers(0, 5),
            hs.sampled_from("xyz"),
        ),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(commands)
def test_same_commands_give_same_digest_and_results(cmds: list[dict]) -> None:
    a, b = st.State(), st.State()
    ra = [st.apply(a, copy.deepcopy(c)) for c in cmds]
    rb = [st.apply(b, copy.deepcopy(c)) for c in cmds]
    assert ra == rb
    assert st.digest(a) == st.digest(b)
    # A digester that kept its hashes from an earlier state gives what a fresh one gives.
    kept = st.Digester()
    kept.digest(0, st.snapshot(st.State()))
    half = st.State()
    for c in cmds[: len(cmds) // 2]:
        st.apply(half, copy.deepcopy(c))
    kept.digest(half.revision, st.snapshot(half))
    for c in cmds[len(cmds) // 2 :]:
        st.apply(half, copy.deepcopy(c))
    assert kept.digest(half.revision, st.snapshot(half)) == st.digest(a)
    # The objects equal a replay of the history's last state per key.
    replay: dict[str, dict] = {}
    for ev in a.history:
        if ev.type == "DELETED":
            replay.pop(ev.key, None)
        else:
            replay[ev.key] = ev.obj
    assert replay == a.objects.get("ConfigMap", {})


def test_pods_are_indexed_by_their_controller_and_a_snapshot_without_the_index_builds_it() -> None:
    import pickle

    s = st.State()
    for name, owner in (("a", "rs1"), ("b", "rs1"), ("c", "rs2")):
        ref = {"kind": "ReplicaSet", "name": owner, "uid": owner, "controller": True}
        p: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "ownerReferences": [ref]},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        }
        st.apply(s, {"op": "create", "obj": p, "uid": f"u-{name}", "now": 1.0, "rid": name})
    assert s.pods_by_owner == {"default/ReplicaSet/rs1": {"Pod/default/a": None, "Pod/default/b": None},
                               "default/ReplicaSet/rs2": {"Pod/default/c": None}}  # fmt: skip
    st.apply(s, {"op": "delete", "kind": "Pod", "namespace": "default", "name": "c", "resource_version": "",
                 "force": True, "grace": None, "now": 2.0, "rid": "d"})  # fmt: skip
    assert "default/ReplicaSet/rs2" not in s.pods_by_owner
    old = s.__dict__.copy()
    del old["pods_by_owner"]  # as pickled before the index existed
    restored = pickle.loads(pickle.dumps(s))
    restored.__setstate__(old)
    assert restored.pods_by_owner == {
        "default/ReplicaSet/rs1": {"Pod/default/a": None, "Pod/default/b": None}
    }


def test_digest_changes_with_an_object_and_not_with_the_digester() -> None:
    state = st.State()
    for i in range(3):
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}", "namespace": "d"}}
        st.apply(state, st_commands.create(cm, uid=f"u{i}", now=1.0, rid=f"r{i}"))
    digester = st.Digester()
    first = digester.digest(state.revision, st.snapshot(state))
    assert digester.digest(state.revision, st.snapshot(state)) == first == st.digest(state)
    changed = st.snapshot(state)
    key, obj = changed[1]
    changed[1] = (key, {**obj, "data": {"k": "v"}})
    assert digester.digest(state.revision, changed) != first
    assert digester.digest(state.revision + 1, st.snapshot(state)) != first


def _pod_write(op: str, n: int, v: int) -> dict:
    """One write of pod p{n}: created (owned by rs{v}), bound to w{v}, re-owned by rs{v}, its status
    set (through a patch or a heartbeat of w{v}), replaced whole, or deleted (forced)."""
    target = {"kind": "Pod", "namespace": "default", "name": f"p{n}", "now": 1.0}
    if op == "create":
        p = pod(f"p{n}", owner_uid=f"rs{v}")
        p["metadata"]["ownerReferences"][0]["name"] = f"rs{v}"
        return create(p, uid=f"u{n}", rid=f"c{n}{v}")
    if op == "bind":
        return {"op": "patch", **target, "patch": {"spec": {"nodeName": f"w{v}"}}}
    if op == "own":
        ref = {"kind": "ReplicaSet", "name": f"rs{v}", "uid": f"rs{v}", "controller": True}
        return {"op": "patch", **target, "patch": {"metadata": {"ownerReferences": [ref]}}}
    if op == "status":
        return {"op": "patch", **target, "status": True, "patch": {"status": {"phase": f"P{v}"}}}
    if op == "heartbeat":
        update = {"namespace": "default", "name": f"p{n}", "uid": f"u{n}", "status": {"phase": f"H{v}"}}
        return {"op": "heartbeat", "node": f"w{v}", "now": 2.0, "pods": [update]}
    if op == "update":
        return {"op": "update", "obj": pod(f"p{n}", node=f"w{v}", owner_uid=f"x{v}"), "now": 1.0}
    return {"op": "delete", **target, "force": True, "grace": None}


pod_writes = hs.lists(
    hs.builds(
        _pod_write,
        hs.sampled_from(["create", "bind", "own", "status", "heartbeat", "update", "delete"]),
        hs.integers(0, 3),
        hs.integers(0, 2),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(pod_writes)
def test_the_pod_indexes_always_equal_the_ones_built_from_the_pods(writes: list[dict]) -> None:
    """The by-node and by-controller indexes skip the writes that share the pod's spec and owner
    references with its version before; whatever the writes, they are what the pods say."""
    s = st.State()
    for n in range(3):
        st.apply(s, {"op": "register_node", "obj": {"kind": "Node", "metadata": {"name": f"w{n}"}},
                     "now": 1.0, "uid": f"n{n}"})  # fmt: skip
    for w in writes:
        st.apply(s, copy.deepcopy(w))
    built = st.State()
    for key, p in s.objects.get("Pod", {}).items():
        st._index_pod(built, key, None, p)
    assert s.pods_by_node == built.pods_by_node
    assert s.pods_by_owner == built.pods_by_owner
