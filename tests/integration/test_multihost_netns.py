"""Beyond one machine: masters and agents each on their own "host" (a network namespace on a bridge).

Needs root (skipped otherwise). The test builds, and always removes, this topology:

    host (the test, CLI, ApiClient) 10.77.0.254 -- bridge skbr<tag>
        |-- netns sk<tag>-m1  eth0 10.77.0.1    master m1   (api :7000, raft :7100)
        |-- netns sk<tag>-m2  eth0 10.77.0.2    master m2
        |-- netns sk<tag>-m3  eth0 10.77.0.3    master m3
        |-- netns sk<tag>-w1  eth0 10.77.0.11   agent w1    (its pods bind 10.77.0.11)
        |-- netns sk<tag>-w2  eth0 10.77.0.12   agent w2
        `-- netns sk<tag>-w3  eth0 10.77.0.13   agent w3

Each "host" has its own directory (its own copy of the tokens file / node token, data or state dir), and
no namespace has a route to anything but 10.77.0.0/24: nothing can work by reaching 127.0.0.1 or a
shared socket. Masters run Raft with --raft-secret-file. The flow: the seed flow (skiff run demo, scale to
4, pods Running on several agents, GET hostIP:hostPort answered with the pod's name, also from another
agent's namespace, skiff logs through a master), then the Raft leader is cut off from every other
master and agent by iptables DROP inside its namespace (the host keeps reaching its API, standing in for
a client on the minority side): a write sent to it fails with UNAVAILABLE within a bound, while the
majority elects a leader and accepts writes. The link is healed and the cut-off master catches up
(equal revision and state digest on all three, the majority's write readable from it).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest

from orchestrator import certs, errors
from orchestrator.client import ApiClient
from orchestrator.transport import ClientTLS
from skiffpb import api_pb2 as api
from tests.integration.masters import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.root, pytest.mark.timeout(240)]

T = TypeVar("T")
SUBNET = "10.77.0"
HOST_IP = f"{SUBNET}.254"
MASTERS = {"m1": f"{SUBNET}.1", "m2": f"{SUBNET}.2", "m3": f"{SUBNET}.3"}
AGENTS = {"w1": f"{SUBNET}.11", "w2": f"{SUBNET}.12", "w3": f"{SUBNET}.13"}
API_PORT, RAFT_PORT = 7000, 7100
NODE_GRACE = 5
TOKENS = {"admin-token": "admin", "viewer-token": "viewer", "node-token": "node"}
RAFT_PASSWORD = "multihost-" + uuid.uuid4().hex
SKIFF = str(Path(sys.executable).with_name("skiff"))


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=check)


def _why_not_runnable() -> str | None:
    """Why this machine cannot run the test (a skip reason), or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root: creates network namespaces, a bridge, veth pairs and iptables rules"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"needs the `{tool}` command"
    addrs = _run("ip", "-o", "-4", "addr", "show", check=False).stdout
    if f" {SUBNET}." in addrs:
        return f"{SUBNET}.0/24 is already in use on this host"
    probe = f"skprobe{os.getpid() % 100000}"
    r = _run("ip", "netns", "add", probe, check=False)
    if r.returncode != 0:
        return f"cannot create a network namespace: {r.stderr.strip()}"
    _run("ip", "netns", "del", probe, check=False)
    return None


class Lab:
    """The namespaces, veth pairs and bridge of one test run; `destroy()` removes exactly those."""

    def __init__(self, tmp: Path) -> None:
        self.tag = f"{os.getpid() % 10000:04d}"
        self.bridge = f"skbr{self.tag}"
        self.tmp = tmp
        self.namespaces: list[str] = []
        self.links: list[str] = []  # host-side veth ends
        self.bridge_made = False
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def ns(self, host: str) -> str:
        return f"sk{self.tag}-{host}"

    def veth(self, host: str) -> str:
        return f"skv{self.tag}{host}"

    # ------------------------------------------------------------ network

    def create(self, hosts: dict[str, str]) -> None:
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        self.bridge_made = True
        _run("ip", "addr", "add", f"{HOST_IP}/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for host, address in hosts.items():
            ns, veth, peer = self.ns(host), self.veth(host), f"skp{self.tag}{host}"
            _run("ip", "netns", "add", ns)
            self.namespaces.append(ns)
            _run("ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
            self.links.append(veth)
            _run("ip", "link", "set", peer, "netns", ns)
            _run("ip", "link", "set", veth, "master", self.bridge)
            _run("ip", "link", "set", veth, "up")
            _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            _run("ip", "netns", "exec", ns, "ip", "link", "set", peer, "name", "eth0")
            _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
            _run("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")

    def cut(self, host: str, peers: list[str]) -> None:
        """Drop everything between `host` and each address of `peers`, both ways (iptables in its netns)."""
        ns = self.ns(host)
        for peer in peers:
            for chain, side in (("INPUT", "-s"), ("OUTPUT", "-d")):
                _run("ip", "netns", "exec", ns, "iptables", "-A", chain, side, peer, "-j", "DROP")

    def heal(self, host: str) -> None:
        ns = self.ns(host)
        _run("ip", "netns", "exec", ns, "iptables", "-F", "INPUT")
        _run("ip", "netns", "exec", ns, "iptables", "-F", "OUTPUT")

    # ------------------------------------------------------------ processes

    def spawn(self, host: str, *args: str) -> None:
        """Run `python ARGS` inside host's namespace, in its own process group, logging to its file."""
        log_path = self.tmp / f"{host}.log"
        self.logs[host] = log_path
        argv = ["ip", "netns", "exec", self.ns(host), sys.executable, *args]
        with open(log_path, "ab") as log:
            # `ip netns exec` execs the command: the pid (and process group) is the Python process's.
            self.procs[host] = subprocess.Popen(
                argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def kill(self, host: str) -> None:
        proc = self.procs.pop(host, None)
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)

    def log_tails(self, lines: int = 40) -> str:
        out = []
        for host, path in self.logs.items():
            if path.exists():
                tail = "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
                out.append(f"----- {host} ({path})\n{tail}")
        return "\n".join(out)

    def destroy(self) -> None:
        """Kill every process started here (and any left in our namespaces), then delete the network."""
        for host in list(self.procs):
            self.kill(host)
        for ns in self.namespaces:
            # Containers of the agents (their own process groups) live in the agents' namespaces.
            r = _run("ip", "netns", "pids", ns, check=False)
            for pid in r.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        for ns in self.namespaces:
            _run("ip", "netns", "del", ns, check=False)
        for link in self.links:
            # Normally gone with its peer's namespace; delete it if it is still there.
            if _run("ip", "link", "show", link, check=False).returncode == 0:
                _run("ip", "link", "del", link, check=False)
        if self.bridge_made:
            _run("ip", "link", "del", self.bridge, check=False)


def leftovers(lab: Lab) -> list[str]:
    names = _run("ip", "netns", "list", check=False).stdout
    links = _run("ip", "-o", "link", "show", check=False).stdout
    out = [ns for ns in lab.namespaces if ns in names.split()]
    out += [link for link in [*lab.links, lab.bridge] if f" {link}:" in links or f" {link}@" in links]
    return out


@pytest.fixture
def lab(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Lab]:
    reason = _why_not_runnable()
    if reason:
        pytest.skip(reason)
    lab = Lab(tmp_path)
    failed_before = request.session.testsfailed
    try:
        yield lab
    finally:
        # The call's report is counted before fixtures are torn down.
        if request.session.testsfailed > failed_before:
            print(f"\n---- logs ({tmp_path}) ----\n{lab.log_tails()}", file=sys.stderr)
        t0 = time.monotonic()
        lab.destroy()
        left = leftovers(lab)
        print(f"teardown {time.monotonic() - t0:.1f}s; left behind: {left or 'nothing'}")
        assert not left, f"teardown left {left}"


async def until(fn: Callable[[], Awaitable[T | None]], what: str, timeout: float = 30.0) -> T:
    """Poll `fn` until it returns a truthy value, or fail after `timeout` with the last result."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = await fn()
        except errors.SkiffError as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last={last!r}")


def ready(pod: dict[str, Any]) -> bool:
    conds = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=3) as r:
        return r.read().decode()


@pytest.mark.parametrize(
    "links",
    [
        # The cut-off master loses every link (to masters and agents); the test host still reaches it.
        "all",
        # Only its links to the other masters go: agents still reach it, but it cannot commit.
        "masters",
    ],
)
async def test_masters_and_agents_on_separate_hosts(lab: Lab, tmp_path: Path, links: str) -> None:
    t_start = time.monotonic()
    apis = {m: f"{a}:{API_PORT}" for m, a in MASTERS.items()}
    rafts = {m: f"{a}:{RAFT_PORT}" for m, a in MASTERS.items()}
    lab.create({**MASTERS, **AGENTS})
    # One cluster CA; each host's certificate names its own address (as `skiff certs` makes them).
    pki = certs.ensure_cluster_pki(
        tmp_path / "pki", names={n: [a] for n, a in {**MASTERS, **AGENTS}.items()}, now=datetime.now(UTC)
    )

    def tls_flags(name: str) -> list[str]:
        return ["--tls-cert-file", str(pki[f"{name}.crt"]), "--tls-key-file", str(pki[f"{name}.key"]),
                "--ca-file", str(pki["ca.crt"])]  # fmt: skip

    # Each master on its own host: its own copy of the tokens file and its own data dir.
    for m in MASTERS:
        home = tmp_path / "hosts" / m
        home.mkdir(parents=True)
        (home / "tokens.json").write_text(json.dumps(TOKENS))
        (home / "raft.secret").write_text(RAFT_PASSWORD + "\n")
        (home / "raft.secret").chmod(0o600)
        peers = ",".join(r for other, r in rafts.items() if other != m)
        lab.spawn(
            m, "-m", "orchestrator", "--name", m, "--api", apis[m], "--raft", rafts[m],
            "--peers", peers, "--data-dir", str(home / "data"), "--tokens-file", str(home / "tokens.json"),
            "--raft-secret-file", str(home / "raft.secret"), "--node-grace", str(NODE_GRACE), "--pod-eviction-timeout", "10", *tls_flags(m),
        )  # fmt: skip
    for i, (w, address) in enumerate(AGENTS.items()):
        # Each agent prefers a different master (as if each were near one), so whichever master is cut
        # off, some agent loses the master it streams to.
        order = [*apis.values()][i:] + [*apis.values()][:i]
        home = tmp_path / "hosts" / w
        home.mkdir(parents=True)
        (home / "node.token").write_text("node-token\n")
        lab.spawn(
            w, "-m", "agents", "--name", w, "--address", address, "--masters", ",".join(order),
            "--token-file", str(home / "node.token"), "--state-dir", str(home / "state"),
            "--cpu", "2", "--memory", "4Gi", "--heartbeat", "0.5", *tls_flags(w),
        )  # fmt: skip

    client = ApiClient(
        list(apis.values()), "admin-token", tls=ClientTLS.from_file(str(pki["ca.crt"])), timeout=15
    )
    try:
        await multihost_flow(lab, client, apis, rafts, t_start, links)
    finally:
        await client.close()


async def statuses(client: ApiClient, apis: dict[str, str]) -> dict[str, api.MasterStatus]:
    out = {}
    for m, address in apis.items():
        try:
            out[m] = await client.status(address, timeout=1.0)
        except errors.SkiffError:
            pass
    return out


async def converged(client: ApiClient, apis: dict[str, str]) -> tuple[int, str] | None:
    st = await statuses(client, apis)
    seen = {(s.revision, s.state_digest) for s in st.values()}
    return seen.pop() if len(st) == len(apis) and len(seen) == 1 else None


async def multihost_flow(
    lab: Lab, client: ApiClient, apis: dict[str, str], rafts: dict[str, str], t_start: float, links: str
) -> None:
    env = {
        **os.environ,
        "SKIFF_SERVER": ",".join(apis.values()),
        "SKIFF_TOKEN": "admin-token",
        "SKIFF_CA_FILE": client.tls.ca_file,
    }
    env.pop("SKIFF_CONFIG", None)

    def skiff(*args: str) -> str:
        r = subprocess.run([SKIFF, *args], capture_output=True, text=True, timeout=30, env=env)
        assert r.returncode == 0, f"skiff {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r.stdout

    async def one_leader() -> str | None:
        st = await statuses(client, apis)
        leaders = [m for m, s in st.items() if s.role == "leader"]
        return leaders[0] if len(st) == 3 and len(leaders) == 1 else None

    leader = await until(one_leader, "a Raft leader known to all three masters", 30)
    st = await statuses(client, apis)
    assert {s.raft_address for s in st.values()} == set(rafts.values())

    # The Raft port speaks pickle: with a Raft secret it answers only who knows the secret.
    await asyncio.to_thread(check_raft_password, rafts[leader])

    async def nodes_ready() -> list[dict[str, Any]] | None:
        nodes, _ = await client.list("Node")
        ok = [
            n for n in nodes
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions") or [])
        ]  # fmt: skip
        return nodes if len(ok) == len(AGENTS) else None

    nodes = await until(nodes_ready, "every agent's node Ready", 30)
    for n in nodes:
        ips = {a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP"}
        assert ips == {AGENTS[n["metadata"]["name"]]}, n["status"]["addresses"]

    # ---- the seed flow, from a client on the host side of the bridge
    skiff("run", "demo", "--image=jweissig/alpine-k8s-pod-lb-demo", "--port=5005")
    skiff("scale", "--replicas=4", "deployment/demo")

    seen: dict[str, Any] = {}

    async def four_running() -> list[dict[str, Any]] | None:
        pods, _ = await client.list("Pod", "default", label_selector="app=demo")
        seen["pods"] = [
            (p["metadata"]["name"], p["spec"].get("nodeName"), p.get("status", {}).get("phase"), ready(p),
             bool(p["metadata"].get("deletionTimestamp")))
            for p in pods
        ]  # fmt: skip
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        ok = [p for p in live if p.get("status", {}).get("phase") == "Running" and ready(p)]
        return ok if len(ok) == 4 and len(live) == 4 else None

    pods = await until(four_running, "4 demo pods Running and Ready", 60)
    t_seed = time.monotonic() - t_start
    print(skiff("get", "pods", "-o", "wide"))
    on = {p["spec"]["nodeName"] for p in pods}
    assert len(on) >= 2, f"pods not spread over the agents: {on}"
    for p in pods:
        name, node = p["metadata"]["name"], p["spec"]["nodeName"]
        assert p["status"]["hostIP"] == AGENTS[node], p["status"]
        mapping = p["status"]["portMappings"][0]
        assert mapping["containerPort"] == 5005 and mapping["hostIP"] == AGENTS[node], mapping
        body = await asyncio.to_thread(http_get, f"http://{mapping['hostIP']}:{mapping['hostPort']}/")
        assert f"Hello from {name}" in body, body
    # From one agent's host to a pod on another agent's host (no path through the test's host).
    p = next(p for p in pods if p["spec"]["nodeName"] != "w1")
    mapping = p["status"]["portMappings"][0]
    url = f"http://{mapping['hostIP']}:{mapping['hostPort']}/"
    fetch = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=3).read().decode())"
    r = _run("ip", "netns", "exec", lab.ns("w1"), sys.executable, "-c", fetch, check=False)
    assert r.returncode == 0 and f"Hello from {p['metadata']['name']}" in r.stdout, r
    # Logs travel master -> the pod's agent (its address from the Node object) with the node token.
    assert "listening" in skiff("logs", p["metadata"]["name"])

    # ---- partition: cut one master off
    pod_uids = {p["metadata"]["uid"] for p in pods}
    if links == "all":
        # The Raft leader: the majority must elect another one.
        cut = await until(one_leader, "a Raft leader", 15)
        lab.cut(cut, [a for a in [*MASTERS.values(), *AGENTS.values()] if a != MASTERS[cut]])
    else:
        # The master most agents stream to: they can still reach it, but it can commit nothing.
        served = agents_per_master(lab)
        cut = max(MASTERS, key=lambda m: len(served.get(apis[m], [])))
        assert served.get(apis[cut]), f"no agent is connected to any master: {served}"
        lab.cut(cut, [a for m, a in MASTERS.items() if m != cut])
    served_before = agents_per_master(lab)
    leader = cut
    majority = {m: a for m, a in apis.items() if m != cut}
    rev_before = (await client.status(apis[cut])).revision
    t_cut = time.monotonic()
    print(f"{time.strftime('%H:%M:%S')} cut {cut} from {links}; agents per master {served_before}")

    cut_client = ApiClient([apis[cut]], "admin-token", tls=client.tls)
    majority_client = ApiClient(list(majority.values()), "admin-token", tls=client.tls, timeout=20)
    try:
        cm = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "written-to-minority", "namespace": "default"},
            "data": {"k": "v"},
        }
        req = api.WriteRequest(request_id=uuid.uuid4().hex, object=json.dumps(cm).encode())
        t0 = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await cut_client.stub(apis[leader]).Create(
                req, metadata=(("authorization", "Bearer admin-token"),), timeout=15
            )
        refused_in = time.monotonic() - t0
        assert exc.value.code() == grpc.StatusCode.UNAVAILABLE, exc.value
        assert refused_in < 10, f"minority write took {refused_in:.1f}s to fail"

        async def majority_leader() -> str | None:
            st = await statuses(majority_client, majority)
            leaders = [m for m, s in st.items() if s.role == "leader"]
            return leaders[0] if len(st) == 2 and len(leaders) == 1 else None

        new_leader = await until(majority_leader, "a leader on the majority side", 15)
        t0 = time.monotonic()
        cm2 = {**cm, "metadata": {"name": "written-to-majority", "namespace": "default"}}
        await majority_client.create(cm2)
        majority_write = time.monotonic() - t0
        cut_status = await cut_client.status(apis[leader])
        maj_status = await majority_client.status(apis[new_leader])
        assert maj_status.revision > cut_status.revision, (maj_status, cut_status)
        # The cut-off master serves no stale read: it cannot confirm one with a leader, and says so.
        with pytest.raises(errors.Unavailable, match="could not confirm the read"):
            await cut_client.get("ConfigMap", "default", "written-to-majority")
        # Its own replica (resourceVersion=0, an explicit opt-in to staleness) has not seen the write.
        with pytest.raises(errors.NotFound):
            await cut_client.get("ConfigMap", "default", "written-to-majority", resource_version="0")
        # The minority's write never happened anywhere.
        with pytest.raises(errors.NotFound):
            await majority_client.get("ConfigMap", "default", "written-to-minority")

        # Every agent keeps its node Ready in the majority's view (agents cut off from a master, or
        # streaming to one that cannot commit, move to another), for longer than --node-grace.
        not_ready = await watch_nodes(majority_client, until_t=t_cut + NODE_GRACE + 3)
        assert not not_ready, (
            f"nodes went NotReady while {cut} was cut off ({links}): {not_ready}; "
            f"agents per master: {agents_per_master(lab)}"
        )

        # ---- heal: the cut-off master catches up
        lab.heal(leader)
        print(f"{time.strftime('%H:%M:%S')} healed {cut}")
        t0 = time.monotonic()
        rev, digest = await until(
            lambda: converged(client, apis), "the masters to converge after healing", 30
        )
        catch_up = time.monotonic() - t0
        # A write refused with UNAVAILABLE has an unknown outcome (the API's contract): PySyncObj may
        # still deliver it to the new leader after the heal. Recorded, not asserted.
        try:
            await majority_client.get("ConfigMap", "default", "written-to-minority")
            late = "committed after the heal"
        except errors.NotFound:
            late = "never committed"
        got = await cut_client.get("ConfigMap", "default", "written-to-majority")
        assert got["data"] == {"k": "v"}
        assert rev > rev_before
        try:
            after = await until(four_running, "4 demo pods Running and Ready after the heal", 30)
        except AssertionError as e:
            raise AssertionError(
                f"{e}\npods (name, node, phase, ready, deleting): {seen}\n{await diagnose(apis, client.tls)}"
            ) from None
        assert {p["metadata"]["uid"] for p in after} == pod_uids, "pods were replaced during the partition"
    finally:
        await cut_client.close()
        await majority_client.close()
    print(
        f"seed flow {t_seed:.1f}s; cut {leader} from {links} (revision {rev_before}, agents on it "
        f"{served_before.get(apis[leader], [])}, after the cut {agents_per_master(lab)}): minority write "
        f"UNAVAILABLE in {refused_in:.1f}s; majority leader {new_leader}, write in {majority_write:.2f}s; "
        f"minority write {late}; healed: converged at revision {rev} digest {digest[:12]} in {catch_up:.1f}s; "
        f"partition total {time.monotonic() - t_cut:.1f}s"
    )


async def diagnose(apis: dict[str, str], tls: ClientTLS) -> str:
    """Each master's own view: Raft role/term/leader, revision, lease, and each node's Ready condition."""
    out = []
    for m, address in apis.items():
        c = ApiClient([address], "admin-token", tls=tls, timeout=2)
        try:
            st = await c.status(address)
            nodes, _ = await c.list("Node")
            ready_conds = {n["metadata"]["name"]: ready_of(n) for n in nodes}
            out.append(
                f"{m}: role={st.role} term={st.term} leader={st.leader} revision={st.revision} "
                f"lease={st.lease_holder}/{st.lease_term} nodes={ready_conds}"
            )
        except errors.SkiffError as e:
            out.append(f"{m}: {e!r}")
        finally:
            await c.close()
    return "\n".join(out)


def ready_of(node: dict[str, Any]) -> tuple[str, str, str] | None:
    c = next((c for c in node["status"].get("conditions") or [] if c["type"] == "Ready"), None)
    return (c["status"], c.get("lastHeartbeatTime", ""), c.get("lastTransitionTime", "")) if c else None


def agents_per_master(lab: Lab) -> dict[str, list[str]]:
    """{master API address: [agents whose latest log line says they are connected to it]}."""
    out: dict[str, list[str]] = {}
    for w in AGENTS:
        path = lab.logs.get(w)
        lines = path.read_text(errors="replace").splitlines() if path and path.exists() else []
        events = [
            ln for ln in lines if f"node={w}" in ln and ("connected node=" in ln or "lost master=" in ln)
        ]
        if events and " connected node=" in events[-1]:
            out.setdefault(events[-1].rsplit("master=", 1)[1].strip(), []).append(w)
    return out


async def watch_nodes(client: ApiClient, until_t: float) -> dict[str, str]:
    """Poll the nodes until `until_t`; {node: Ready status} of every node seen not Ready meanwhile."""
    bad: dict[str, str] = {}
    while time.monotonic() < until_t:
        nodes, _ = await client.list("Node")
        for n in nodes:
            conds = {c["type"]: c["status"] for c in n["status"].get("conditions") or []}
            if conds.get("Ready") != "True":
                bad[n["metadata"]["name"]] = conds.get("Ready", "missing")
        await asyncio.sleep(0.2)
    return bad


def check_raft_password(raft_address: str) -> None:
    """The Raft port answers PySyncObj's status command only to a peer that has the password."""
    from pysyncobj.utility import TcpUtility, UtilityException

    import orchestrator.store.raft  # noqa: F401  (seals TcpUtility's messages as the masters do)

    status = TcpUtility(RAFT_PASSWORD, timeout=5).executeCommand(raft_address, ["status"])
    assert status and status.get("self") is not None, status
    for wrong in (None, "not-the-password"):
        try:
            answer = TcpUtility(wrong, timeout=3).executeCommand(raft_address, ["status"])
        except UtilityException:
            continue
        assert answer is None, f"Raft answered without the password ({wrong!r}): {answer!r}"
