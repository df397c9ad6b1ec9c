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
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

from bench import grpc_echo
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


def spread(masters: list[str], token: str, tls: ClientTLS, clients: int) -> list[Any]:
    """`clients` ApiClients, each with its own channel, their first masters spread over `masters`."""
    from orchestrator.client import ApiClient

    return [
        ApiClient(masters[i % len(masters) :] + masters[: i % len(masters)], token, tls=tls)
        for i in range(clients)
    ]


async def timed_load(conns: list[Any], seconds: float, op: Callable[[Any, int, int], Awaitable[Any]]) -> dict:
    """Every client runs `op(client, i, n)` back to back for `seconds`; the clients are closed after.
    Returns the calls answered ("writes", whatever they were), errors, the seconds taken, latencies."""
    lat: list[float] = []
    end = time.perf_counter() + seconds
    errors = 0

    async def run(i: int) -> None:
        nonlocal errors
        n = 0
        while time.perf_counter() < end:
            t = time.perf_counter()
            try:
                await op(conns[i], i, n)
                lat.append(time.perf_counter() - t)
            except Exception:
                errors += 1
            n += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(run(i) for i in range(len(conns))))
    elapsed = time.perf_counter() - t0
    for c in conns:
        await c.close()
    return {"writes": len(lat), "errors": errors, "seconds": elapsed, "latencies": lat}


async def client_load(
    masters: list[str], token: str, tls: ClientTLS, clients: int, seconds: float, tag: str
) -> dict:
    """`clients` concurrent writers, each with its own channel, spread over the masters."""
    conns = spread(masters, token, tls, clients)
    # Warm up: every client connects and opens its write stream before the clock starts, so the
    # figure is the steady state, not 64 connection setups.
    await asyncio.gather(*(c.create(cm(f"{tag}-{i}-warm")) for i, c in enumerate(conns)))
    return await timed_load(conns, seconds, lambda c, i, n: c.create(cm(f"{tag}-{i}-{n}")))


async def read_load(
    masters: list[str], token: str, tls: ClientTLS, clients: int, seconds: float, rv: str
) -> dict:
    """`clients` concurrent readers (Get of one of 50 objects), linearizable (rv "") or local (rv "0")."""
    conns = spread(masters, token, tls, clients)
    await asyncio.gather(*(c.get("ConfigMap", "default", "read-0") for c in conns))  # connect first
    return await timed_load(
        conns,
        seconds,
        lambda c, i, n: c.get("ConfigMap", "default", f"read-{(i + n) % 50}", resource_version=rv),
    )


async def sequential_reads(masters: list[str], token: str, tls: ClientTLS, n: int, rv: str) -> list[float]:
    """One client's Get latencies, through a follower's view as often as the leader's (all masters)."""
    from orchestrator.client import ApiClient

    lat = []
    clients = [ApiClient([m], token, tls=tls) for m in masters]
    for i in range(50):
        await clients[0].apply(cm(f"read-{i}"))
    for i in range(n):
        c = clients[i % len(clients)]
        t = time.perf_counter()
        await c.get("ConfigMap", "default", f"read-{i % 50}", resource_version=rv)
        lat.append(time.perf_counter() - t)
    for c in clients:
        await c.close()
    return lat


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


def reads(tmp: Path, subnet: str, seconds: float) -> dict:
    """Get latency (1 client) and reads/s (64 clients in 2 processes), linearizable beside local
    (resourceVersion=0), against 3 fresh masters as skiff up runs them (TLS), in the same run."""
    ms = MasterSet(tmp, subnet, extra=("--no-controllers",))
    ms.start_all()
    try:

        async def prepare() -> None:
            c = ms.client()
            await ms.wait_leader(c)
            await c.close()

        arun(prepare())
        out: dict = {}
        for mode, rv in (("linearizable", ""), ("local", "0")):
            lat = arun(sequential_reads(ms.api, "admin-token", ms.tls, 2000, rv))
            argv = ["bench.api", "--client", ",".join(ms.api), "--clients", "32", "--seconds", str(seconds),
                    "--ca-file", str(ms.pki["ca.crt"]), "--reads", mode]  # fmt: skip
            results = client_processes(argv, [f"r{mode}0", f"r{mode}1"], tmp, seconds)
            out[f"get_{mode}_p50_ms"] = pct(lat, 0.5)
            out[f"get_{mode}_p99_ms"] = pct(lat, 0.99)
            out[f"reads_{mode}_64_clients_per_s"] = sum(r["writes"] for r in results) / max(
                r["seconds"] for r in results
            )
            out[f"reads_{mode}_64_clients_errors"] = sum(r["errors"] for r in results)
        out["reads_linearizable_over_local_ratio"] = (
            out["reads_linearizable_64_clients_per_s"] / out["reads_local_64_clients_per_s"]
        )
        return out
    finally:
        ms.close()


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


def rate(results: list[dict]) -> float:
    return sum(r["writes"] for r in results) / max(r["seconds"] for r in results)


def run(seconds: float = 10.0) -> dict:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        # The same load as `skiff up` runs it (TLS on gRPC, Raft authenticated and encrypted by its
        # secret) and in plaintext, in the same run, in the order secure, plain, plain, secure: this
        # machine's speed drifts by 10% within minutes, and the pairs cancel a drift that is linear.
        secret = tmp / "raft.secret"
        secret.write_text("bench-" + os.urandom(16).hex() + "\n")
        runs: dict[str, list[tuple[list[float], list[dict]]]] = {"secure": [], "plain": []}
        for n, mode in enumerate(("secure", "plain", "plain", "secure")):
            (tmp / f"{mode}{n}").mkdir()
            if mode == "secure":
                extra: tuple[str, ...] = ("--raft-secret-file", str(secret))
                runs[mode].append(load(tmp / f"{mode}{n}", f"127.0.4{2 + n}", seconds, extra))
            else:
                runs[mode].append(load(tmp / f"{mode}{n}", f"127.0.4{2 + n}", seconds, plaintext=True))
        (tmp / "reads").mkdir()
        read_figures = reads(tmp / "reads", "127.0.46", seconds)
        echo = grpc_echo.run(seconds / 2)  # what TLS costs gRPC alone, the floor under the ratio above
        raw = raw_pysyncobj(tmp)
    secure_rates = [rate(r) for _, r in runs["secure"]]
    plain_rates = [rate(r) for _, r in runs["plain"]]
    results = [x for _, r in runs["plain"] for x in r]
    lat = [x for seq, _ in runs["plain"] for x in seq]
    auth_lat = [x for seq, _ in runs["secure"] for x in seq]
    all_lat = [x for r in results for x in r["latencies"]]
    return {
        "api_tls_raft_secret_sequential_p50_ms": pct(auth_lat, 0.5),
        "api_tls_raft_secret_64_clients_writes_per_s": sum(secure_rates) / 2,
        "api_tls_raft_secret_64_clients_writes_per_s_runs": secure_rates,
        "api_tls_raft_secret_over_plain_writes_ratio": sum(secure_rates) / sum(plain_rates),
        "api_sequential_p50_ms": pct(lat, 0.5),
        "api_sequential_p99_ms": pct(lat, 0.99),
        "api_64_clients_writes_per_s": sum(plain_rates) / 2,
        "api_64_clients_writes_per_s_runs": plain_rates,
        "api_64_clients_p50_ms": pct(all_lat, 0.5),
        "api_64_clients_p99_ms": pct(all_lat, 0.99),
        "api_64_clients_errors": sum(r["errors"] for r in results),
        "raw_pysyncobj_sequential_p50_ms": raw["p50_ms"],
        "raw_pysyncobj_sequential_p99_ms": raw["p99_ms"],
        "raw_pysyncobj_pipelined_writes_per_s": raw["pipelined_writes_per_s"],
        **read_figures,
        **echo,
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
    p.add_argument(
        "--reads", choices=("linearizable", "local"), default="", help="read load instead of writes"
    )
    args = p.parse_args()
    if args.client:
        tls = transport.client_tls(args)
        masters = args.client.split(",")
        if args.reads:
            rv = "" if args.reads == "linearizable" else "0"
            r = arun(read_load(masters, "admin-token", tls, args.clients, args.seconds, rv))
        else:
            r = arun(client_load(masters, "admin-token", tls, args.clients, args.seconds, args.tag))
        Path(args.out).write_text(json.dumps(r))
        return
    r = run(args.seconds)
    print(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
