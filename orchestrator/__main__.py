"""python -m orchestrator: one master (API server + agent gateway + replicated store + controllers)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import sys
from pathlib import Path

import uvloop

from orchestrator import transport
from orchestrator.master import Master, MasterOptions
from orchestrator.store.admission import Limits
from orchestrator.store.raft import RaftTiming

log = logging.getLogger("orchestrator")


def is_loopback(host: str) -> bool:
    """Whether `host` (an IP or "localhost") can be reached only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def read_secret(path: str) -> str | None:
    """The Raft secret from its file (never argv or the environment, where `ps` and /proc show it)."""
    if not path:
        return None
    secret = Path(path).read_text().strip()
    if not secret:
        raise SystemExit(f"orchestrator: --raft-secret-file {path} is empty")
    return secret


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m orchestrator", description="Run one Skiff master.")
    p.add_argument("--name", required=True, help="this master's name, e.g. m1")
    p.add_argument("--api", required=True, help="host:port of the gRPC API (port 0 = any free port)")
    p.add_argument("--raft", required=True, help="host:port of this master's Raft endpoint")
    p.add_argument("--peers", default="", help="comma-separated Raft addresses of the other masters")
    p.add_argument("--data-dir", required=True, help="journal and snapshot directory")
    p.add_argument("--tokens-file", required=True, help='JSON {"token": "admin|viewer|node"}')
    p.add_argument(
        "--raft-secret-file",
        default="",
        help="file holding the cluster's Raft secret (authenticates and encrypts Raft; required off loopback)",
    )
    p.add_argument("--node-grace", type=float, default=3.0, help="seconds without heartbeat -> NotReady")
    p.add_argument("--pod-eviction-timeout", type=float, default=2.0, help="NotReady seconds -> evict pods")
    p.add_argument("--lease-duration", type=float, default=3.0, help="controllers' leader lease (s)")
    t = RaftTiming()
    p.add_argument("--raft-append-period", type=float, default=t.append_entries_period)
    p.add_argument("--raft-tick", type=float, default=t.auto_tick_period)
    p.add_argument("--raft-min-timeout", type=float, default=t.min_timeout)
    p.add_argument("--raft-max-timeout", type=float, default=t.max_timeout)
    p.add_argument("--raft-connection-timeout", type=float, default=t.connection_timeout)
    p.add_argument(
        "--kube-api", default="", help="host:port of the Kubernetes REST API (HTTPS); none if unset"
    )
    transport.add_flags(p, serves="the gRPC API and the Kubernetes API")
    p.add_argument("--audit-log", default="", help="append one line per write to this file (rotated by size)")
    p.add_argument("--ingress-address", default="", help="host:port where the balancer serves ingresses")
    p.add_argument(
        "--kube-api-insecure", action="store_true", help="serve the Kubernetes API over plain HTTP"
    )
    lim = Limits()
    p.add_argument(
        "--max-inflight-writes", type=int, default=lim.limit, help="API writes proposed at once (more queue)"
    )
    p.add_argument(
        "--max-queued-writes",
        type=int,
        default=lim.queue,
        help="API writes waiting; beyond: RESOURCE_EXHAUSTED",
    )
    p.add_argument(
        "--max-streams-per-credential",
        type=int,
        default=lim.max_streams,
        help="watches, write and log streams",
    )
    p.add_argument("--no-controllers", action="store_true", help="serve the API only (benchmarks)")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    if not args.raft_secret_file and not is_loopback(args.raft.rpartition(":")[0]):
        p.error(
            f"--raft {args.raft} is not a loopback address: --raft-secret-file is required (Raft speaks pickle)"
        )
    if args.kube_api and not args.kube_api_insecure and not (args.tls_cert_file and args.tls_key_file):
        p.error("--kube-api needs --tls-cert-file and --tls-key-file (or --kube-api-insecure)")
    args.grpc_tls, args.agent_tls = transport.from_flags(p, args)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("pysyncobj").setLevel(logging.WARNING)
    timing = RaftTiming(
        append_entries_period=args.raft_append_period,
        auto_tick_period=args.raft_tick,
        min_timeout=args.raft_min_timeout,
        max_timeout=args.raft_max_timeout,
        connection_timeout=args.raft_connection_timeout,
    )
    options = MasterOptions(
        name=args.name,
        api_address=args.api,
        raft_address=args.raft,
        peers=[p for p in args.peers.split(",") if p],
        data_dir=args.data_dir,
        tokens_file=args.tokens_file,
        raft_password=read_secret(args.raft_secret_file),
        timing=timing,
        node_grace=args.node_grace,
        pod_eviction_timeout=args.pod_eviction_timeout,
        lease_duration=args.lease_duration,
        controllers=not args.no_controllers,
        grpc_tls=args.grpc_tls,
        agent_tls=args.agent_tls,
        kube_api=args.kube_api,
        tls_cert_file=args.tls_cert_file,
        tls_key_file=args.tls_key_file,
        kube_api_insecure=args.kube_api_insecure,
        ingress_address=args.ingress_address,
        audit_log=args.audit_log,
        limits=Limits(
            limit=args.max_inflight_writes,
            queue=args.max_queued_writes,
            max_streams=args.max_streams_per_credential,
        ),
    )
    # PySyncObj starts its thread here, on the main thread, before the loop exists.
    master = Master(options)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        loop = runner.get_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        runner.run(master.serve(stop))


if __name__ == "__main__":
    main()
