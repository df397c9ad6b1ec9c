"""A node's liveness is its open stream (orchestrator.api.gateway): idle agents send a heartbeat only
every 10 s, yet their nodes stay Ready, while a hung agent (SIGSTOP, its connection still open) and a
killed one go NotReady within a few seconds and a resumed one is Ready again. And a node's
assignments after the first carry only what changed."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import Any

import pytest

from skiffpb import api_pb2 as api
from skiffpb import api_pb2_grpc as api_grpc
from tests.integration.cluster import Cluster, wait_until

pytestmark = pytest.mark.integration
GRACE = 3.0  # skiff up's --node-grace


@pytest.fixture
def cluster(cluster_factory: Any) -> Cluster:
    return cluster_factory(masters=3, workers=2, lb=False)


def ready(n: dict[str, Any]) -> str:
    return next(
        (c.get("status", "") for c in n["status"].get("conditions") or [] if c.get("type") == "Ready"), ""
    )


async def readiness(cluster: Cluster) -> dict[str, str]:
    async with cluster.client() as client:
        nodes, _ = await client.list("Node")
    return {n["metadata"]["name"]: ready(n) for n in nodes}


async def all_ready(cluster: Cluster) -> bool:
    return set((await readiness(cluster)).values()) == {"True"}


async def not_ready(cluster: Cluster, node: str) -> bool:
    return (await readiness(cluster))[node] != "True"


async def test_idle_nodes_stay_ready_between_heartbeats(cluster: Cluster) -> None:
    await wait_until(lambda: all_ready(cluster), "both nodes Ready", 30)
    # 15 s is five node graces and longer than the agents' 10 s heartbeat interval: a node judged by
    # its heartbeat messages alone would have gone NotReady in that gap.
    end = time.monotonic() + 15
    while time.monotonic() < end:
        assert set((await readiness(cluster)).values()) == {"True"}, await readiness(cluster)
        await asyncio.sleep(0.25)


async def test_a_hung_agent_goes_not_ready_and_back(cluster: Cluster) -> None:
    await wait_until(lambda: all_ready(cluster), "both nodes Ready", 30)
    cluster.kill("worker-1", signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        # The master's keepalive ends the hung agent's connection within two 1 s pings; the node
        # grace runs from the last renewal (every 0.5 s). CI's load gets a few seconds on top.
        await wait_until(
            lambda: not_ready(cluster, "worker-1"), "the hung agent's node NotReady", GRACE + 2.5 + 4
        )
        hung_for = time.monotonic() - t0
        assert (await readiness(cluster))["worker-2"] == "True"
    finally:
        cluster.kill("worker-1", signal.SIGCONT)
    await wait_until(lambda: all_ready(cluster), "the resumed agent's node Ready again", 20)
    print(f"a hung agent's node went NotReady after {hung_for:.1f} s")


async def test_a_killed_agent_goes_not_ready_within_the_grace(cluster: Cluster) -> None:
    await wait_until(lambda: all_ready(cluster), "both nodes Ready", 30)
    cluster.kill("worker-2", signal.SIGKILL)
    t0 = time.monotonic()
    # Its connection closes with the process: renewals stop at once, and the grace runs.
    await wait_until(
        lambda: not_ready(cluster, "worker-2"), "the killed agent's node NotReady", GRACE + 0.5 + 3
    )
    print(f"a killed agent's node went NotReady after {time.monotonic() - t0:.1f} s")
    assert (await readiness(cluster))["worker-1"] == "True"


def pod(name: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": "k8s.gcr.io/pause"}],
        },
    }


async def test_assignments_after_the_first_carry_only_what_changed(cluster: Cluster) -> None:
    token = (cluster.state_dir / "node.token").read_text().strip()  # the shared (hollow) node credential
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "probe-node"}, "status": {}}
    follower = await cluster.follower_address()
    async with cluster.tls().channel(follower) as channel, cluster.client() as client:
        call = api_grpc.NodeGatewayStub(channel).Connect(metadata=(("authorization", f"Bearer {token}"),))
        await call.write(api.AgentMessage(register=json.dumps(node).encode()))

        async def next_assignment() -> api.PodAssignment:
            async with asyncio.timeout(10):
                while True:
                    msg = await call.read()
                    assert isinstance(msg, api.MasterMessage), msg  # not EOF
                    if msg.HasField("assignment"):
                        return msg.assignment

        try:
            first = await next_assignment()
            assert not first.incremental and list(first.pods) == []
            a = await client.create(pod("inc-a", "probe-node"))
            got = await next_assignment()
            assert got.incremental and [json.loads(p)["metadata"]["name"] for p in got.pods] == ["inc-a"]
            await client.create(pod("inc-b", "probe-node"))
            got = await next_assignment()
            # inc-a is not sent again: only the pod that arrived
            assert got.incremental and [json.loads(p)["metadata"]["name"] for p in got.pods] == ["inc-b"]
            await client.delete("Pod", "default", "inc-a")
            got = await next_assignment()  # the deletion is inc-a's alone, until the node confirms it
            gone = [json.loads(p) for p in got.pods]
            assert got.incremental and [p["metadata"]["name"] for p in gone] == ["inc-a"]
            assert gone[0]["metadata"].get("deletionTimestamp")
            uid = a["metadata"]["uid"]
            update = api.PodStatusUpdate(namespace="default", name="inc-a", uid=uid, deleted=True)
            await call.write(api.AgentMessage(heartbeat=api.Heartbeat(seq=1, pods=[update])))
            got = await next_assignment()
            assert got.incremental and list(got.pods) == [] and list(got.removed) == [uid]
        finally:
            call.cancel()


async def streams_by_master(cluster: Cluster) -> dict[str, tuple[str, int]]:
    """master name -> (its Raft role, how many agent streams it holds), for the masters answering."""
    out = {}
    async with cluster.client() as client:
        for address in cluster.master_addresses:
            try:
                st = await client.status(address, timeout=1.0)
            except Exception:  # noqa: BLE001 - a killed master does not answer
                continue
            out[st.name] = (st.role, st.partner_nodes_connected)
    return out


async def test_the_leader_holds_no_agent_streams_and_a_new_leader_sheds_its_own(cluster: Cluster) -> None:
    """The Raft leader runs the controllers; the followers serve the agents (orchestrator.api.gateway).
    Made to happen: every agent on follower B (follower A stopped), then the leader killed and A
    started again; B, whose log is newer than A's, is elected, ends the streams it held, and the
    agents move to A."""
    await wait_until(lambda: all_ready(cluster), "both nodes Ready", 30)

    async def leader_holds_none() -> dict[str, tuple[str, int]]:
        seen = await streams_by_master(cluster)
        leaders = [n for n, (role, _) in seen.items() if role == "leader"]
        return seen if len(leaders) == 1 and seen[leaders[0]][1] == 0 else {}

    seen = await wait_until(leader_holds_none, "no agent stream on the leader", 20)
    (leader,) = [n for n, (role, _) in seen.items() if role == "leader"]
    a, b = sorted(n for n in seen if n != leader)
    cluster.stop(a)

    async def streams_on(name: str, count: int) -> bool:
        return (await streams_by_master(cluster)).get(name, ("", -1))[1] == count

    await wait_until(lambda: streams_on(b, 2), f"both agents on {b}", 20)
    cluster.kill(leader)
    await asyncio.sleep(1.0)
    cluster.start(a)

    async def moved() -> dict[str, tuple[str, int]]:
        seen = await streams_by_master(cluster)
        return seen if seen.get(b) == ("leader", 0) and seen.get(a, ("", 0))[1] == 2 else {}

    await wait_until(moved, f"{b} leading with no stream, {a} holding both", 40)
    await wait_until(lambda: all_ready(cluster), "both nodes Ready after the move", 20)
