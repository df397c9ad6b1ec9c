"""The command constructors: every op the store applies has one, and each command it builds applies."""

from __future__ import annotations

from orchestrator.store import commands as c
from orchestrator.store import state as st


def cm(name: str, value: str = "v") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"k": value},
    }


def node(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "status": {}}


def test_every_op_the_store_applies_has_a_constructor() -> None:
    built = {
        c.create(cm("a"), uid="u", now=1.0, rid="r")["op"],
        c.update(cm("a"), mode="apply", uid="u", now=1.0, rid="r")["op"],
        c.patch("ConfigMap", "default", "a", {}, status=False, now=1.0, rid="r")["op"],
        c.delete("ConfigMap", "default", "a", resource_version="", force=False, grace=None, now=1.0, rid="r")[
            "op"
        ],
        c.register_node(node("n"), uid="u", now=1.0, rid="r")["op"],
        c.heartbeat("n", node_status=None, pods=[], now=1.0, rid="r")["op"],
        c.lease("m1", 1, now=1.0, duration=3.0)["op"],
        c.barrier()["op"],
        c.renew("m1", 1, now=1.0, nodes=["n"])["op"],
    }
    assert built == set(st._HANDLERS)


def test_a_story_of_commands_applies_in_order() -> None:
    s = st.State()
    code, obj = st.apply(s, c.create(cm("a"), uid="u1", now=10.0, rid="r1"))
    assert code == "ok" and obj["metadata"]["uid"] == "u1"
    code, obj = st.apply(s, c.update(cm("a", "w"), mode="update", uid="u2", now=11.0, rid="r2"))
    assert code == "ok" and obj["data"] == {"k": "w"} and obj["metadata"]["uid"] == "u1"
    code, obj = st.apply(
        s, c.patch("ConfigMap", "default", "a", {"data": {"k": "x"}}, status=False, now=12.0, rid="r3")
    )
    assert code == "ok" and obj["data"] == {"k": "x"}
    code, _ = st.apply(
        s,
        c.delete(
            "ConfigMap", "default", "a", resource_version="", force=False, grace=None, now=13.0, rid="r4"
        ),
    )
    assert code == "ok" and s.get("ConfigMap", "default", "a") is None

    code, registered = st.apply(s, c.register_node(node("n1"), uid="u3", now=20.0, rid="r5"))
    assert code == "ok" and registered["metadata"]["uid"] == "u3"
    assert st.apply(s, c.heartbeat("n1", node_status=None, pods=[], now=25.0, rid="r6"))[0] == "ok"
    assert s.heartbeats["n1"] == 25.0


def test_a_generated_name_takes_the_suffix() -> None:
    s = st.State()
    obj = cm("")
    obj["metadata"] = {"generateName": "cfg-", "namespace": "default"}
    code, made = st.apply(s, c.create(obj, uid="u", now=1.0, rid="r", suffix="abcde"))
    assert code == "ok" and made["metadata"]["name"] == "cfg-abcde"


def test_a_fenced_command_fails_once_the_lease_moved() -> None:
    s = st.State()
    assert st.apply(s, c.lease("m1", 1, now=0.0, duration=3.0))[1]["holder"] == "m1"
    fenced = c.fenced(c.create(cm("a"), uid="u", now=1.0, rid="r1"), ("m1", 1))
    assert st.apply(s, fenced)[0] == "ok"
    assert st.apply(s, c.lease("m2", 2, now=2.0, duration=3.0))[1]["holder"] == "m2"
    stale = c.fenced(c.create(cm("b"), uid="u", now=3.0, rid="r2"), ("m1", 1))
    assert st.apply(s, stale)[:2] == ("err", "FAILED_PRECONDITION")
    assert s.get("ConfigMap", "default", "b") is None


def test_a_batch_applies_each_command_with_its_own_result() -> None:
    s = st.State()
    tag, results = st.apply(
        s,
        c.batch(
            [c.create(cm("a"), uid="u", now=1.0, rid="r1"), c.create(cm("a"), uid="u", now=1.0, rid="r2")]
        ),
    )
    assert tag == "batch"
    assert [r[0] for r in results] == ["ok", "err"]
    assert results[1][1] == "ALREADY_EXISTS"


async def test_an_agent_registers_only_a_node() -> None:
    """A `register` carrying another kind (a Deployment) is refused before anything is proposed."""
    import pytest

    from orchestrator import errors
    from orchestrator.store.writer import Writer

    class NoStore:
        async def propose(self, cmd: dict, timeout: float = 5.0) -> None:
            raise AssertionError("nothing may be proposed")

    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "sneaky"}}
    with pytest.raises(errors.Invalid, match="registers a Node"):
        await Writer(NoStore()).register_node(deployment)  # type: ignore[arg-type]


def test_a_reused_request_id_with_another_body_is_refused() -> None:
    s = st.State()
    first = st.apply(s, c.create(cm("a", "1"), uid="u1", now=1.0, rid="r1"))
    assert first[0] == "ok"
    # The same request again (a retry: a new uid and time, the same body) is answered as the first.
    assert st.apply(s, c.create(cm("a", "1"), uid="u2", now=2.0, rid="r1")) == first
    # The same id for another body is another request: refused, and nothing changes.
    revision = s.revision
    _, code, message = st.apply(s, c.create(cm("b", "2"), uid="u3", now=3.0, rid="r1"))
    assert code == "INVALID_ARGUMENT" and "request id 'r1' was already used by a different request" in message
    reused = c.delete(
        "ConfigMap", "default", "a", resource_version="", force=False, grace=None, now=4.0, rid="r1"
    )
    assert st.apply(s, reused)[1] == "INVALID_ARGUMENT"
    assert s.revision == revision and s.get("ConfigMap", "default", "b") is None


def test_a_renewal_records_liveness_without_a_new_revision_and_readies_a_node_that_was_not() -> None:
    s = st.State()
    st.apply(s, c.register_node(node("n1"), uid="u1", now=20.0, rid="r1"))
    st.apply(s, c.register_node(node("n2"), uid="u2", now=20.0, rid="r2"))
    revision = s.revision
    assert st.apply(s, c.renew("m1", 7, now=25.0, nodes=["n1", "n2", "gone"]))[0] == "ok"
    assert st.liveness(s) == {"n1": 25.0, "n2": 25.0}  # a node that does not exist is not recorded
    assert s.revision == revision  # liveness alone changes no object: no watch event
    st.apply(s, c.renew("m1", 7, now=24.0))  # a renewal held by a partitioned master, committed late
    assert st.liveness(s)["n1"] == 25.0

    stale = s.get("Node", "", "n2")
    assert stale is not None
    unknown = [{**cond, "status": "Unknown"} for cond in stale["status"]["conditions"]]
    st.apply(
        s, c.patch("Node", "", "n2", {"status": {"conditions": unknown}}, status=True, now=30.0, rid="r3")
    )
    revision = s.revision
    st.apply(s, c.renew("m1", 7, now=31.0))  # by id alone
    renewed = s.get("Node", "", "n2")
    assert renewed is not None
    (ready,) = [x for x in renewed["status"]["conditions"] if x["type"] == "Ready"]
    assert ready["status"] == "True" and s.revision == revision + 1
    assert st.liveness(s) == {"n1": 31.0, "n2": 31.0}


def test_a_renewal_by_id_renews_the_stored_set_and_one_naming_another_id_is_refused() -> None:
    s = st.State()
    for n in ("a", "b", "c"):
        st.apply(s, c.register_node(node(n), uid=f"u-{n}", now=10.0, rid=f"r-{n}"))
    st.apply(s, c.renew("m1", 1, now=11.0, nodes=["a", "b"]))
    st.apply(s, c.renew("m2", 5, now=12.0, nodes=["c"]))
    assert st.apply(s, c.renew("m1", 1, now=13.0)) == ("ok", None)
    assert st.liveness(s) == {"a": 13.0, "b": 13.0, "c": 12.0}

    code, message = st.apply(s, c.renew("m1", 2, now=14.0))[1:]  # an id whose full set never landed
    assert code == "FAILED_PRECONDITION" and "send its nodes" in message
    assert st.apply(s, c.renew("m3", 1, now=14.0))[1] == "FAILED_PRECONDITION"  # a holder with no set
    assert st.liveness(s) == {"a": 13.0, "b": 13.0, "c": 12.0}


def test_a_node_left_out_of_a_new_set_keeps_the_time_its_old_set_renewed_it_at() -> None:
    s = st.State()
    for n in ("a", "b"):
        st.apply(s, c.register_node(node(n), uid=f"u-{n}", now=10.0, rid=f"r-{n}"))
    st.apply(s, c.renew("m1", 1, now=20.0, nodes=["a", "b"]))
    st.apply(s, c.renew("m1", 2, now=21.0, nodes=["a"]))  # b's stream ended on m1
    assert st.liveness(s) == {"a": 21.0, "b": 20.0}  # b's time does not go back to its registration
    st.apply(s, c.renew("m1", 2, now=22.0))
    assert st.liveness(s) == {"a": 22.0, "b": 20.0}
    st.apply(s, c.renew("m2", 9, now=23.0, nodes=["b"]))  # b's agent moved to m2
    assert st.liveness(s) == {"a": 22.0, "b": 23.0}
    st.apply(s, c.delete("Node", "", "b", resource_version="", force=False, grace=None, now=24.0, rid="d"))
    assert st.liveness(s) == {"a": 22.0} and "b" not in s.unready


def test_the_unready_index_follows_each_nodes_ready_condition_and_survives_a_snapshot() -> None:
    import pickle

    s = st.State()
    st.apply(s, c.register_node(node("a"), uid="u-a", now=10.0, rid="r-a"))
    assert s.unready == {}
    a = s.get("Node", "", "a")
    assert a is not None
    unknown = [{**cond, "status": "Unknown"} for cond in a["status"]["conditions"]]
    st.apply(s, c.patch("Node", "", "a", {"status": {"conditions": unknown}}, status=True, now=11.0, rid="p"))
    assert list(s.unready) == ["a"]
    st.apply(s, c.renew("m1", 1, now=12.0, nodes=["a"]))
    restored = pickle.loads(pickle.dumps(s))
    assert restored.unready == {} and restored.renewals == s.renewals

    st.apply(s, c.patch("Node", "", "a", {"status": {"conditions": unknown}}, status=True, now=13.0, rid="q"))
    data = s.copy().__dict__  # a snapshot written before renewal sets: both are rebuilt on loading
    del data["renewals"], data["unready"]
    older = st.State.__new__(st.State)
    older.__setstate__(data)
    assert older.renewals == {} and older.unready == {"a": None}


def test_a_renewal_in_the_old_form_from_an_older_journal_still_applies() -> None:
    s = st.State()
    st.apply(s, c.register_node(node("n1"), uid="u1", now=20.0, rid="r1"))
    assert st.apply(s, {"op": "renew", "beats": {"n1": 25.0, "gone": 26.0}})[0] == "ok"
    assert st.liveness(s) == {"n1": 25.0}
