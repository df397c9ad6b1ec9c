"""ApiClient against a master that has no Write stream (an older version): it falls back to unary writes."""

from __future__ import annotations

import json

import grpc
import pytest

from orchestrator.client import ApiClient
from orchestrator.transport import ClientTLS
from skiffpb import api_pb2 as api
from skiffpb import api_pb2_grpc as api_grpc

pytestmark = pytest.mark.timeout(30)


class UnaryOnly(api_grpc.ApiServicer):
    """Create only; Write is the generated base's UNIMPLEMENTED."""

    def __init__(self) -> None:
        self.created: list[str] = []

    async def Create(self, request: api.WriteRequest, context: grpc.aio.ServicerContext) -> api.ObjectReply:
        self.created.append(request.request_id)
        return api.ObjectReply(object=request.object)


async def test_client_falls_back_to_unary_writes() -> None:
    servicer = UnaryOnly()  # type: ignore[abstract]  # on purpose: a master without the Write stream
    server = grpc.aio.server()
    api_grpc.add_ApiServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.50.61:0")
    await server.start()
    client = ApiClient([f"127.0.50.61:{port}"], "token", tls=ClientTLS.insecure())  # a plaintext test server
    try:
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}
        assert await client.create(obj, request_id="rid-1") == obj
        assert client.pipelined is False
        assert await client.create(obj, request_id="rid-2") == json.loads(json.dumps(obj))
        assert servicer.created == ["rid-1", "rid-2"]
    finally:
        await client.close()
        await server.stop(None)
