"""A pod's logs, relayed from the agent of the node that runs it; shared by the gRPC and REST APIs."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import grpc

from orchestrator import errors, model
from orchestrator.auth import Authenticator
from orchestrator.client import CHANNEL_OPTIONS, to_error
from orchestrator.store.raft import Store
from orchestrator.transport import ClientTLS
from skiffpb import api_pb2 as api
from skiffpb import api_pb2_grpc as api_grpc

Obj = dict[str, Any]


def agent_address(node: Obj | None) -> str:
    """host:port of a Node's agent (its kubelet endpoint), or "" when it has none."""
    if node is None:
        return ""
    status = node.get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    address = next((a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), "")
    return f"{address}:{port}" if address and port else ""


async def pod_logs(
    store: Store, auth: Authenticator, tls: ClientTLS, request: api.LogsRequest
) -> AsyncGenerator[api.LogChunk, None]:
    """The chunks of a container's log, as its agent serves them (following when `request.follow`).

    errors.NotFound for a missing pod, Precondition for one not yet on a node, Unavailable when its
    node has no agent address; the agent's own errors come through as Skiff errors. The agent is
    dialled with `tls` (its certificate names its address) and the node's own token."""
    namespace = request.namespace or model.DEFAULT_NAMESPACE
    pod = store.get("Pod", namespace, request.pod)
    if pod is None:
        raise errors.NotFound(f'pods "{request.pod}" not found')
    node_name = pod.get("spec", {}).get("nodeName")
    if not node_name:
        raise errors.Precondition(f'pod "{request.pod}" is not scheduled to a node yet')
    address = agent_address(store.get("Node", "", node_name))
    if not address:
        raise errors.Unavailable(f'node "{node_name}" has no agent address')
    token = auth.token_for_node(node_name)
    async with tls.channel(address, CHANNEL_OPTIONS) as channel:
        call = api_grpc.AgentStub(channel).Logs(request, metadata=(("authorization", f"Bearer {token}"),))
        try:
            async for chunk in call:
                yield chunk
        except grpc.aio.AioRpcError as e:
            reason = tls.explain(e.details() or "")
            if reason is not None:
                raise errors.Unavailable(f'node "{node_name}": {reason} ({address})') from None
            raise to_error(e) from None
