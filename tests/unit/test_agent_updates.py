"""The agent's pure parts: the unacked-update queue, the assignment it keeps, the Node it registers,
log tails."""

from __future__ import annotations

import json

from agents.agent import Assignment, NodeSpec, UpdateQueue, build_node, parse_labels, tail
from orchestrator import model
from skiffpb import api_pb2 as api

REF = ("default", "p", "u1")
REF2 = ("default", "q", "u2")


def test_update_kept_until_acked() -> None:
    q = UpdateQueue(resend_after=3.0)
    q.put(REF, {"phase": "Running"}, False)
    sent = q.take(1, now=0.0)
    assert [u.name for u in sent] == ["p"]
    assert q.take(2, now=0.1) == []  # in flight: not resent on every heartbeat
    q.ack(2, True)
    assert len(q) == 1
    q.ack(1, True)
    assert len(q) == 0


def test_error_ack_resends() -> None:
    q = UpdateQueue()
    q.put(REF, {"phase": "Running"}, False)
    q.take(1, 0.0)
    q.ack(1, False)
    assert [u.name for u in q.take(2, 0.1)] == ["p"]


def test_newer_version_survives_ack_of_older() -> None:
    q = UpdateQueue()
    q.put(REF, {"phase": "Pending"}, False)
    q.take(1, 0.0)
    q.put(REF, {"phase": "Running"}, False)
    assert q.due(0.01)
    sent = q.take(2, 0.01)
    assert json.loads(sent[0].status)["phase"] == "Running"
    q.ack(1, True)
    assert len(q) == 1
    q.ack(2, True)
    assert len(q) == 0


def test_silent_master_resend_and_new_stream() -> None:
    q = UpdateQueue(resend_after=3.0)
    q.put(REF, None, True)
    q.put(REF2, {"phase": "Running"}, False)
    assert len(q.take(1, 0.0)) == 2
    assert q.take(2, 1.0) == []
    assert len(q.take(3, 3.5)) == 2  # no ack for too long
    q.reset()
    sent = q.take(1, 3.6)
    assert {u.name for u in sent} == {"p", "q"} and any(u.deleted for u in sent)


def test_next_resend_is_the_earliest_update_in_flight() -> None:
    q = UpdateQueue(resend_after=3.0)
    assert q.next_resend() == float("inf")
    q.put(REF, {"phase": "Running"}, False)
    assert q.next_resend() == float("inf")  # pending but never sent: due at once, not "again"
    q.take(1, now=10.0)
    q.put(REF2, {"phase": "Running"}, False)
    q.take(2, now=11.0)
    assert q.next_resend() == 13.0
    q.ack(1, True)
    assert q.next_resend() == 14.0


def _pod(uid: str, name: str, phase: str = "") -> bytes:
    return json.dumps({"metadata": {"uid": uid, "name": name}, "status": {"phase": phase}}).encode()


def test_assignment_whole_then_incremental() -> None:
    a = Assignment()
    carried = a.apply(api.PodAssignment(pods=[_pod("u1", "a"), _pod("u2", "b")]))
    assert [p["metadata"]["name"] for p in carried] == ["a", "b"]
    # an incremental one replaces what it carries, adds what is new and drops what it removes
    carried = a.apply(
        api.PodAssignment(
            pods=[_pod("u2", "b", "Running"), _pod("u3", "c")], removed=["u1"], incremental=True
        )
    )
    assert [p["metadata"]["name"] for p in carried] == ["b", "c"]
    assert [(p["metadata"]["name"], p["status"]["phase"]) for p in a.all()] == [("b", "Running"), ("c", "")]
    a.apply(api.PodAssignment(removed=["no-such-uid"], incremental=True))
    assert len(a.all()) == 2
    # a whole one (a new stream's first) forgets everything before it
    a.apply(api.PodAssignment(pods=[_pod("u9", "z")]))
    assert [p["metadata"]["name"] for p in a.all()] == ["z"]
    a.apply(api.PodAssignment())
    assert a.all() == []


def test_node_validates_against_schema() -> None:
    spec = NodeSpec(
        "w1", "127.0.60.9", "2", "4Gi", 110, parse_labels("zone=a, disk=ssd"), 4321, "uts,pid,cgroup-v1"
    )
    node = model.validate(build_node(spec))
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "w1"
    assert node["metadata"]["labels"]["zone"] == "a"
    st = node["status"]
    assert st["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 4321
    assert {"type": "InternalIP", "address": "127.0.60.9"} in st["addresses"]
    assert st["capacity"] == {"cpu": "2", "memory": "4Gi", "pods": "110"}
    assert st["isolation"] == "uts,pid,cgroup-v1"


def test_tail() -> None:
    data = b"a\nb\nc\n"
    assert tail(data, -1) == data
    assert tail(data, 2) == b"b\nc\n"
    assert tail(data, 0) == b""
    assert tail(b"a\nb", 1) == b"b"


def test_a_stream_refused_at_once_ends_with_the_masters_status() -> None:
    """A master that refuses the stream at once fails the session's reader with its status and its
    writer with "RPC already finished": the session reports the status (and fails over), not a group
    of both, which escaped its loop and stopped a hollow agent process (2026-12-04)."""
    import asyncio

    import grpc

    from agents.agent import _one_failure, _Silent

    refused = grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), details="the leader"
    )
    both = ExceptionGroup("", [grpc.aio.UsageError("RPC already finished."), refused])
    assert _one_failure(both) is refused
    silent = _Silent("no message for 30s")
    assert _one_failure(ExceptionGroup("", [ExceptionGroup("", [silent])])) is silent
    closed = _one_failure(ExceptionGroup("", [asyncio.InvalidStateError("done")]))
    assert isinstance(closed, _Silent) and "done" in str(closed)
