"""Which renewal set the node gateway's next renewal names (gateway.RenewalSet)."""

from __future__ import annotations

from orchestrator.api.gateway import RenewalSet
from orchestrator.store import commands as c
from orchestrator.store import state as st


def test_a_set_is_sent_in_full_until_it_is_stored_then_by_id_alone() -> None:
    sets = RenewalSet()
    ab = frozenset({"b", "a"})
    first, nodes = sets.next(ab)
    assert nodes == ["a", "b"]
    assert sets.next(ab) == (first, ["a", "b"])  # resent, not yet stored: the same id
    sets.stored(first, ab)
    assert sets.next(ab) == (first, None)

    changed, nodes = sets.next(frozenset({"a"}))
    assert nodes == ["a"] and changed != first


def test_a_set_that_changes_back_while_the_change_commits_is_sent_in_full() -> None:
    """The set goes S1 -> S2 -> S1 within one commit: the store may end up holding S2 when the
    return lands, so the return names its nodes, and it is not refused."""
    s = st.State()
    for n in ("a", "b"):
        st.apply(s, c.register_node({"kind": "Node", "metadata": {"name": n}}, uid=n, now=0.0, rid=n))
    sets = RenewalSet()
    s1, s2 = frozenset({"a"}), frozenset({"a", "b"})
    first, nodes = sets.next(s1)
    st.apply(s, c.renew("m1", first, now=1.0, nodes=nodes))
    sets.stored(first, s1)
    to_s2 = sets.next(s2)  # proposed, still committing
    back = sets.next(s1)
    assert back[1] == ["a"]
    st.apply(s, c.renew("m1", to_s2[0], now=2.0, nodes=to_s2[1]))  # they commit in log order
    assert st.apply(s, c.renew("m1", back[0], now=2.5, nodes=back[1])) == ("ok", None)


def test_a_refused_id_is_sent_in_full_again_and_a_stale_refusal_is_ignored() -> None:
    sets = RenewalSet()
    ab = frozenset({"a", "b"})
    set_id, _ = sets.next(ab)
    sets.stored(set_id, ab)
    sets.refused(set_id + 1)  # a refusal of some older set: the stored one still holds
    assert sets.next(ab) == (set_id, None)
    sets.refused(set_id)
    assert sets.next(ab) == (set_id, ["a", "b"])


def test_the_ids_the_gateway_sends_keep_a_store_renewing_through_set_changes() -> None:
    """The gateway's choices applied to a store, as Raft would, including a full set that is lost."""
    s = st.State()
    for n in ("a", "b", "c"):
        st.apply(s, c.register_node({"kind": "Node", "metadata": {"name": n}}, uid=n, now=0.0, rid=n))
    sets = RenewalSet()
    now = 1.0

    def renew(names: set[str], lost: bool = False) -> None:
        nonlocal now
        now += 1.0
        set_id, nodes = sets.next(frozenset(names))
        if lost:
            return
        result = st.apply(s, c.renew("m1", set_id, now=now, nodes=nodes))
        if result[0] == "ok":
            sets.stored(set_id, frozenset(names))
        elif result[1] == "FAILED_PRECONDITION":
            sets.refused(set_id)

    renew({"a", "b"})
    renew({"a", "b"})
    assert st.liveness(s) == {"a": 3.0, "b": 3.0, "c": 0.0}
    renew({"a", "b", "c"}, lost=True)
    renew({"a", "b", "c"})
    assert st.liveness(s) == {"a": 5.0, "b": 5.0, "c": 5.0}
    sets.stored(12345, frozenset({"a"}))  # the gateway believes a set the store never got
    renew({"a"})
    assert sets.next(frozenset({"a"}))[1] == ["a"]  # refused, so sent in full next
    renew({"a"})
    renew({"a"})
    assert st.liveness(s) == {"a": 8.0, "b": 5.0, "c": 5.0}
