"""python -m lb: flags and wiring only. Without --worker this is the supervisor (see lb/supervisor.py)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

import uvloop

from lb.balancer import POLICIES, ROUND_ROBIN
from lb.routes import parse_fixed
from orchestrator import transport


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lb", description="Skiff's load balancer (L4 proxy + ingress)")
    p.add_argument("--masters", default="", help="HOST:PORT,... of the masters (any of them)")
    p.add_argument("--token-file", default="", help="file holding the bearer token")
    p.add_argument("--address", default="127.0.0.1", help="address for nodePorts and the HTTP entry port")
    p.add_argument("--http-port", type=int, default=8080, help="Ingress HTTP entry port (0 = none)")
    p.add_argument("--workers", type=int, default=2, help="worker processes sharing the ports")
    p.add_argument("--metrics-port", type=int, default=0, help="Prometheus /metrics (summed over workers)")
    p.add_argument("--health-port", type=int, default=0, help="gRPC health service")
    p.add_argument("--balance", choices=POLICIES, default=ROUND_ROBIN)
    p.add_argument(
        "--static-routes", default="", help="JSON file of services/endpoints/ingresses (no masters)"
    )
    p.add_argument("--connect-timeout", type=float, default=2.0, help="seconds per upstream connect")
    p.add_argument("--connect-tries", type=int, default=3, help="endpoints tried per connection")
    p.add_argument("--eject-seconds", type=float, default=5.0, help="ejection after a failed connect")
    p.add_argument(
        "--drain-seconds", type=float, default=10.0, help="deadline for connections to a removed endpoint"
    )
    p.add_argument("--head-timeout", type=float, default=5.0, help="seconds to receive an HTTP request head")
    p.add_argument("--shutdown-timeout", type=float, default=5.0, help="drain deadline on SIGTERM")
    p.add_argument(
        "--fixed-service",
        action="append",
        default=[],
        metavar="NAME=PORT:HOST:PORT,...",
        help="serve PORT on --address to these endpoints whatever the cluster holds (the masters' API)",
    )
    transport.add_flags(p, serves="the health service")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not args.static_routes and not (args.masters and args.token_file):
        p.error("--masters and --token-file are required (or --static-routes)")
    for text in args.fixed_service:
        try:
            parse_fixed(text)
        except ValueError as e:
            p.error(f"--fixed-service {e}")
    args.server_tls, args.client_tls = transport.from_flags(p, args)
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    role = f"lb-worker-{args.worker_index}" if args.worker else "lb"
    logging.basicConfig(
        level=args.log_level.upper(),
        format=f"%(asctime)s %(levelname)s {role} %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.worker:
        from lb.worker import die_with_parent, run_worker

        die_with_parent()
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(run_worker(args))
    # gRPC core logs an INFO line for every fork (+exec) of a worker; keep its errors only.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    from lb.supervisor import Supervisor

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(Supervisor(args, argv).run())


if __name__ == "__main__":
    sys.exit(main())
