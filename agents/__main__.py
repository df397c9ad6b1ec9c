"""`python -m agents`: the worker agent (flags and wiring only).

    python -m agents --name worker-1 --address 127.0.2.1 --masters H:P,H:P --token-file F --state-dir D
        (--tls-cert-file F --tls-key-file F --ca-file F | --insecure) [--port 0] [--cpu 2] [--memory 4Gi] [--max-pods 110] [--labels k=v,...] [--heartbeat 10]
        [--hollow N] [--tokens-file F] [--catalog F] [--no-isolation] [--log-level INFO]
    python -m agents cleanup --state-dir D [--grace 10]

Stopping the agent (SIGTERM) leaves its containers running, like kubelet; a restarted agent adopts them.
`cleanup` stops every container recorded in a state dir.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from agents import images
from agents.agent import (
    HEARTBEAT,
    AgentServicer,
    HollowRunner,
    NodeSession,
    NodeSpec,
    Tokens,
    machine_capacity,
    parse_labels,
)
from agents.lifecycle import BackoffConfig
from agents.runtime import ContainerRuntime, RuntimeConfig, detect_isolation, stop_state_dir
from orchestrator import transport
from skiffpb import api_pb2_grpc as api_grpc

log = logging.getLogger("agents")


def parse_args(argv: list[str]) -> argparse.Namespace:
    if argv[:1] == ["cleanup"]:
        p = argparse.ArgumentParser(
            prog="python -m agents cleanup", description="stop every container of a state dir"
        )
        p.add_argument("cleanup", choices=["cleanup"])
        p.add_argument("--state-dir", required=True)
        p.add_argument("--grace", type=float, default=10.0)
        p.add_argument("--log-level", default="INFO")
        return p.parse_args(argv)
    p = argparse.ArgumentParser(prog="python -m agents", description="Skiff worker agent")
    p.add_argument("--name", required=True, help="node name (the prefix <name>-0.. with --hollow)")
    p.add_argument("--address", required=True, help="the node's address (containers' ports bind here)")
    p.add_argument("--masters", required=True, help="HOST:PORT,... of the masters' APIs")
    p.add_argument("--token-file", required=True, help="file holding this node's bearer token")
    p.add_argument("--state-dir", required=True)
    p.add_argument("--port", type=int, default=0, help="Agent gRPC API port (0 = any free)")
    p.add_argument("--cpu", default="", help="cpu capacity (default: this machine's)")
    p.add_argument("--memory", default="", help="memory capacity (default: this machine's)")
    p.add_argument("--max-pods", type=int, default=110)
    p.add_argument("--labels", default="", help="k=v,k2=v2")
    p.add_argument(
        "--heartbeat",
        type=float,
        default=HEARTBEAT,
        help="seconds between heartbeats when nothing changed (liveness is the open stream)",
    )
    p.add_argument("--hollow", type=int, default=0, help="serve N fake nodes that pretend to run pods")
    p.add_argument("--tokens-file", default="", help="also accept every token of this JSON file (logs)")
    p.add_argument("--catalog", default="", help="image catalog (default: agents/images.json)")
    p.add_argument("--no-isolation", action="store_true", help="plain processes: no namespaces/cgroups")
    p.add_argument("--backoff-base", type=float, default=1.0)
    p.add_argument("--backoff-cap", type=float, default=60.0)
    p.add_argument("--backoff-reset", type=float, default=600.0)
    p.add_argument(
        "--termination-drain",
        type=float,
        default=0.5,
        help="seconds between a pod's deletion and its containers' SIGTERM (endpoints drain first)",
    )
    transport.add_flags(p, serves="the agent's log server")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    args.server_tls, args.client_tls = transport.from_flags(p, args)
    return args


async def serve(args: argparse.Namespace, stop: asyncio.Event) -> None:
    token = args.token
    masters = [m.strip() for m in args.masters.split(",") if m.strip()]
    cpu, memory = machine_capacity()
    server = transport.server()
    port = transport.add_port(server, f"{args.address}:{args.port}", args.server_tls)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    tokens = Tokens.load(token, args.tokens_file or None)
    labels = parse_labels(args.labels)

    def spec(name: str, isolation: str) -> NodeSpec:
        return NodeSpec(
            name=name,
            address=args.address,
            cpu=args.cpu or cpu,
            memory=args.memory or memory,
            max_pods=args.max_pods,
            labels=labels,
            agent_port=port,
            isolation=isolation,
        )

    async with asyncio.TaskGroup() as tg:
        tasks = []
        channels: dict[str, grpc.aio.Channel] = {}  # the hollow nodes' one channel per master
        if args.hollow:
            for i in range(args.hollow):
                session = NodeSession(
                    spec(f"{args.name}-{i}", "hollow"),
                    masters,
                    token,
                    tls=args.client_tls,
                    heartbeat=args.heartbeat,
                    channels=channels,
                    first=i,
                )
                session.runner = HollowRunner(session, args.address)
                tasks.append(tg.create_task(session.run()))
            api_grpc.add_AgentServicer_to_server(AgentServicer(_NoLogs(), tokens), server)
        else:
            iso = detect_isolation(not args.no_isolation)
            session = NodeSession(
                spec(args.name, iso.describe()), masters, token, tls=args.client_tls, heartbeat=args.heartbeat
            )
            cfg = RuntimeConfig(
                state_dir=Path(args.state_dir),
                node_name=args.name,
                address=args.address,
                catalog=images.load_catalog(args.catalog or None),
                isolation=iso,
                backoff=BackoffConfig(args.backoff_base, args.backoff_cap, args.backoff_reset),
                termination_drain=args.termination_drain,
            )
            runtime = ContainerRuntime(cfg, session.report)
            session.runner = runtime
            adopted = runtime.adopt()
            api_grpc.add_AgentServicer_to_server(AgentServicer(runtime, tokens), server)
            tasks.append(tg.create_task(runtime.run()))
            tasks.append(tg.create_task(session.run()))
            log.info("isolation=%s adopted=%d", iso.describe(), adopted)
        await server.start()
        await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "agent serving name=%s address=%s port=%d masters=%s nodes=%d",
            args.name,
            args.address,
            port,
            ",".join(masters),
            max(1, args.hollow),
        )
        await stop.wait()
        log.info("shutting down name=%s (containers keep running)", args.name)
        await health_servicer.enter_graceful_shutdown()
        await server.stop(grace=1.0)
        for t in tasks:
            t.cancel()
    for ch in channels.values():
        await ch.close(grace=None)
    log.info("stopped name=%s", args.name)


class _NoLogs:
    def log_files(
        self, namespace: str, pod: str, container: str, previous: bool
    ) -> tuple[list[Path], Callable[[], bool]]:
        raise ValueError("hollow node: its pods run no processes and keep no logs")


async def amain(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = [0]

    def on_signal() -> None:
        signals[0] += 1
        if signals[0] > 1:
            log.warning("second signal: exiting now")
            sys.exit(1)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    await serve(args, stop)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if getattr(args, "cleanup", None):
        n = stop_state_dir(Path(args.state_dir), args.grace)
        log.info("cleanup state_dir=%s stopped=%d", args.state_dir, n)
        return
    args.token = Path(args.token_file).read_text().strip()
    import uvloop

    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(amain(args))


if __name__ == "__main__":
    main()
