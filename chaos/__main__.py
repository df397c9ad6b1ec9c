"""python -m chaos: a seeded chaos run against a local cluster of real processes.

It starts its own cluster (3 masters, 5 workers, the balancer) on loopback ranges of its own, runs a
deployment behind a NodePort, then for --duration seconds injects the faults of `chaos.faults` while
it keeps HTTP load on the balancer and a stream of API writes with unique values. At the end it waits
for the cluster to converge and checks: no acknowledged write lost, no write applied twice, pods per
deployment equal to replicas, no pod running twice, HTTP failure rate under 1%, convergence in time.
Prints a table, writes JSON, and exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import uvloop

from chaos import checks
from chaos.faults import Fault, schedule
from orchestrator import errors
from orchestrator.client import ApiClient
from orchestrator.transport import ClientTLS

ROOT = Path(__file__).resolve().parents[1]
SKIFF = str(Path(sys.executable).with_name("skiff"))


class Cluster:
    """The chaos run's cluster, driven through `skiff` and its recorded process table."""

    def __init__(self, state: Path, args: argparse.Namespace) -> None:
        self.state = state
        self.args = args
        self.config = state / "config.json"
        self.partitions: list[list[list[str]]] = []  # per partition, its iptables rules

    def skiff(self, *argv: str, check: bool = True, timeout: float = 120) -> str:
        proc = subprocess.run(
            [SKIFF, "--config", str(self.config), *argv],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"skiff {' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    def up(self) -> None:
        a = self.args
        subprocess.run(
            [SKIFF, "up", "--state-dir", str(self.state), "--config", str(self.config),
             "--kubeconfig", str(self.state / "kubeconfig"),
             "--masters", "3", "--workers", str(a.workers), "--http-port", "0",
             "--master-address-base", a.master_base, "--worker-address-base", a.worker_base,
             "--lb-address", a.lb_address, "--timeout", "90"],
            check=True, cwd=ROOT, timeout=150,
        )  # fmt: skip

    def down(self) -> None:
        self.heal_partitions()
        subprocess.run(
            [SKIFF, "down", "--state-dir", str(self.state), "--config", str(self.config)],
            cwd=ROOT,
            timeout=120,
        )

    @property
    def conf(self) -> dict[str, Any]:
        return json.loads(self.config.read_text())

    def records(self, role: str) -> list[dict[str, Any]]:
        pids = json.loads((self.state / "pids.json").read_text())
        return [r for r in pids["processes"] if r.get("role") == role]

    def client(self) -> ApiClient:
        c = self.conf
        return ApiClient(c["masters"], c["token"], tls=self.tls(), timeout=15.0)

    def tls(self) -> ClientTLS:
        return ClientTLS.from_file(self.conf["caFile"])

    # ------------------------------------------------------------ containers

    def worker_dir(self, name: str) -> Path:
        return self.state / "workers" / name

    def running_containers(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(worker, pod uid, run.json) for every container whose process is alive."""
        out = []
        for rec in self.records("worker"):
            for run in self.worker_dir(rec["name"]).glob("pods/*/*/run.json"):
                try:
                    info = json.loads(run.read_text())
                    os.kill(int(info["pid"]), 0)
                except (OSError, ValueError, KeyError):
                    continue
                if (run.parent / "exit.json").exists():
                    with contextlib.suppress(OSError, ValueError):
                        if json.loads((run.parent / "exit.json").read_text()).get("instance") == info.get(
                            "instance"
                        ):
                            continue
                out.append((rec["name"], run.parent.parent.name, info))
        return out

    # ------------------------------------------------------------ partitions

    def partition(self, master: int) -> bool:
        if shutil.which("iptables") is None or os.geteuid() != 0:
            return False
        hosts = [m.rsplit(":", 1)[0] for m in self.conf["masters"]]
        rules = []
        for j, other in enumerate(hosts):
            if j != master:
                rules += [
                    ["-s", hosts[master], "-d", other, "-j", "DROP"],
                    ["-s", other, "-d", hosts[master], "-j", "DROP"],
                ]
        for r in rules:
            subprocess.run(["iptables", "-I", "INPUT", *r], check=True)
        self.partitions.append(rules)
        return True

    def heal_partitions(self) -> None:
        while self.partitions:
            for r in self.partitions.pop():
                subprocess.run(["iptables", "-D", "INPUT", *r], check=False)

    def lb_workers(self) -> list[int]:
        out = []
        for rec in self.records("lb"):
            with contextlib.suppress(OSError):
                out += [
                    int(p) for p in Path(f"/proc/{rec['pid']}/task/{rec['pid']}/children").read_text().split()
                ]
        return out


class Run:
    def __init__(self, cluster: Cluster, args: argparse.Namespace) -> None:
        self.cluster = cluster
        self.args = args
        self.writes: list[checks.WriteRecord] = []
        self.register_writes: list[checks.RegisterWrite] = []
        self.reads: list[checks.ReadRecord] = []
        self.http_ok = 0
        self.http_failed = 0
        self.http_errors: dict[str, int] = {}
        self.injected: list[dict[str, Any]] = []
        self.stop = asyncio.Event()

    # ------------------------------------------------------------ load

    async def http_load(self, address: str, port: int) -> None:
        """New connection per request, at a steady rate, until stopped."""
        interval = 1.0 / self.args.http_rate
        pending: set[asyncio.Task] = set()
        while not self.stop.is_set():
            task = asyncio.create_task(self._request(address, port))
            pending.add(task)
            task.add_done_callback(pending.discard)
            await asyncio.sleep(interval)
        await asyncio.gather(*pending)

    async def _request(self, address: str, port: int) -> None:
        try:
            async with asyncio.timeout(3.0):
                reader, writer = await asyncio.open_connection(address, port)
                writer.write(b"GET / HTTP/1.1\r\nHost: chaos\r\nConnection: close\r\n\r\n")
                data = await reader.read()
                writer.close()
            if not data.startswith(b"HTTP/1.1 200"):
                raise ConnectionError(data[:40].decode(errors="replace") or "empty response")
            self.http_ok += 1
        except (OSError, TimeoutError, ConnectionError) as e:
            self.http_failed += 1
            key = type(e).__name__
            self.http_errors[key] = self.http_errors.get(key, 0) + 1

    async def write_load(self, client: ApiClient, worker: int) -> None:
        n = 0
        while not self.stop.is_set():
            name = f"chaos-{worker}-{n}"
            value = uuid.uuid4().hex
            obj = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name},
                "data": {"value": value},
            }
            t = time.time()
            try:
                await client.create(obj)
                outcome = "ok"
            except errors.Unavailable:
                outcome = "unknown"
            except errors.SkiffError:
                outcome = "failed"
            self.writes.append(checks.WriteRecord(name, value, t, time.time(), outcome))
            n += 1
            await asyncio.sleep(0.02)

    async def register_load(self, client: ApiClient, key: str) -> None:
        """One key's only writer: values 1, 2, 3, ..., each written once it knows how the last went."""
        n = 0
        while not self.stop.is_set():
            n += 1
            obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": key}, "data": {"n": str(n)}}
            t = time.time()
            try:
                await client.apply(obj)
                outcome = "ok"
            except errors.Unavailable:
                outcome = "unknown"
            except errors.SkiffError:
                outcome = "failed"
            self.register_writes.append(checks.RegisterWrite(key, n, t, time.time(), outcome))
            await asyncio.sleep(0.05)

    async def read_load(self, keys: list[str], seed: int) -> None:
        """Reads of the registers through one random master at a time (no failover: each read is that
        master's answer), recording when each began and ended and what it returned. With
        --sabotage stale-read, a key's first value read is recorded for every later read of it."""
        rng = random.Random(seed)
        masters = self.cluster.conf["masters"]
        clients = {m: ApiClient([m], self.cluster.conf["token"], tls=self.cluster.tls(), timeout=2.0,
                                call_timeout=2.0) for m in masters}  # fmt: skip
        first: dict[str, int] = {}
        try:
            while not self.stop.is_set():
                key, master = rng.choice(keys), rng.choice(masters)
                t = time.time()
                try:
                    obj = await clients[master].get("ConfigMap", "default", key)
                    value: int | None = int(obj["data"]["n"])
                except errors.SkiffError:
                    value = None
                if value is not None and self.args.sabotage == "stale-read":
                    value = first.setdefault(key, value)
                self.reads.append(checks.ReadRecord(key, t, time.time(), value, master))
                await asyncio.sleep(0.02)
        finally:
            for c in clients.values():
                await c.close()

    # ------------------------------------------------------------ faults

    async def inject(self, faults: list[Fault], start: float) -> None:
        c = self.cluster
        masters = c.records("master")
        workers = c.records("worker")
        for f in faults:
            await asyncio.sleep(max(0.0, start + f.at - time.monotonic()))
            entry: dict[str, Any] = {"at": f.at, "kind": f.kind, "hold": f.hold}
            try:
                await self._apply(f, masters, workers, entry)
            except Exception as e:  # a fault that could not be injected is reported, not fatal
                entry["error"] = str(e)
            self.injected.append(entry)
            print(
                f"  t={f.at:6.1f}s {f.kind:17} {entry.get('target', '')} {entry.get('error', '')}", flush=True
            )

    async def _apply(self, f: Fault, masters: list, workers: list, entry: dict[str, Any]) -> None:
        c = self.cluster
        if f.kind in ("kill-master", "pause-master", "partition-master"):
            name = masters[f.target]["name"]
        elif f.kind == "kill-lb-worker":
            name = "lb"
        else:
            name = workers[f.target]["name"]
        entry["target"] = name
        if f.kind == "kill-container":
            mine = [info for w, _, info in c.running_containers() if w == name]
            if not mine:
                raise RuntimeError(f"no running container on {name}")
            # The one restarted least: killing the same container again and again measures its crash
            # back-off (by design up to 60 s, as kubelet's is up to 5 min), not the healing.
            victim = min(mine, key=lambda info: int(info.get("instance", 0)))
            os.kill(int(victim["pid"]), signal.SIGKILL)
            return
        if f.kind == "kill-lb-worker":
            pids = c.lb_workers()
            if not pids:
                raise RuntimeError("no balancer worker process found")
            os.kill(pids[f.target % len(pids)], signal.SIGKILL)
            entry["target"] = f"lb worker pid {pids[f.target % len(pids)]}"
            return
        if f.kind.startswith("kill-"):
            extra = ["--with-containers"] if f.kind == "kill-worker" else []
            await asyncio.to_thread(c.skiff, "kill", name, *extra, "--state-dir", str(c.state))
            await asyncio.sleep(f.hold)
            await asyncio.to_thread(c.skiff, "start", name, "--state-dir", str(c.state))
        elif f.kind.startswith("pause-"):
            await asyncio.to_thread(c.skiff, "kill", name, "--signal", "STOP", "--state-dir", str(c.state))
            await asyncio.sleep(f.hold)
            await asyncio.to_thread(c.skiff, "kill", name, "--signal", "CONT", "--state-dir", str(c.state))
        elif f.kind == "partition-master":
            if not c.partition(f.target):
                raise RuntimeError("skipped: needs root and iptables")
            await asyncio.sleep(f.hold)
            c.heal_partitions()

    # ------------------------------------------------------------ convergence

    async def first_converged(self, client: ApiClient, injector: asyncio.Task[None]) -> float | None:
        """When every fault has been injected and healed, poll the cluster under load until it has
        healed; the time it first had (time.monotonic), or None if the load stopped first."""
        await asyncio.wait({injector})
        while not self.stop.is_set():
            with contextlib.suppress(errors.SkiffError):
                if not await self.converged(client, under_load=True):
                    return time.monotonic()
            await asyncio.sleep(0.25)
        return None

    async def converged(self, client: ApiClient, under_load: bool = False) -> list[str]:
        """Problems that keep the cluster from its declared state (empty when converged).

        `under_load`: the writes still run, so the masters are only asked to answer (their revisions
        differ by the writes in flight); identical state is checked once the writes have stopped.
        """
        c = self.cluster
        problems = []
        digests = set()
        for address in c.conf["masters"]:
            try:
                s = await client.status(address)
                digests.add((s.revision, s.state_digest))
            except errors.SkiffError as e:
                problems.append(f"master {address}: {e}")
        if len(digests) > 1 and not under_load:
            problems.append(f"masters differ: {sorted(digests)}")
        nodes, _ = await client.list("Node")
        not_ready = [n["metadata"]["name"] for n in nodes if not _node_ready(n)]
        if not_ready:
            problems.append(f"nodes not ready: {not_ready}")
        deployments, _ = await client.list("Deployment")
        pods, _ = await client.list("Pod")
        problems += checks.replica_problems(deployments, pods)
        running = [(w, uid) for w, uid, _ in c.running_containers()]
        problems += checks.double_running(running, pods)
        eps = await client.get("Endpoints", "default", "web")
        ready_eps = sum(len(s.get("addresses") or []) for s in eps.get("subsets") or [])
        if ready_eps != self.args.replicas:
            problems.append(f"endpoints: {ready_eps} ready, want {self.args.replicas}")
        return problems


def _node_ready(node: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in node.get("status", {}).get("conditions") or []
    )


async def run(args: argparse.Namespace, cluster: Cluster) -> dict[str, Any]:
    client = cluster.client()
    print(f"$ skiff run web --image=demo --port=5005 --replicas={args.replicas}", flush=True)
    cluster.skiff(
        "run", "web", "--image=jweissig/alpine-k8s-pod-lb-demo", "--port=5005", f"--replicas={args.replicas}"
    )
    cluster.skiff("expose", "deployment", "web", "--target-port=5005", "--type=NodePort")
    r = Run(cluster, args)
    deadline = time.monotonic() + 60
    while await r.converged(client):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the deployment never became ready: {await r.converged(client)}")
        await asyncio.sleep(0.3)
    svc = await client.get("Service", "default", "web")
    port = svc["spec"]["ports"][0]["nodePort"]
    address = cluster.conf["lb"]["address"]
    faults = schedule(args.seed, args.duration, 3, args.workers)
    print(
        f"chaos: seed={args.seed} duration={args.duration}s faults={len(faults)} via {address}:{port}",
        flush=True,
    )
    writers = [cluster.client() for _ in range(2)]
    registers = [f"register-{i}" for i in range(3)]
    register_writers = [cluster.client() for _ in registers]
    start = time.monotonic()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(r.http_load(address, port))
        for i, w in enumerate(writers):
            tg.create_task(r.write_load(w, i))
        for key, w in zip(registers, register_writers, strict=True):
            tg.create_task(r.register_load(w, key))
        tg.create_task(r.read_load(registers, args.seed))
        injector = tg.create_task(r.inject(faults, start))
        monitor = tg.create_task(r.first_converged(client, injector))
        await asyncio.sleep(args.duration)
        await injector
        r.stop.set()
        healed_under_load = await monitor
    last_fault_healed = start + max((f.healed_at for f in faults), default=0.0)
    converge_deadline = time.monotonic() + args.converge_timeout
    problems = await r.converged(client)
    while problems and time.monotonic() < converge_deadline:
        await asyncio.sleep(0.25)
        problems = await r.converged(client)
    # Healed: the first moment after the last fault when everything but the masters' digests held
    # (still under load), if that came before the load stopped; the masters' identical state is
    # required too, checked once the writes have stopped.
    healed_at = healed_under_load if healed_under_load is not None else time.monotonic()
    convergence = max(0.0, healed_at - last_fault_healed) if not problems else None
    if args.sabotage == "delete-acked-write":
        victim = next(w for w in r.writes if w.outcome == "ok")
        await client.delete("ConfigMap", "default", victim.name)
        print(
            f"chaos: SABOTAGE: deleted the acknowledged write {victim.name} to show the check fails",
            flush=True,
        )
    items, _ = await client.list("ConfigMap")
    stored = {
        o["metadata"]["name"]: o["data"]["value"] for o in items if o["metadata"]["name"].startswith("chaos-")
    }
    lost = checks.lost_writes(r.writes, stored)
    dup = checks.duplicated_writes(r.writes, stored)
    stale = checks.stale_reads(r.register_writes, r.reads)
    total_http = r.http_ok + r.http_failed
    http_rate = r.http_failed / total_http if total_http else 1.0
    report = {
        "seed": args.seed,
        "duration_s": args.duration,
        "faults_injected": len(r.injected),
        "faults_by_kind": _count(f["kind"] for f in r.injected if "error" not in f),
        "faults_not_injected": [f for f in r.injected if "error" in f],
        "converged": not problems,
        "convergence_after_last_fault_s": round(convergence, 2) if convergence is not None else None,
        "unconverged_problems": problems,
        "writes": len(r.writes),
        "writes_ok": sum(w.outcome == "ok" for w in r.writes),
        "writes_unknown": sum(w.outcome == "unknown" for w in r.writes),
        "writes_failed": sum(w.outcome == "failed" for w in r.writes),
        "acknowledged_writes_lost": len(lost),
        "lost_examples": lost[:5],
        "writes_duplicated": len(dup),
        "reads": len(r.reads),
        "reads_failed": sum(x.value is None for x in r.reads),
        "reads_stale": len(stale),
        "stale_examples": stale[:5],
        "http_requests": total_http,
        "http_failed": r.http_failed,
        "http_failure_rate": round(http_rate, 5),
        "http_errors": r.http_errors,
    }
    report["checks"] = {
        "no acknowledged write lost": len(lost) == 0,
        "no write applied twice": len(dup) == 0,
        "no read returned a value older than an acknowledged write": len(stale) == 0,
        "pods per deployment == replicas, no pod running twice": not problems,
        f"converged within {args.converge_limit:g} s of the last fault": convergence is not None
        and convergence <= args.converge_limit,
        "HTTP failure rate < 1%": http_rate < 0.01,
    }
    report["passed"] = all(report["checks"].values())
    for w in [*writers, *register_writers]:
        await w.close()
    await client.close()
    return report


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in items:
        out[i] = out.get(i, 0) + 1
    return out


def print_table(report: dict[str, Any]) -> None:
    rows = [
        ("faults injected", f"{report['faults_injected']} {report['faults_by_kind']}"),
        ("convergence after last fault", f"{report['convergence_after_last_fault_s']} s"),
        ("API writes (ok/unknown/failed)", f"{report['writes']} ({report['writes_ok']}/{report['writes_unknown']}/{report['writes_failed']})"),
        ("acknowledged writes lost", report["acknowledged_writes_lost"]),
        ("writes applied twice", report["writes_duplicated"]),
        ("reads (failed / stale)", f"{report['reads']} ({report['reads_failed']} / {report['reads_stale']})"),
        ("HTTP requests / failed", f"{report['http_requests']} / {report['http_failed']} ({report['http_failure_rate'] * 100:.2f}%)"),
    ]  # fmt: skip
    print()
    for k, v in rows:
        print(f"  {k:32} {v}")
    for name, ok in report["checks"].items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    for p in report["unconverged_problems"]:
        print(f"  not converged: {p}")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=90.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workers", type=int, default=5)
    p.add_argument("--replicas", type=int, default=6)
    p.add_argument("--http-rate", type=float, default=40.0, help="new-connection HTTP requests per second")
    p.add_argument("--converge-limit", type=float, default=15.0)
    p.add_argument("--converge-timeout", type=float, default=60.0)
    p.add_argument("--state-dir", type=Path, default=None, help="default: a fresh temporary directory")
    p.add_argument("--master-base", default="127.0.31")
    p.add_argument("--worker-base", default="127.0.32")
    p.add_argument("--lb-address", default="127.0.33.1")
    p.add_argument("--json", type=Path, default=None, help="also write the report here")
    p.add_argument("--keep", action="store_true", help="leave the cluster running at the end")
    p.add_argument(
        "--sabotage",
        choices=["delete-acked-write", "stale-read"],
        help="break the cluster on purpose before the checks, to show that they fail",
    )
    args = p.parse_args()
    state = args.state_dir or Path(tempfile.mkdtemp(prefix="skiff-chaos-"))
    cluster = Cluster(state, args)
    report: dict[str, Any] = {}
    try:
        cluster.up()
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            report = runner.run(run(args, cluster))
    finally:
        if not args.keep:
            cluster.down()
    print_table(report)
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.write_text(text)
    print(text)
    sys.exit(0 if report.get("passed") else 1)


if __name__ == "__main__":
    main()
