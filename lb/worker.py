"""One worker process: its own uvloop, route source (masters or a static file), proxy and metrics.

Several workers share every listening port through SO_REUSEPORT; the supervisor starts them as fresh
interpreters (`python -m lb --worker ...`). A worker tells its supervisor it is ready by printing one
line on stdout, `ready metrics_port=N`, once its first routing table is applied; N is the private
(127.0.0.1) port of its own /metrics, which the supervisor scrapes and sums.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import os
import random
import signal
import sys
from pathlib import Path

from lb import httpd
from lb.proxy import Proxy
from lb.routes import parse_fixed
from lb.watch import RouteWatcher, StaticRoutes

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Get SIGTERM when the supervisor dies (Linux), so no worker outlives it."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:
        sys.exit(0)


async def run_worker(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    proxy = Proxy(
        policy=args.balance,
        rng=random.Random(),
        connect_timeout=args.connect_timeout,
        connect_tries=args.connect_tries,
        eject_seconds=args.eject_seconds,
        drain_seconds=args.drain_seconds,
        head_timeout=args.head_timeout,
    )

    async def metrics() -> str:
        return proxy.metrics_text()

    metrics_server = await httpd.serve("127.0.0.1", 0, {"/metrics": metrics})
    metrics_port = metrics_server.sockets[0].getsockname()[1]
    http_port = args.http_port or None
    fixed = tuple(parse_fixed(f) for f in args.fixed_service)
    client = None
    source: RouteWatcher | StaticRoutes
    if args.static_routes:
        source = StaticRoutes(
            args.static_routes, proxy.apply_table, address=args.address, http_port=http_port, fixed=fixed
        )
    else:
        from orchestrator.client import ApiClient

        token = Path(args.token_file).read_text().strip()  # noqa: ASYNC240 - once, at start
        client = ApiClient([m for m in args.masters.split(",") if m], token, tls=args.client_tls)
        source = RouteWatcher(
            client, proxy.apply_table, address=args.address, http_port=http_port, fixed=fixed
        )

    async def report_ready() -> None:
        await source.synced.wait()
        print(f"ready metrics_port={metrics_port}", flush=True)
        log.info(
            "worker ready index=%d pid=%d listeners=%d", args.worker_index, os.getpid(), len(proxy.servers)
        )

    async def retry_listeners() -> None:
        while True:
            await asyncio.sleep(1.0)
            if proxy.listen_errors:
                await proxy.sync_listeners()

    code = 0
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(source.run(), name="routes"),
                tg.create_task(report_ready(), name="ready"),
                tg.create_task(retry_listeners(), name="listen-retry"),
            ]
            await stop.wait()
            log.info("worker stopping index=%d", args.worker_index)
            for t in tasks:
                t.cancel()
    except* Exception:
        log.exception("worker failed")
        code = 1
    # Ordered shutdown: stop accepting, drain open connections within the deadline, then the rest.
    await proxy.close(args.shutdown_timeout)
    metrics_server.close()
    if client is not None:
        await client.close()
    log.info("worker stopped index=%d", args.worker_index)
    return code
