"""`skiff up|down|start|stop|kill`: a local cluster of separate processes on loopback addresses.

Each master, agent and balancer runs as its own process group (start_new_session, orchestrator.procs)
with its output in logs/<name>.log; pids.json records what was started so `down` stops exactly those
groups (never by name).
Readiness is decided by health checks and the API (a leader, Ready nodes), with a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator import certs, kubeconfig
from orchestrator.auth import NODE_PREFIX
from orchestrator.cli.config import config_path, default_config_path
from orchestrator.cli.parser import Subcommands
from orchestrator.procs import group_alive, is_ours, signal_group, spawn, stop_records, tail
from orchestrator.transport import ClientTLS, health

PIDS = "pids.json"
LAYOUT = "layout.json"


class LaunchError(Exception):
    """A launcher failure; the first line is the error, further lines (a log tail) may follow."""


def default_state_dir() -> Path:
    return Path.home() / ".skiff" / "cluster"


def resolve_state_dir(args: argparse.Namespace) -> Path:
    """--state-dir, else the stateDir of the client config (--config, $SKIFF_CONFIG, ~/.skiff), else default."""
    if getattr(args, "state_dir", None):
        return Path(args.state_dir).expanduser().resolve()
    path, _ = config_path(getattr(args, "config", None), os.environ)
    try:
        data = json.loads(path.read_text())
        if data.get("stateDir"):
            return Path(data["stateDir"])
    except (OSError, ValueError, AttributeError):
        pass
    return default_state_dir()


# ---------------------------------------------------------------- modules and state files


def available(module: str) -> bool:
    """Whether `python -m module` can run (its __main__ exists)."""
    try:
        return importlib.util.find_spec(f"{module}.__main__") is not None
    except (ImportError, ValueError):
        return False


def read_pids(state: Path) -> dict[str, Any]:
    try:
        return json.loads((state / PIDS).read_text())
    except (OSError, ValueError):
        return {"stateDir": str(state), "processes": []}


def write_json(path: Path, data: Any, mode: int = 0o644) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


# ---------------------------------------------------------------- layout


def free_port(host: str, avoid: set[int] | None = None) -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in (avoid or set()):
            return port
    raise LaunchError(f"no free port on {host}")


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def parse_sizes(text: str | None, cpu: str, memory: str, n: int) -> list[tuple[str, str]]:
    """'4:8Gi,2:4Gi' -> one (cpu, memory) per worker, cycling through the list; default cpu/memory."""
    if not text:
        return [(cpu, memory)] * n
    sizes = []
    for part in text.split(","):
        if ":" not in part:
            raise LaunchError(f"invalid --worker-sizes entry {part!r}: expected CPU:MEMORY, e.g. 4:8Gi")
        c, m = part.split(":", 1)
        sizes.append((c.strip(), m.strip()))
    return [sizes[i % len(sizes)] for i in range(n)]


@dataclass
class Layout:
    masters: list[dict[str, str]]  # name, address, api, raft
    workers: list[dict[str, str]]  # name, address, cpu, memory
    lb: dict[str, Any] | None


def plan(args: argparse.Namespace, state: Path, lb_enabled: bool) -> Layout:
    """Addresses and ports. A restarted cluster reuses its masters' ports (Raft peers are fixed)."""
    old: dict[str, Any] = {}
    try:
        old = json.loads((state / LAYOUT).read_text())
    except (OSError, ValueError):
        pass
    old_masters = {m["name"]: m for m in old.get("masters", [])}
    masters = []
    for i in range(1, args.masters + 1):
        name, addr = f"m{i}", f"{args.master_address_base}.{i}"
        prev = old_masters.get(name)
        if prev and prev["address"] == addr and prev.get("kubeApi"):
            ports = [int(prev[k].rsplit(":", 1)[1]) for k in ("api", "raft", "kubeApi")]
            if all(port_free(addr, port) for port in ports):
                masters.append(prev)
                continue
        api_port = free_port(addr)
        raft_port = free_port(addr, {api_port})
        kube_port = free_port(addr, {api_port, raft_port})
        masters.append(
            {
                "name": name,
                "address": addr,
                "api": f"{addr}:{api_port}",
                "raft": f"{addr}:{raft_port}",
                "kubeApi": f"{addr}:{kube_port}",
            }
        )
    sizes = parse_sizes(args.worker_sizes, args.worker_cpu, args.worker_memory, args.workers)
    workers = [
        {
            "name": f"worker-{i}",
            "address": f"{args.worker_address_base}.{i}",
            "cpu": sizes[i - 1][0],
            "memory": sizes[i - 1][1],
        }
        for i in range(1, args.workers + 1)
    ]
    lb = None
    if lb_enabled:
        a = args.lb_address
        http = args.http_port or free_port(a)
        health = free_port(a, {http})
        metrics = free_port(a, {http, health})
        lb = {
            "address": a,
            "httpPort": http,
            "metricsPort": metrics,
            "healthPort": health,
            "apiPort": args.api_port,
        }
    return Layout(masters, workers, lb)


KUBE_NAME = "skiff"


def cluster_pki(state: Path, layout: Layout) -> dict[str, Path]:
    """The cluster CA and a server certificate per process: a master's names its own address and
    the balancer's (kubectl reaches every master through the balancer's API port, TLS passing
    through), an agent's its node address (its log server), the balancer's its address (health)."""
    extra = [layout.lb["address"]] if layout.lb and layout.lb.get("apiPort") else []
    names = {m["name"]: [m["address"], *extra] for m in layout.masters}
    names.update({w["name"]: [w["address"]] for w in layout.workers})
    if layout.lb:
        names["lb"] = [layout.lb["address"]]
    return certs.ensure_cluster_pki(state / "pki", names=names, now=datetime.now(UTC))


def tls_flags(pki: dict[str, Path], name: str) -> list[str]:
    """The flags that give process `name` its certificate and the cluster CA."""
    return ["--tls-cert-file", str(pki[f"{name}.crt"]), "--tls-key-file", str(pki[f"{name}.key"]),
            "--ca-file", str(pki["ca.crt"])]  # fmt: skip


def join_flags(state: Path, name: str, addresses: list[str]) -> list[str]:
    """tls_flags for a process that joins the cluster of `state` by hand (another agent): its
    certificate, for `addresses`, is issued by the cluster CA first (or kept when it has one)."""
    pki = certs.ensure_cluster_pki(state / "pki", names={name: addresses}, now=datetime.now(UTC))
    return tls_flags(pki, name)


def api_server_url(layout: Layout) -> str:
    """The one Kubernetes API URL a kubeconfig holds: the balancer's API port, else the first master."""
    if layout.lb and layout.lb.get("apiPort"):
        return f"https://{layout.lb['address']}:{layout.lb['apiPort']}"
    return f"https://{layout.masters[0]['kubeApi']}"


def kubeconfig_target(args: argparse.Namespace) -> Path:
    """Where kubectl reads its config: --kubeconfig, else $KUBECONFIG's rule, else ~/.kube/config."""
    explicit = Path(args.kubeconfig).expanduser() if getattr(args, "kubeconfig", None) else None
    return kubeconfig.path_for_write(os.environ, Path.home(), explicit=explicit)


def kube_entry(state: Path, server: str, token: str) -> dict[str, Any]:
    ca = (state / "pki" / "ca.crt").read_bytes()
    return kubeconfig.entry(KUBE_NAME, server, ca, token)


def merge_kubeconfig(args: argparse.Namespace, state: Path, server: str, token: str) -> Path:
    """Merge the skiff cluster, user and context into the user's kubeconfig and make it current,
    as `kind create cluster` does."""
    target = kubeconfig_target(args)
    merged = kubeconfig.merge(kubeconfig.load(target), kube_entry(state, server, token))
    kubeconfig.save(target, merged)
    return target


def forget_kubeconfig(state: Path) -> None:
    """Remove exactly the entries `up` merged into the kubeconfig it recorded (kind delete cluster)."""
    try:
        recorded = json.loads((state / "config.json").read_text()).get("kubeconfig")
    except (OSError, ValueError):
        return
    if not recorded:
        return
    path = Path(recorded)
    try:
        current = kubeconfig.load(path)
    except (OSError, ValueError) as e:
        print(f"warning: kubeconfig {path} not updated: {e}", file=sys.stderr)
        return
    kubeconfig.save(path, kubeconfig.remove(current, KUBE_NAME))


def cmd_kubeconfig(args: argparse.Namespace) -> int:
    """Print a kubeconfig for this cluster with the token of a role (admin by default)."""
    state = resolve_state_dir(args)
    try:
        config = json.loads((state / "config.json").read_text())
    except (OSError, ValueError):
        raise LaunchError(f"no cluster recorded in {state} (run skiff up first)") from None
    tokens = load_tokens(state)
    if args.role not in tokens:
        raise LaunchError(f"no {args.role!r} token in {state} (roles: {', '.join(sorted(tokens))})")
    sys.stdout.write(kubeconfig.dump(kube_entry(state, config["kubeApiServer"], tokens[args.role])))
    return 0


def load_tokens(state: Path, nodes: Iterable[str] = ()) -> dict[str, str]:
    """identity -> token ("admin", "viewer", "node", and "node:<name>" for each of `nodes`: a node's
    own credential); reuses the state dir's tokens so an existing config stays valid. Each token is
    also written to <identity>.token (a node's as <name>.token), 0600."""
    path = state / "tokens.json"
    known: dict[str, str] = {}
    try:
        for tok, ident in json.loads(path.read_text()).items():
            known.setdefault(ident, tok)
    except (OSError, ValueError, AttributeError):
        pass
    wanted = ["admin", "node", "viewer", *(f"{NODE_PREFIX}{n}" for n in nodes)]
    for ident in wanted:
        known.setdefault(ident, secrets.token_urlsafe(32))
    write_secret(path, json.dumps({tok: ident for ident, tok in known.items()}, indent=2) + "\n")
    for ident, tok in known.items():
        write_secret(state / f"{ident.removeprefix(NODE_PREFIX)}.token", tok + "\n")
    return known


def cmd_revoke_node(args: argparse.Namespace) -> int:
    """Revoke one node's credential: the masters re-read the tokens file within a second, end that
    node's stream and refuse it from then on; the other nodes are untouched."""
    state = resolve_state_dir(args)
    path = state / "tokens.json"
    try:
        tokens = json.loads(path.read_text())
    except (OSError, ValueError):
        raise LaunchError(f"no cluster recorded in {state}") from None
    ident = f"{NODE_PREFIX}{args.name}"
    if ident not in tokens.values():
        raise LaunchError(f'no credential of node "{args.name}" in {path}')
    write_secret(path, json.dumps({t: i for t, i in tokens.items() if i != ident}, indent=2) + "\n")
    (state / f"{args.name}.token").unlink(missing_ok=True)
    print(f'node "{args.name}": credential revoked')
    return 0


# ---------------------------------------------------------------- waiting


class Watchdog:
    """Fails the wait as soon as a started process exits, naming it and showing its log's tail."""

    def __init__(self, procs: dict[str, tuple[subprocess.Popen[bytes], dict[str, Any]]]) -> None:
        self.procs = procs

    def check(self) -> None:
        for name, (proc, rec) in self.procs.items():
            code = proc.poll()
            if code is not None:
                raise LaunchError(
                    f"{name} exited with status {code} during startup (log: {rec['log']}); last lines:\n"
                    + tail(rec["log"])
                )


async def wait_for(
    what: str, probe: Callable[[], Any], deadline: float, dog: Watchdog, describe: Callable[[], str]
) -> None:
    """Poll the async `probe` until it returns true, the deadline passes, or a process dies."""
    delay = 0.05
    while True:
        dog.check()
        if await probe():
            return
        if time.monotonic() > deadline:
            raise LaunchError(f"timed out waiting for {what}: {describe()}")
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.5)


async def wait_masters(layout: Layout, token: str, tls: ClientTLS, deadline: float, dog: Watchdog) -> None:
    from orchestrator.client import ApiClient

    last: dict[str, str] = {}

    async def healthy() -> bool:
        results = await asyncio.gather(*(health(m["api"], tls) for m in layout.masters))
        last.update({m["name"]: r for m, r in zip(layout.masters, results, strict=True)})
        return all(r == "SERVING" for r in results)

    await wait_for(
        "master health", healthy, deadline, dog, lambda: ", ".join(f"{k}={v}" for k, v in last.items())
    )
    async with ApiClient([m["api"] for m in layout.masters], token, tls=tls) as client:
        seen = {"leader": ""}

        async def leader() -> bool:
            for m in layout.masters:
                try:
                    st = await client.status(m["api"], timeout=1.0)
                except Exception as e:  # noqa: BLE001 - any failure just means "not yet"
                    seen["leader"] = f"{m['name']}: {e}"
                    continue
                if st.role == "leader" or st.leader:
                    return True
                seen["leader"] = f"{m['name']} sees no leader (role {st.role}, term {st.term})"
            return False

        await wait_for("a Raft leader", leader, deadline, dog, lambda: seen["leader"])


async def wait_nodes(layout: Layout, token: str, tls: ClientTLS, deadline: float, dog: Watchdog) -> None:
    from orchestrator.client import ApiClient

    want = {w["name"] for w in layout.workers}
    ready: set[str] = set()
    async with ApiClient([m["api"] for m in layout.masters], token, tls=tls, timeout=2.0) as client:

        async def all_ready() -> bool:
            try:
                nodes, _ = await client.list("Node")
            except Exception:  # noqa: BLE001
                return False
            ready.clear()
            for n in nodes:
                for c in (n.get("status") or {}).get("conditions") or []:
                    if c.get("type") == "Ready" and c.get("status") == "True":
                        ready.add(n["metadata"]["name"])
            return want <= ready

        await wait_for(
            "nodes Ready", all_ready, deadline, dog, lambda: f"not Ready: {', '.join(sorted(want - ready))}"
        )


async def wait_lb(lb: dict[str, Any], tls: ClientTLS, deadline: float, dog: Watchdog) -> None:
    last = {"s": ""}

    async def serving() -> bool:
        last["s"] = await health(f"{lb['address']}:{lb['healthPort']}", tls)
        return last["s"] == "SERVING"

    await wait_for("balancer health", serving, deadline, dog, lambda: last["s"])


# ---------------------------------------------------------------- commands


def cmd_up(args: argparse.Namespace) -> int:
    state = Path(args.state_dir).expanduser().resolve() if args.state_dir else default_state_dir()
    state.mkdir(parents=True, exist_ok=True)
    running = running_names(state)
    if running:
        raise LaunchError(
            f"a cluster is already running in {state} ({', '.join(running)}); run 'skiff down' first"
        )
    if args.fresh:
        discard_state(state)
    if not available("orchestrator"):
        raise LaunchError("the master is not available (python -m orchestrator has no __main__)")
    if args.masters < 1:
        raise LaunchError("--masters must be at least 1")
    workers_ok = available("agents")
    if args.workers and not workers_ok:
        print("warning: agents/__main__.py is missing: starting no workers", file=sys.stderr)
        args.workers = 0
    lb_enabled = args.lb
    if lb_enabled and not available("lb"):
        print("warning: lb/__main__.py is missing: starting no load balancer", file=sys.stderr)
        lb_enabled = False
    layout = plan(args, state, lb_enabled)
    tokens = load_tokens(state, [w["name"] for w in layout.workers])
    write_json(state / LAYOUT, {"masters": layout.masters, "workers": layout.workers, "lb": layout.lb})
    logs = state / "logs"
    logs.mkdir(exist_ok=True)
    pki = cluster_pki(state, layout)
    tls = ClientTLS.from_file(str(pki["ca.crt"]))
    raft_secret = state / "raft.secret"
    if not raft_secret.exists():  # one random secret per cluster, kept across restarts
        write_secret(raft_secret, secrets.token_urlsafe(32) + "\n")
    py = sys.executable
    masters_csv = ",".join(m["api"] for m in layout.masters)
    records: list[dict[str, Any]] = []
    for m in layout.masters:
        data = state / "masters" / m["name"]
        data.mkdir(parents=True, exist_ok=True)
        peers = ",".join(o["raft"] for o in layout.masters if o is not m)
        argv = [py, "-m", "orchestrator", "--name", m["name"], "--api", m["api"], "--raft", m["raft"]]
        if peers:
            argv += ["--peers", peers]
        argv += [
            "--kube-api", m["kubeApi"], *tls_flags(pki, m["name"]),
            *(["--ingress-address", f"{layout.lb['address']}:{layout.lb['httpPort']}"] if layout.lb else []),
            "--raft-secret-file", str(raft_secret), "--audit-log", str(logs / f"audit-{m['name']}.log"),
            "--data-dir", str(data), "--tokens-file", str(state / "tokens.json"),
            "--node-grace", str(args.node_grace), "--pod-eviction-timeout", str(args.pod_eviction_timeout),
            "--log-level", args.log_level,
        ]  # fmt: skip
        records.append({"name": m["name"], "role": "master", "argv": argv, "log": str(logs / f"{m['name']}.log"),
                        "api": m["api"], "raft": m["raft"], "dataDir": str(data)})  # fmt: skip
    for w in layout.workers:
        wdir = state / "workers" / w["name"]
        wdir.mkdir(parents=True, exist_ok=True)
        argv = [
            py, "-m", "agents", "--name", w["name"], "--address", w["address"], "--masters", masters_csv,
            "--token-file", str(state / f"{w['name']}.token"), "--state-dir", str(wdir), *tls_flags(pki, w["name"]),
            "--cpu", w["cpu"], "--memory", w["memory"], "--log-level", args.log_level,
        ]  # fmt: skip
        records.append({"name": w["name"], "role": "worker", "argv": argv, "log": str(logs / f"{w['name']}.log"),
                        "address": w["address"], "stateDir": str(wdir)})  # fmt: skip
    if layout.lb:
        lb = layout.lb
        argv = [
            # Least privilege: the balancer only reads and watches Services, Endpoints and Ingresses.
            py, "-m", "lb", "--masters", masters_csv, "--token-file", str(state / "viewer.token"),
            "--address", lb["address"], "--http-port", str(lb["httpPort"]), "--workers", str(args.lb_workers),
            "--metrics-port", str(lb["metricsPort"]), "--health-port", str(lb["healthPort"]),
            *tls_flags(pki, "lb"), "--log-level", args.log_level,
        ]  # fmt: skip
        if lb["apiPort"]:
            kube_apis = ",".join(m["kubeApi"] for m in layout.masters)
            argv += ["--fixed-service", f"kube-api={lb['apiPort']}:{kube_apis}"]
        records.append({"name": "lb", "role": "lb", "argv": argv, "log": str(logs / "lb.log"), **lb})

    procs: dict[str, tuple[subprocess.Popen[bytes], dict[str, Any]]] = {}
    pids = {"stateDir": str(state), "processes": records}

    def start(role: str) -> None:
        for rec in records:
            if rec["role"] == role:
                procs[rec["name"]] = (spawn(rec), rec)
        write_json(state / PIDS, pids)

    deadline = time.monotonic() + args.timeout
    dog = Watchdog(procs)
    try:
        start("master")
        asyncio.run(wait_masters(layout, tokens["admin"], tls, deadline, dog))
        start("worker")
        start("lb")
        if layout.workers:
            asyncio.run(wait_nodes(layout, tokens["admin"], tls, deadline, dog))
        if layout.lb:
            asyncio.run(wait_lb(layout.lb, tls, deadline, dog))
    except BaseException:
        if not args.keep_on_failure:
            stop_records([r for r in records if "pid" in r], timeout=5.0)
            (state / PIDS).unlink(missing_ok=True)
        raise

    config: dict[str, Any] = {
        "masters": [m["api"] for m in layout.masters],
        "token": tokens["admin"],
        "caFile": str(pki["ca.crt"]),
        "stateDir": str(state),
    }
    if layout.lb:
        config["lb"] = layout.lb
    kube_server = api_server_url(layout)
    kubeconfig_file = merge_kubeconfig(args, state, kube_server, tokens["admin"])
    config["kubeconfig"] = str(kubeconfig_file)
    config["kubeApiServer"] = kube_server
    write_json(state / "config.json", config, 0o600)
    target = Path(args.config).expanduser() if args.config else default_config_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    write_json(target, config, 0o600)
    print(f"cluster is up: {len(layout.masters)} masters, {len(layout.workers)} workers, "
          f"{'a' if layout.lb else 'no'} load balancer")  # fmt: skip
    for rec in records:
        where = rec.get("api") or rec.get("address", "")
        print(f"  {rec['name']:<10} {rec['role']:<7} pid {rec['pid']:<8} {where}")
    if layout.lb:
        print(f"  ingress/http at http://{layout.lb['address']}:{layout.lb['httpPort']}")
    print(
        f"kubernetes api: {kube_server} (masters: {', '.join('https://' + m['kubeApi'] for m in layout.masters)})"
    )
    print(f"kubeconfig: {kubeconfig_file} (context {KUBE_NAME}; kubectl get nodes)")
    print(f"config:  {target}")
    print(f"logs:    {logs}/<name>.log")
    print(f"data:    {state}/masters, {state}/workers")
    print("stop it with: skiff down" + (f" --state-dir {state}" if args.state_dir else ""))
    return 0


def running_names(state: Path) -> list[str]:
    """The recorded processes of the cluster in `state` that are still alive (ours)."""
    return [r["name"] for r in read_pids(state)["processes"] if is_ours(r)]


def cleanup_worker(worker_state: Path) -> None:
    """Stop the containers a (stopped) worker left and remove their records: `python -m agents cleanup`."""
    subprocess.run(
        [sys.executable, "-m", "agents", "cleanup", "--state-dir", str(worker_state)],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=False,
    )  # fmt: skip


def discard_state(state: Path) -> None:
    """Forget a stopped cluster: stop containers its workers left, then delete the masters' Raft data,
    the workers' state and the logs. The tokens stay."""
    workers = state / "workers"
    if available("agents") and workers.is_dir():
        for wdir in sorted(p for p in workers.iterdir() if p.is_dir()):
            cleanup_worker(wdir)
    for sub in ("masters", "workers", "logs"):
        shutil.rmtree(state / sub, ignore_errors=True)


def cmd_down(args: argparse.Namespace) -> int:
    state = resolve_state_dir(args)
    pids = read_pids(state)
    records = pids["processes"]
    if not records and not (state / PIDS).exists():
        print(f"no cluster recorded in {state}", file=sys.stderr)
        return 0
    order = {"lb": 0, "worker": 1, "master": 2}
    records.sort(key=lambda r: order.get(r.get("role", ""), 3))
    stopped = stop_records(records, timeout=args.timeout)
    cleaned = 0
    if available("agents"):
        for r in records:
            if r.get("role") == "worker" and r.get("stateDir") and Path(r["stateDir"]).exists():
                try:
                    cleanup_worker(Path(r["stateDir"]))
                    cleaned += 1
                except subprocess.TimeoutExpired:
                    print(f"warning: cleanup of {r['name']} timed out", file=sys.stderr)
    (state / PIDS).unlink(missing_ok=True)
    forget_kubeconfig(state)
    print(
        f"stopped {len(stopped)} processes ({', '.join(stopped) or 'none running'}); cleaned {cleaned} workers"
    )
    return 0


def _record(state: Path, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    pids = read_pids(state)
    for r in pids["processes"]:
        if r["name"] == name:
            return pids, r
    known = ", ".join(r["name"] for r in pids["processes"]) or "none"
    raise LaunchError(f'no process named "{name}" recorded in {state / PIDS} (known: {known})')


def cmd_start(args: argparse.Namespace) -> int:
    state = resolve_state_dir(args)
    pids, rec = _record(state, args.name)
    if is_ours(rec):
        print(f"{rec['name']} is already running (pid {rec['pid']})")
        return 0
    spawn(rec)
    write_json(state / PIDS, pids)
    print(f"{rec['name']} started (pid {rec['pid']})")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    state = resolve_state_dir(args)
    _, rec = _record(state, args.name)
    if not stop_records([rec], timeout=args.timeout):
        print(f"{rec['name']} is not running")
        return 0
    print(f"{rec['name']} stopped")
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    state = resolve_state_dir(args)
    _, rec = _record(state, args.name)
    sig = (
        int(args.signal)
        if str(args.signal).isdigit()
        else getattr(signal, "SIG" + str(args.signal).upper().removeprefix("SIG"))
    )
    if not signal_group(rec, sig):
        print(f"{rec['name']} is not running")
        return 0
    print(f"{rec['name']} killed (signal {signal.Signals(sig).name} to process group {rec['pgid']})")
    if getattr(args, "with_containers", False):
        if rec.get("role") != "worker":
            raise LaunchError(f"{rec['name']} is not a worker: --with-containers needs one")
        groups = container_groups(Path(rec["stateDir"]))
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
        print(f"{rec['name']}: signal {signal.Signals(sig).name} to {len(groups)} container process groups")
    return 0


def container_groups(worker_dir: Path) -> list[int]:
    """Process groups of the worker's live containers and their shims (from the agent's run.json files)."""
    groups: set[int] = set()
    for run in worker_dir.glob("pods/*/*/run.json"):
        try:
            info = json.loads(run.read_text())
        except (OSError, ValueError):
            continue
        for key in ("pgid", "shimPid"):
            pgid = info.get(key)
            if isinstance(pgid, int) and group_alive(pgid):
                groups.add(pgid)
    return sorted(groups)


def _wrap(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except LaunchError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            return 1

    return run


def register(sub: Subcommands) -> None:
    """up/down/start/stop/kill: local verbs (they need no cluster to answer), each with --state-dir."""

    def cmd(name: str, help_: str, fn: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        p = sub.add(name, help_, local=_wrap(fn))
        p.add_argument("--state-dir", help="cluster state directory (default ~/.skiff/cluster)")
        return p

    p = cmd("up", "Start a local cluster (masters, workers, load balancer) on loopback addresses", cmd_up)
    p.add_argument("--masters", type=int, default=3)
    p.add_argument("--workers", type=int, default=5)
    p.add_argument(
        "--lb", action=argparse.BooleanOptionalAction, default=True, help="start the load balancer"
    )
    p.add_argument("--lb-workers", type=int, default=2)
    p.add_argument(
        "--http-port", type=int, default=8080, help="the balancer's HTTP (ingress) port; 0 = any free"
    )
    p.add_argument("--worker-cpu", default="2")
    p.add_argument("--worker-memory", default="4Gi")
    p.add_argument("--worker-sizes", help="CPU:MEMORY per worker, cycled, e.g. 4:8Gi,2:4Gi")
    p.add_argument("--node-grace", default="3", help="seconds without heartbeats before a node is NotReady")
    p.add_argument("--pod-eviction-timeout", default="2", help="seconds NotReady before its pods are evicted")
    p.add_argument("--master-address-base", default="127.0.1", help="masters get BASE.1 .. BASE.N")
    p.add_argument("--worker-address-base", default="127.0.2", help="workers get BASE.1 .. BASE.N")
    p.add_argument("--lb-address", default="127.0.0.1")
    p.add_argument(
        "--api-port",
        type=int,
        default=6443,
        help="the balancer's Kubernetes API port (0 = kubeconfig names m1)",
    )
    p.add_argument("--kubeconfig", help="kubeconfig to merge into (default $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the cluster to be ready")
    p.add_argument("--keep-on-failure", action="store_true", help="leave processes running if startup fails")
    p.add_argument(
        "--fresh", action="store_true", help="discard the stored state of the (stopped) cluster first"
    )

    p = cmd("down", "Stop the local cluster's recorded processes and their containers", cmd_down)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL")

    p = cmd("revoke-node", "Revoke one node's credential (its agent is cut off)", cmd_revoke_node)
    p.add_argument("name", metavar="NODE")

    p = cmd("kubeconfig", "Print a kubeconfig for the local cluster", cmd_kubeconfig)
    p.add_argument("--role", default="admin", choices=("admin", "viewer"), help="whose token it carries")

    p = cmd("start", "Start one recorded process again (after stop or kill)", cmd_start)
    p.add_argument("name", metavar="NAME")
    p = cmd("stop", "Stop one recorded process (SIGTERM, then SIGKILL)", cmd_stop)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--timeout", type=float, default=10.0)
    p = cmd("kill", "Send a signal (default KILL) to one recorded process group", cmd_kill)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--signal", default="KILL", dest="signal", help="KILL, STOP, CONT, TERM or a number")
    p.add_argument(
        "--with-containers",
        action="store_true",
        help="a worker: signal its containers' process groups too (a whole machine failing)",
    )
