"""The main lb process: runs N worker processes, restarts any that dies, serves metrics and health.

Workers are fresh interpreters (`python -m lb <same flags> --worker --worker-index i`), not forks,
because forking a process with gRPC state is a known hang source. A worker that exits unexpectedly is
restarted with back-off (0.1 s doubling to 5 s, reset once it has run for 30 s); the others keep
serving meanwhile, since each listens on every port itself (SO_REUSEPORT).

Metrics: GET /metrics on --address:--metrics-port returns the sum over the live workers (each serves
its own on a private port) plus the supervisor's own gauges. Health: the standard gRPC health service
on --address:--health-port, SERVING while at least one worker is ready.

SIGTERM: health goes NOT_SERVING, every worker gets SIGTERM (each stops accepting and drains within
--shutdown-timeout), a worker still running 2 s after that is killed, then the servers stop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field

from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from lb import httpd
from lb.metrics import aggregate
from orchestrator import transport

log = logging.getLogger(__name__)

RESTART_MIN = 0.1
RESTART_MAX = 5.0
RESTART_RESET_AFTER = 30.0


@dataclass
class WorkerSlot:
    index: int
    proc: asyncio.subprocess.Process | None = None
    metrics_port: int | None = None
    restarts: int = 0
    started: float = 0.0
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class Supervisor:
    def __init__(self, args: argparse.Namespace, worker_argv: list[str]) -> None:
        self.args = args
        self.worker_argv = worker_argv
        self.slots = [WorkerSlot(i) for i in range(max(1, args.workers))]
        self.stopping = False
        self.health = HealthServicer()
        self.serving = False

    def worker_command(self, index: int) -> list[str]:
        return [sys.executable, "-m", "lb", *self.worker_argv, "--worker", "--worker-index", str(index)]

    async def _run_slot(self, slot: WorkerSlot) -> None:
        delay = RESTART_MIN
        while not self.stopping:
            slot.ready.clear()
            slot.metrics_port = None
            slot.started = time.monotonic()
            slot.proc = await asyncio.create_subprocess_exec(
                *self.worker_command(slot.index),
                stdout=asyncio.subprocess.PIPE,
                stdin=asyncio.subprocess.DEVNULL,
            )
            log.info("worker started index=%d pid=%d", slot.index, slot.proc.pid)
            assert slot.proc.stdout is not None
            async for line in slot.proc.stdout:
                text = line.decode(errors="replace").strip()
                if text.startswith("ready metrics_port="):
                    slot.metrics_port = int(text.split("=", 1)[1])
                    slot.ready.set()
                    await self._update_health()
            code = await slot.proc.wait()
            slot.ready.clear()
            slot.metrics_port = None
            await self._update_health()
            if self.stopping:
                log.info("worker exited index=%d pid=%d code=%s", slot.index, slot.proc.pid, code)
                return
            ran = time.monotonic() - slot.started
            if ran > RESTART_RESET_AFTER:
                delay = RESTART_MIN
            log.warning(
                "worker died index=%d pid=%d code=%s after=%.1fs; restarting in %.1fs",
                slot.index,
                slot.proc.pid,
                code,
                ran,
                delay,
            )
            slot.restarts += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX)

    async def _update_health(self) -> None:
        serving = not self.stopping and any(s.ready.is_set() for s in self.slots)
        if serving != self.serving:
            self.serving = serving
            status = (
                health_pb2.HealthCheckResponse.SERVING
                if serving
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            await self.health.set("", status)
            await self.health.set("skiff.lb", status)
            log.info("health serving=%s", serving)

    async def metrics(self) -> str:
        ports = [s.metrics_port for s in self.slots if s.metrics_port]
        results = await asyncio.gather(*(httpd.fetch("127.0.0.1", p) for p in ports), return_exceptions=True)
        texts = [r for r in results if isinstance(r, str)]
        ready = sum(1 for s in self.slots if s.ready.is_set())
        own = (
            "# HELP skiff_lb_workers Worker processes ready\n# TYPE skiff_lb_workers gauge\n"
            f"skiff_lb_workers {ready}\n"
            "# HELP skiff_lb_worker_restarts_total Workers restarted after dying\n"
            "# TYPE skiff_lb_worker_restarts_total counter\n"
            f"skiff_lb_worker_restarts_total {sum(s.restarts for s in self.slots)}\n"
        )
        return aggregate([*texts, own])

    def worker_pids(self) -> list[int]:
        return [s.proc.pid for s in self.slots if s.proc is not None and s.proc.returncode is None]

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        args = self.args
        await self.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.health.set("skiff.lb", health_pb2.HealthCheckResponse.NOT_SERVING)
        grpc_server = transport.server()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, grpc_server)
        health_port = transport.add_port(grpc_server, f"{args.address}:{args.health_port}", args.server_tls)
        await grpc_server.start()
        metrics_server = await httpd.serve(args.address, args.metrics_port, {"/metrics": self.metrics})
        metrics_port = metrics_server.sockets[0].getsockname()[1]
        log.info(
            "lb supervisor pid=%d workers=%d metrics_port=%d health_port=%d",
            os.getpid(),
            len(self.slots),
            metrics_port,
            health_port,
        )
        tasks = [loop.create_task(self._run_slot(s), name=f"worker-{s.index}") for s in self.slots]
        await stop.wait()
        # Ordered shutdown: report not serving, stop workers (they drain), then our own servers.
        log.info("lb supervisor stopping")
        self.stopping = True
        await self._update_health()
        for pid in self.worker_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(args.shutdown_timeout + 2.0):
                await asyncio.gather(*tasks, return_exceptions=True)
        except TimeoutError:
            for pid in self.worker_pids():
                log.warning("worker pid=%d did not stop in time; killing", pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        metrics_server.close()
        await grpc_server.stop(0.5)
        log.info("lb supervisor stopped")
        return 0
