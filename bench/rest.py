"""Kubernetes REST API benchmark, beside the gRPC API in the same run and on the same masters.

Three masters (no controllers) serve both APIs over TLS. Measured:
- one client creating ConfigMaps one after another: p50/p99 per create, REST and gRPC;
- 64 concurrent clients in two processes for `seconds`: writes/s, REST and gRPC (the Write stream);
- `kubectl get pods` (a server-side Table) with 1,000 pods stored, wall time, beside `skiff get pods`.
Ratios are REST over gRPC of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.api import arun, client_load, client_processes, cm, pct, sequential
from orchestrator import kubeconfig
from orchestrator.transport import ClientTLS
from tests.integration.masters import MasterSet, free_port

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "admin-token"
PODS = 1000


def pod(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"bench-{i:04d}", "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "c", "image": "k8s.gcr.io/pause"}]},
    }


def ssl_context(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


async def rest_sequential(base: str, ca: Path, n: int) -> list[float]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    url = f"{base}/api/v1/namespaces/default/configmaps"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_context(ca))) as s:
        for i in range(50):
            async with s.post(url, data=json.dumps(cm(f"rwarm-{i}")), headers=headers) as r:
                assert r.status == 201, await r.text()
        lat = []
        for i in range(n):
            t = time.perf_counter()
            async with s.post(url, data=json.dumps(cm(f"rseq-{i}")), headers=headers) as r:
                await r.read()
                assert r.status == 201
            lat.append(time.perf_counter() - t)
    return lat


async def rest_load(bases: list[str], ca: Path, clients: int, seconds: float, tag: str) -> dict[str, Any]:
    """`clients` concurrent writers, each with its own keep-alive connection, spread over the masters."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    ctx = ssl_context(ca)
    sessions = [
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=1)) for _ in range(clients)
    ]
    urls = [f"{bases[i % len(bases)]}/api/v1/namespaces/default/configmaps" for i in range(clients)]
    for i, s in enumerate(sessions):  # connect (TLS handshake) before the clock starts
        async with s.post(urls[i], data=json.dumps(cm(f"{tag}-{i}-warm")), headers=headers) as r:
            await r.read()
    lat: list[float] = []
    errors = 0
    end = time.perf_counter() + seconds

    async def run(i: int) -> None:
        nonlocal errors
        n = 0
        while time.perf_counter() < end:
            t = time.perf_counter()
            try:
                async with sessions[i].post(
                    urls[i], data=json.dumps(cm(f"{tag}-{i}-{n}")), headers=headers
                ) as r:
                    await r.read()
                    if r.status != 201:
                        errors += 1
                    else:
                        lat.append(time.perf_counter() - t)
            except aiohttp.ClientError:
                errors += 1
            n += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(run(i) for i in range(clients)))
    elapsed = time.perf_counter() - t0
    for s in sessions:
        await s.close()
    return {"writes": len(lat), "errors": errors, "seconds": elapsed, "latencies": lat}


async def create_pods(base: str, ca: Path) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    url = f"{base}/api/v1/namespaces/default/pods"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_context(ca), limit=16)) as s:

        async def one(i: int) -> None:
            async with s.post(url, data=json.dumps(pod(i)), headers=headers) as r:
                assert r.status == 201, await r.text()

        for start in range(0, PODS, 50):
            await asyncio.gather(*(one(i) for i in range(start, min(PODS, start + 50))))


def wall(argv: list[str], env: dict[str, str], runs: int = 5) -> float:
    """Median wall time of `argv` over `runs` runs (seconds); it must succeed and list every pod."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
        times.append(time.perf_counter() - t)
        assert out.returncode == 0, out.stderr
        assert out.stdout.count("bench-") == PODS, out.stdout[-300:]
    return statistics.median(times)


def load_processes(kind: str, targets: str, ca: Path, seconds: float, tmp: Path) -> list[dict[str, Any]]:
    """64 clients in 2 processes (one process cannot drive more than ~2,000 calls/s)."""
    argv = ["bench.rest", "--kind", kind, "--targets", targets, "--ca", str(ca), "--clients", "32"]
    return client_processes([*argv, "--seconds", str(seconds)], [f"{kind}0", f"{kind}1"], tmp, seconds)


def summarize(results: list[dict[str, Any]]) -> tuple[float, float, float, int]:
    lat = [x for r in results for x in r["latencies"]]
    writes = sum(r["writes"] for r in results)
    return (
        writes / max(r["seconds"] for r in results),
        pct(lat, 0.5),
        pct(lat, 0.99),
        sum(r["errors"] for r in results),
    )


def run(seconds: float = 10.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ms = MasterSet(tmp, "127.0.43", extra=("--no-controllers",))
        kube = [f"{h}:{free_port(h)}" for h in ms.hosts]
        ms.per_master = [["--kube-api", k] for k in kube]  # the REST API serves the gRPC API's certificate
        ms.start_all()
        ca = ms.pki["ca.crt"]
        bases = [f"https://{k}" for k in kube]
        try:

            async def prepare() -> None:
                c = ms.client()
                await ms.wait_leader(c)
                await c.close()

            arun(prepare())
            time.sleep(1.0)
            grpc_seq = arun(sequential(ms.api, TOKEN, ms.tls, 500))
            rest_seq = arun(rest_sequential(bases[0], ca, 500))
            grpc = summarize(load_processes("grpc", ",".join(ms.api), ca, seconds, tmp))
            rest = summarize(load_processes("rest", ",".join(bases), ca, seconds, tmp))
            arun(create_pods(bases[0], ca))
            config = tmp / "kubeconfig"
            kubeconfig.save(config, kubeconfig.entry("bench", bases[0], ca.read_bytes(), TOKEN))
            env = {**os.environ, "KUBECONFIG": str(config), "HOME": str(tmp)}
            subprocess.run(
                ["kubectl", "get", "pods"], capture_output=True, env=env, timeout=60
            )  # discovery cache
            kubectl_s = wall(["kubectl", "get", "pods"], env)
            skiff_s = wall(
                [sys.executable, "-m", "orchestrator.cli", "--server", ",".join(ms.api), "--token", TOKEN,
                 "--ca-file", str(ca), "get", "pods"],
                {**os.environ},
            )  # fmt: skip
        finally:
            ms.close()
    return {
        "grpc_sequential_create_p50_ms": pct(grpc_seq, 0.5),
        "grpc_sequential_create_p99_ms": pct(grpc_seq, 0.99),
        "rest_sequential_create_p50_ms": pct(rest_seq, 0.5),
        "rest_sequential_create_p99_ms": pct(rest_seq, 0.99),
        "grpc_64_clients_writes_per_s": grpc[0],
        "rest_64_clients_writes_per_s": rest[0],
        "rest_64_clients_p50_ms": rest[1],
        "rest_64_clients_p99_ms": rest[2],
        "rest_64_clients_errors": rest[3],
        "rest_over_grpc_writes_ratio": rest[0] / grpc[0] if grpc[0] else float("nan"),
        "kubectl_get_1000_pods_s": kubectl_s,
        "skiff_get_1000_pods_s": skiff_s,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--kind", choices=("rest", "grpc"))
    p.add_argument("--targets", default="")
    p.add_argument("--ca", default="")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--tag", default="c")
    p.add_argument("--out", default="")
    args = p.parse_args()
    if args.kind == "rest":
        r = arun(rest_load(args.targets.split(","), Path(args.ca), args.clients, args.seconds, args.tag))
    elif args.kind == "grpc":
        tls = ClientTLS.from_file(args.ca)
        r = arun(client_load(args.targets.split(","), TOKEN, tls, args.clients, args.seconds, args.tag))
    else:
        print(json.dumps(run(args.seconds), indent=2))
        return
    Path(args.out).write_text(json.dumps(r))


if __name__ == "__main__":
    main()
