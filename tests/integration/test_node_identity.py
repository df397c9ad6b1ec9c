"""Each node acts only as itself (Kubernetes' Node authorizer and NodeRestriction): a `skiff up`
cluster gives every agent its own credential; with worker-1's, registering anything but the Node
worker-1, reporting a pod bound to worker-2, or writing through the API are refused, while worker-1's
own agent works; revoking worker-1 cuts it off alone."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import pytest

from orchestrator import errors
from skiffpb import api_pb2 as api
from skiffpb import api_pb2_grpc as api_grpc
from tests.integration.cluster import Cluster, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(module_cluster_factory: Any) -> Cluster:
    return module_cluster_factory(masters=3, workers=2, lb=False)


def node_token(c: Cluster, name: str) -> str:
    return (c.state_dir / f"{name}.token").read_text().strip()


async def connect(
    c: Cluster, token: str, first: api.AgentMessage, then: tuple[api.AgentMessage, ...] = ()
) -> grpc.StatusCode:
    """Open a gateway stream as an agent would, send `first` (and `then`), and return how it ends."""
    async with c.tls().channel(await c.follower_address()) as channel:
        call = api_grpc.NodeGatewayStub(channel).Connect(metadata=(("authorization", f"Bearer {token}"),))
        await call.write(first)
        for msg in then:
            await call.write(msg)
        try:
            async with asyncio.timeout(10):
                async for _ in call:
                    pass
        except grpc.aio.AioRpcError as e:
            return e.code()
        except TimeoutError:
            call.cancel()
            return grpc.StatusCode.OK  # still open: accepted
        return grpc.StatusCode.OK


def register(obj: dict[str, Any]) -> api.AgentMessage:
    return api.AgentMessage(register=json.dumps(obj).encode())


def node(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "status": {}}


@pytest.mark.parametrize(
    "what, obj",
    [
        ("a Deployment", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "worker-1"}}),
        ("a ConfigMap", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "worker-1"}}),
        ("the Node worker-2", node("worker-2")),
    ],
    ids=["deployment", "configmap", "other-node"],
)
async def test_a_node_registers_only_itself(cluster: Cluster, what: str, obj: dict[str, Any]) -> None:
    code = await connect(cluster, node_token(cluster, "worker-1"), register(obj))
    assert code == grpc.StatusCode.PERMISSION_DENIED, what
    async with cluster.client() as client:
        stored, _ = await client.list(obj["kind"])
        if obj["kind"] == "Node":  # worker-2's Node is still its own agent's, Ready
            assert all(ready(n) for n in stored if n["metadata"]["name"] == "worker-2")
        else:  # nothing of that kind was stored under the node's name
            assert all(o["metadata"]["name"] != "worker-1" for o in stored), stored


async def test_a_node_may_not_report_another_nodes_pod(cluster: Cluster) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "on-worker-2", "namespace": "default"},
        "spec": {"nodeName": "worker-2", "containers": [{"name": "c", "image": "k8s.gcr.io/pause"}]},
    }
    async with cluster.client() as client:
        made = await client.create(pod)
    report = api.AgentMessage(
        heartbeat=api.Heartbeat(
            seq=1,
            pods=[
                api.PodStatusUpdate(
                    namespace="default",
                    name="on-worker-2",
                    uid=made["metadata"]["uid"],
                    status=json.dumps({"phase": "Failed"}).encode(),
                )
            ],
        )
    )
    code = await connect(cluster, node_token(cluster, "worker-1"), register(node("worker-1")), (report,))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    async with cluster.client() as client:
        after = await client.get("Pod", "default", "on-worker-2")
        assert (after.get("status") or {}).get("phase") != "Failed"
        await client.delete("Pod", "default", "on-worker-2")


async def test_a_node_credential_cannot_write_through_the_api(cluster: Cluster) -> None:
    from orchestrator.client import ApiClient

    async with ApiClient(
        cluster.master_addresses, node_token(cluster, "worker-1"), tls=cluster.tls()
    ) as as_node:
        with pytest.raises(errors.PermissionDenied):
            await as_node.create(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-a-node"}, "data": {}}
            )


def ready(n: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in n["status"].get("conditions") or []
    )


async def test_revoking_one_node_cuts_off_only_that_node(cluster: Cluster) -> None:
    async with cluster.client() as client:

        async def both_ready() -> bool:
            nodes, _ = await client.list("Node")
            return sorted(n["metadata"]["name"] for n in nodes if ready(n)) == ["worker-1", "worker-2"]

        await wait_until(both_ready, "both nodes Ready (their own agents, their own credentials)", 30)
        cluster.skiff("revoke-node", "worker-1", "--state-dir", str(cluster.state_dir), check=True)

        async def worker_1_not_ready() -> bool:
            n = await client.get("Node", "", "worker-1")
            return not ready(n)

        await wait_until(worker_1_not_ready, "worker-1 NotReady after its credential was revoked", 20)
        w2 = await client.get("Node", "", "worker-2")
        assert ready(w2)
    log = cluster.log("worker-1")
    assert "UNAUTHENTICATED" in log or "revoked" in log, log[-2000:]
