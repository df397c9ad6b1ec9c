"""gRPC's own cost of TLS on this machine: an echo server and 32 clients, one message in flight each,
on the same bidirectional-stream shape as the API's Write stream, TLS beside plaintext in the same run.
No Skiff code runs in the server, so the ratio is what TLS costs gRPC alone: the floor under the API
bench's TLS figure.

    python -m bench.grpc_echo                    # both modes, twice, and the ratio
    python -m bench.grpc_echo serve|load tls|plain ADDR PKI_DIR   (the two halves, one process each)
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import uvloop

from orchestrator import certs
from skiffpb import api_pb2 as api
from skiffpb import api_pb2_grpc as api_grpc
from tests.integration.masters import free_port

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 32


async def _echo(calls: AsyncIterator[api.WriteCall], context: object) -> AsyncIterator[api.WriteResult]:
    async for call in calls:
        yield api.WriteResult(request_id=call.request.request_id, object=call.request.object)


_HANDLER = grpc.method_handlers_generic_handler(
    "skiff.v1.Api",
    {
        "Write": grpc.stream_stream_rpc_method_handler(
            _echo,
            request_deserializer=api.WriteCall.FromString,
            response_serializer=api.WriteResult.SerializeToString,
        )
    },
)


async def serve(address: str, tls: bool, pki: Path) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_HANDLER,))
    if tls:
        key, cert = (pki / "echo.key").read_bytes(), (pki / "echo.crt").read_bytes()
        server.add_secure_port(address, grpc.ssl_server_credentials([(key, cert)]))
    else:
        server.add_insecure_port(address)
    await server.start()
    await server.wait_for_termination()


async def load(address: str, tls: bool, pki: Path, seconds: float) -> float:
    creds = grpc.ssl_channel_credentials((pki / "ca.crt").read_bytes()) if tls else None
    channels = [
        grpc.aio.secure_channel(address, creds) if creds else grpc.aio.insecure_channel(address)
        for _ in range(CLIENTS)
    ]
    message = api.WriteCall(method="Create", request=api.WriteRequest(request_id="r", object=b"x" * 300))
    answered = 0
    started = asyncio.Event()
    deadline = [0.0]

    async def client(channel: grpc.aio.Channel) -> None:
        nonlocal answered
        call = api_grpc.ApiStub(channel).Write()
        await call.write(message)  # connect and warm up before the clock starts
        await call.read()
        await started.wait()
        while time.perf_counter() < deadline[0]:
            await call.write(message)
            await call.read()
            answered += 1
        await call.done_writing()

    tasks = [asyncio.create_task(client(c)) for c in channels]
    await asyncio.sleep(1.0)
    t0 = time.perf_counter()
    deadline[0] = t0 + seconds
    started.set()
    await asyncio.gather(*tasks)
    rate = answered / (time.perf_counter() - t0)
    for c in channels:
        await c.close()
    return rate


def pair(mode: str, pki: Path, seconds: float) -> float:
    address = f"127.0.0.1:{free_port('127.0.0.1')}"
    cmd = [sys.executable, "-m", "bench.grpc_echo"]
    server = subprocess.Popen([*cmd, "serve", mode, address, str(pki)], cwd=ROOT, start_new_session=True)
    try:
        time.sleep(1.0)
        out = subprocess.run(
            [*cmd, "load", mode, address, str(pki), str(seconds)],
            cwd=ROOT, capture_output=True, text=True, timeout=seconds + 60, check=True,
        )  # fmt: skip
        return float(out.stdout.strip())
    finally:
        server.kill()
        server.wait()


def run(seconds: float = 5.0) -> dict:
    with tempfile.TemporaryDirectory() as d:
        pki = Path(d)
        certs.ensure_cluster_pki(pki, names={"echo": ["127.0.0.1"]}, now=datetime.now(UTC))
        rates: dict[str, list[float]] = {"tls": [], "plain": []}
        for mode in ("tls", "plain", "plain", "tls"):  # pairs cancel a linear drift of the machine
            rates[mode].append(pair(mode, pki, seconds))
    return {
        "grpc_echo_tls_msgs_per_s_runs": rates["tls"],
        "grpc_echo_plain_msgs_per_s_runs": rates["plain"],
        "grpc_echo_tls_over_plain_ratio": sum(rates["tls"]) / sum(rates["plain"]),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("serve", "load"):
        role, mode, address, pki = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
        if role == "serve":
            uvloop.run(serve(address, mode == "tls", pki))
        else:
            print(uvloop.run(load(address, mode == "tls", pki, float(sys.argv[5]))))
        return
    print(json.dumps(run(), indent=2))


if __name__ == "__main__":
    main()
