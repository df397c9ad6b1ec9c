"""Proxy benchmark: Skiff's balancer against HAProxy (TCP mode, 1 thread) and a direct connection.

For each target (direct to one backend, Skiff's proxy with static routes and 1 worker, HAProxy with
`nbthread 1`) it measures, each bounded in time (and Skiff with its default 2 workers, new-connection
load only):
- keep-alive HTTP load: wrk, 64 connections, small responses;
- a new connection per request: the same with "Connection: close";
- bulk: 100 MB from a backend through the target to one client, in MB/s (best of 5: one run takes
  ~50 ms, so a single scheduling hiccup would skew it).
It reports requests/s, p50/p99 latency, MB/s and the proxy's CPU seconds per request (utime+stime
from /proc/<pid>/stat of the proxy's processes, before and after), with ratios to HAProxy.

The machine has 2 cores shared by wrk, the Python backends, the proxy and the bulk client, so the
figures are contended: compare ratios, not absolutes. Installs wrk and haproxy with apt when missing.

`make bench` runs it through bench/__main__.py (`run()`); `python -m bench.proxy` runs it alone and
writes bench/results/proxy.json.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
PY = sys.executable
DURATION = int(os.environ.get("BENCH_PROXY_SECONDS", "10"))
WRK_THREADS = 2
CONNECTIONS = 64
BULK_BYTES = 100 * 1024 * 1024
BULK_TRIES = 5

BACKEND_ADDRS = ["127.0.60.11", "127.0.60.12"]
SOURCE_ADDR = "127.0.60.13"
SKIFF_ADDR = "127.0.60.1"
SKIFF2_ADDR = "127.0.60.3"
HAPROXY_ADDR = "127.0.60.2"
TICK = os.sysconf("SC_CLK_TCK")


def ensure_tools() -> None:
    """wrk and haproxy come from the Makefile's TOOLS (`make bench` installs them)."""
    missing = [t for t in ("wrk", "haproxy") if shutil.which(t) is None]
    if missing:
        raise SystemExit(
            f"bench.proxy: {' and '.join(missing)} not installed; run `make bench` (or `make tools`)"
        )


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_port(host: str, port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{host}:{port} not accepting")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / TICK


def children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def parse_duration_ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return float("nan")
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v if unit == "ms" else v * 1000 if unit == "s" else v * 60000


def wrk(url: str, close: bool) -> dict[str, float]:
    cmd = ["wrk", f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency", "--timeout", "5s"]
    if close:
        cmd += ["-H", "Connection: close"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=DURATION + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p50 = parse_duration_ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = parse_duration_ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "requests": total,
        "p50_ms": p50,
        "p99_ms": p99,
        "errors": (1 if errors else 0) + (int(non2xx.group(1)) if non2xx else 0),
    }


def bulk(host: str, port: int) -> float:
    """MB/s of BULK_BYTES from the source backend through host:port (best of BULK_TRIES)."""
    best = 0.0
    buf = bytearray(1 << 20)
    for _ in range(BULK_TRIES):
        with socket.create_connection((host, port), timeout=30) as s:
            t0 = time.perf_counter()
            s.sendall(f"{BULK_BYTES}\n".encode())
            got = 0
            view = memoryview(buf)
            while got < BULK_BYTES:
                n = s.recv_into(view)
                if not n:
                    break
                got += n
            dt = time.perf_counter() - t0
        if got != BULK_BYTES:
            raise RuntimeError(f"bulk through {host}:{port}: got {got} of {BULK_BYTES} bytes")
        best = max(best, BULK_BYTES / dt / 1e6)
    return best


class Procs:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
        f = open(log, "wb")  # noqa: SIM115 - the child owns it
        p = subprocess.Popen(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        return p

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def start_skiff(procs: Procs, tmp: Path, address: str, workers: int) -> subprocess.Popen[bytes]:
    """Skiff's balancer on `address` with the static routes in tmp/routes.json."""
    return procs.start(
        [PY, "-m", "lb", "--static-routes", str(tmp / "routes.json"), "--address", address,
         "--http-port", "0", "--workers", str(workers), "--log-level", "WARNING",
         "--insecure"],  # static routes, no masters: only its health port would use TLS, and nobody asks it
        tmp / f"skiff-lb-{address}.log",
    )  # fmt: skip


def measure(
    name: str,
    host: str,
    port: int,
    bulk_port: int,
    pids: list[int],
    bulk_host: str = "",
    modes: tuple[str, ...] = ("keepalive", "newconn", "bulk"),
) -> dict[str, float]:
    out: dict[str, float] = {}
    for mode, close in (("keepalive", False), ("newconn", True)):
        if mode not in modes:
            continue
        c0 = cpu_seconds(pids)
        r = wrk(f"http://{host}:{port}/", close)
        cpu = cpu_seconds(pids) - c0
        out[f"{mode}_rps"] = r["rps"]
        out[f"{mode}_p50_ms"] = r["p50_ms"]
        out[f"{mode}_p99_ms"] = r["p99_ms"]
        out[f"{mode}_errors"] = r["errors"]
        out[f"{mode}_cpu_us_per_req"] = cpu / max(r["requests"], 1) * 1e6 if pids else 0.0
        print(
            f"  {name:8} {mode:9} {r['rps']:10.0f} req/s  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms",
            flush=True,
        )
    if "bulk" not in modes:
        return out
    c0 = cpu_seconds(pids)
    out["bulk_mb_s"] = bulk(bulk_host or host, bulk_port)
    out["bulk_cpu_s"] = cpu_seconds(pids) - c0
    print(f"  {name:8} bulk      {out['bulk_mb_s']:10.0f} MB/s", flush=True)
    return out


def run() -> dict[str, Any]:
    ensure_tools()
    tmp = Path(tempfile.mkdtemp(prefix="skiff-bench-proxy-"))
    procs = Procs()
    try:
        ports = []
        for i, addr in enumerate(BACKEND_ADDRS):
            port = free_port(addr)
            procs.start(
                [
                    PY,
                    "-m",
                    "lb.testing",
                    "--kind",
                    "http",
                    "--address",
                    addr,
                    "--port",
                    str(port),
                    "--name",
                    f"b{i}",
                ],
                tmp / f"backend{i}.log",
            )
            ports.append(port)
        source_port = free_port(SOURCE_ADDR)
        procs.start(
            [
                PY,
                "-m",
                "lb.testing",
                "--kind",
                "source",
                "--address",
                SOURCE_ADDR,
                "--port",
                str(source_port),
            ],
            tmp / "source.log",
        )
        for addr, port in [*zip(BACKEND_ADDRS, ports, strict=True), (SOURCE_ADDR, source_port)]:
            wait_port(addr, port)

        # Skiff: static routes, one worker (HAProxy runs one thread).
        web_port, bulk_port = free_port(SKIFF_ADDR), free_port(SKIFF_ADDR)
        sys.path.insert(0, str(REPO))
        from lb.testing import endpoints, service

        routes = {
            "services": [
                service("web", 80, node_port=web_port, type="NodePort"),
                service("bulk", 81, node_port=bulk_port, type="NodePort"),
            ],
            "endpoints": [
                endpoints("web", list(zip(BACKEND_ADDRS, ports, strict=True))),
                endpoints("bulk", [(SOURCE_ADDR, source_port)]),
            ],
        }
        (tmp / "routes.json").write_text(json.dumps(routes))
        skiff = start_skiff(procs, tmp, SKIFF_ADDR, workers=1)
        wait_port(SKIFF_ADDR, web_port)
        wait_port(SKIFF_ADDR, bulk_port)
        # Also Skiff at its default of 2 worker processes, for the new-connection rate (the issue's
        # reference figure for a uvloop proxy was measured with 2 processes).
        skiff2 = start_skiff(procs, tmp, SKIFF2_ADDR, workers=2)
        wait_port(SKIFF2_ADDR, web_port)

        # HAProxy: TCP mode, one thread, same backends.
        hp_web, hp_bulk = free_port(HAPROXY_ADDR), free_port(HAPROXY_ADDR)
        servers = "\n".join(
            f"    server b{i} {a}:{p}" for i, (a, p) in enumerate(zip(BACKEND_ADDRS, ports, strict=True))
        )
        cfg = f"""global
    nbthread 1
    maxconn 8000
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend web
    bind {HAPROXY_ADDR}:{hp_web}
    default_backend web
backend web
    balance roundrobin
{servers}
frontend bulk
    bind {HAPROXY_ADDR}:{hp_bulk}
    default_backend bulk
backend bulk
    server s {SOURCE_ADDR}:{source_port}
"""
        (tmp / "haproxy.cfg").write_text(cfg)
        haproxy = procs.start(["haproxy", "-db", "-f", str(tmp / "haproxy.cfg")], tmp / "haproxy.log")
        wait_port(HAPROXY_ADDR, hp_web)

        time.sleep(0.5)
        skiff_pids = [skiff.pid, *children(skiff.pid)]
        skiff2_pids = [skiff2.pid, *children(skiff2.pid)]
        print(
            f"proxy bench: wrk -t{WRK_THREADS} -c{CONNECTIONS} -d{DURATION}s; 2 cores shared by wrk, backends and proxy"
        )
        results = {
            "direct": measure("direct", BACKEND_ADDRS[0], ports[0], source_port, [], SOURCE_ADDR),
            "skiff": measure("skiff", SKIFF_ADDR, web_port, bulk_port, skiff_pids),
            "skiff2w": measure("skiff2w", SKIFF2_ADDR, web_port, bulk_port, skiff2_pids, modes=("newconn",)),
            "haproxy": measure(
                "haproxy", HAPROXY_ADDR, hp_web, hp_bulk, [haproxy.pid, *children(haproxy.pid)]
            ),
        }
    finally:
        procs.stop_all()
    print_table(results)
    figures: dict[str, Any] = {}
    for target, r in results.items():
        for k, v in r.items():
            figures[f"{target}_{k}"] = round(v, 3) if isinstance(v, float) else v
    s, h = results["skiff"], results["haproxy"]
    figures["skiff_vs_haproxy_keepalive_rps"] = round(s["keepalive_rps"] / h["keepalive_rps"], 3)
    figures["skiff_vs_haproxy_keepalive_cpu_per_req"] = round(
        s["keepalive_cpu_us_per_req"] / h["keepalive_cpu_us_per_req"], 3
    )
    figures["skiff_vs_haproxy_newconn_rps"] = round(s["newconn_rps"] / h["newconn_rps"], 3)
    figures["skiff_vs_haproxy_newconn_cpu_per_req"] = round(
        s["newconn_cpu_us_per_req"] / h["newconn_cpu_us_per_req"], 3
    )
    s2 = results["skiff2w"]
    figures["skiff2w_vs_haproxy_newconn_rps"] = round(s2["newconn_rps"] / h["newconn_rps"], 3)
    figures["skiff2w_vs_haproxy_newconn_cpu_per_req"] = round(
        s2["newconn_cpu_us_per_req"] / h["newconn_cpu_us_per_req"], 3
    )
    figures["skiff_vs_haproxy_bulk"] = round(s["bulk_mb_s"] / h["bulk_mb_s"], 3)
    figures["note"] = "2 cores shared by wrk (2 threads), 2 Python backends and the proxy: contended figures"
    return figures


def print_table(results: dict[str, dict[str, float]]) -> None:
    h = results["haproxy"]
    rows = [
        ("keep-alive req/s", "keepalive_rps", "{:.0f}"),
        ("keep-alive p50 ms", "keepalive_p50_ms", "{:.2f}"),
        ("keep-alive p99 ms", "keepalive_p99_ms", "{:.2f}"),
        ("keep-alive CPU us/req", "keepalive_cpu_us_per_req", "{:.1f}"),
        ("new-conn req/s", "newconn_rps", "{:.0f}"),
        ("new-conn p50 ms", "newconn_p50_ms", "{:.2f}"),
        ("new-conn p99 ms", "newconn_p99_ms", "{:.2f}"),
        ("new-conn CPU us/req", "newconn_cpu_us_per_req", "{:.1f}"),
        ("bulk 100 MB, MB/s", "bulk_mb_s", "{:.0f}"),
    ]
    print(f"\n{'':24}{'direct':>10}{'skiff':>10}{'haproxy':>10}{'skiff/haproxy':>15}")
    for label, key, fmt in rows:
        ratio = results["skiff"][key] / h[key] if h[key] else float("nan")
        cells = "".join(f"{fmt.format(results[t][key]):>10}" for t in ("direct", "skiff", "haproxy"))
        print(f"{label:24}{cells}{ratio:>15.2f}")
    s2 = results["skiff2w"]
    for label, key in (("new-conn req/s", "newconn_rps"), ("new-conn CPU us/req", "newconn_cpu_us_per_req")):
        print(f"{label + ', 2 workers':34}{s2[key]:>10.1f}{'':10}{s2[key] / h[key]:>15.2f}")
    print()


if __name__ == "__main__":
    figures = run()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "proxy.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
