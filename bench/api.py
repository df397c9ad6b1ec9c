"""API write benchmark: latency for one client and throughput with 64 concurrent clients through 3
masters, beside raw PySyncObj (same 3-process Raft and timing, no gRPC) measured in the same run."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop

from orchestrator import transport
from orchestrator.transport import ClientTLS
from tests.integration.masters import MasterSet, free_port

ROOT = Path(__file__).resolve().parents[1]


def arun(coro):
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
        return r.run(coro)


def cm(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": "x" * 64}}


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] * 1000


async def client_load(
    masters: list[str], token: str, tls: ClientTLS, clients: int, seconds: float, tag: str
) -> dict:
    """`clients` concurrent writers, each with its own channel, spread over the masters."""
    from orchestrator.client import ApiClient

    conns = [
        ApiClient(masters[i % len(masters) :] + masters[: i % len(masters)], token, tls=tls)
        for i in range(clients)
    ]
    # Warm up: every client connects and opens its write stream before the clock starts, so the
    # figure is the steady state, not 64 connection setups.
    await asyncio.gather(*(c.create(cm(f"{tag}-{i}-warm")) for i, c in enumerate(conns)))
    lat: list[float] = []
    end = time.perf_counter() + seconds
    errors = 0

    async def run(i: int) -> None:
        nonlocal errors
        n = 0
        while time.perf_counter() < end:
            t = time.perf_counter()
            try:
                await conns[i].create(cm(f"{tag}-{i}-{n}"))
                lat.append(time.perf_counter() - t)
            except Exception:
                errors += 1
            n += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(run(i) for i in range(clients)))
    elapsed = time.perf_counter() - t0
    for c in conns:
        await c.close()
    return {"writes": len(lat), "errors": errors, "seconds": elapsed, "latencies": lat}


async def sequential(masters: list[str], token: str, tls: ClientTLS, n: int) -> list[float]:
    from orchestrator.client import ApiClient

    async with ApiClient(masters, token, tls=tls) as c:
        for i in range(50):
            await c.create(cm(f"warm-{i}"))
        lat = []
        for i in range(n):
            t = time.perf_counter()
            await c.create(cm(f"seq-{i}"))
            lat.append(time.perf_counter() - t)
    return lat


def raw_pysyncobj(tmp: Path) -> dict:
    hosts = [f"127.0.40.{i}" for i in (1, 2, 3)]
    addrs = [f"{h}:{free_port(h)}" for h in hosts]
    out = tmp / "raw.json"
    procs = []
    for a in addrs:
        peers = ",".join(x for x in addrs if x != a)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "bench.raw_raft", a, peers, str(out), "40"],
                cwd=ROOT,
                start_new_session=True,
            )
        )
    try:
        procs[0].wait(timeout=60)
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, 9)
                p.wait()
    return json.loads(out.read_text())


def client_processes(argv: list[str], tags: list[str], tmp: Path, seconds: float) -> list[dict]:
    """Load clients in separate processes, `python -m ARGV --tag T --out tmp/T.json` per tag (one
    process cannot drive more than ~2,000 gRPC calls/s); their results, in tag order."""
    procs = [
        subprocess.Popen([sys.executable, "-m", *argv, "--tag", t, "--out", str(tmp / f"{t}.json")], cwd=ROOT)
        for t in tags
    ]
    for p in procs:
        p.wait(timeout=seconds + 60)
    return [json.loads((tmp / f"{t}.json").read_text()) for t in tags]


def load(
    tmp: Path, subnet: str, seconds: float, extra: tuple[str, ...] = (), *, plaintext: bool = False
) -> tuple[list[float], list[dict]]:
    """Sequential latencies, then 64 clients' results, against 3 fresh masters started with `extra`
    (TLS unless `plaintext`). The 64 clients run in 2 processes (one process cannot drive more than
    ~2,000 gRPC calls/s)."""
    ms = MasterSet(tmp, subnet, extra=("--no-controllers", *extra), plaintext=plaintext)
    ms.start_all()
    try:

        async def prepare() -> None:
            c = ms.client()
            await ms.wait_leader(c)
            await c.close()

        arun(prepare())
        lat = arun(sequential(ms.api, "admin-token", ms.tls, 1000))
        tls = ["--insecure"] if plaintext else ["--ca-file", str(ms.pki["ca.crt"])]
        argv = ["bench.api", "--client", ",".join(ms.api), "--clients", "32", "--seconds", str(seconds), *tls]
        return lat, client_processes(argv, ["p0", "p1"], tmp, seconds)
    finally:
        ms.close()


def run(seconds: float = 10.0) -> dict:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        # The same load as `skiff up` runs it (TLS on gRPC, Raft authenticated and encrypted by its
        # secret) and in plaintext, in the same run.
        secret = tmp / "raft.secret"
        secret.write_text("bench-" + os.urandom(16).hex() + "\n")
        (tmp / "secure").mkdir()
        auth_lat, auth_results = load(
            tmp / "secure", "127.0.42", seconds, ("--raft-secret-file", str(secret))
        )
        (tmp / "plain").mkdir()
        lat, results = load(tmp / "plain", "127.0.41", seconds, plaintext=True)
        raw = raw_pysyncobj(tmp)
    all_lat = [x for r in results for x in r["latencies"]]
    writes = sum(r["writes"] for r in results)
    elapsed = max(r["seconds"] for r in results)
    auth_rate = sum(r["writes"] for r in auth_results) / max(r["seconds"] for r in auth_results)
    return {
        "api_tls_raft_secret_sequential_p50_ms": pct(auth_lat, 0.5),
        "api_tls_raft_secret_64_clients_writes_per_s": auth_rate,
        "api_tls_raft_secret_over_plain_writes_ratio": auth_rate / (writes / elapsed),
        "api_sequential_p50_ms": pct(lat, 0.5),
        "api_sequential_p99_ms": pct(lat, 0.99),
        "api_64_clients_writes_per_s": writes / elapsed,
        "api_64_clients_p50_ms": pct(all_lat, 0.5),
        "api_64_clients_p99_ms": pct(all_lat, 0.99),
        "api_64_clients_errors": sum(r["errors"] for r in results),
        "raw_pysyncobj_sequential_p50_ms": raw["p50_ms"],
        "raw_pysyncobj_sequential_p99_ms": raw["p99_ms"],
        "raw_pysyncobj_pipelined_writes_per_s": raw["pipelined_writes_per_s"],
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--client")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--tag", default="c")
    p.add_argument("--out", default="")
    p.add_argument("--ca-file", default="")
    p.add_argument("--insecure", action="store_true")
    args = p.parse_args()
    if args.client:
        tls = transport.client_tls(args)
        r = arun(
            client_load(args.client.split(","), "admin-token", tls, args.clients, args.seconds, args.tag)
        )
        Path(args.out).write_text(json.dumps(r))
        return
    r = run(args.seconds)
    print(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
