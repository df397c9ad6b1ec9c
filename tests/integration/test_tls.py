"""TLS on every gRPC link of a `skiff up` cluster: each server (the masters' API and gateway, the
agents' log servers, the balancer's health service) refuses a plaintext client and answers one that
checks its certificate against the cluster CA; a client with another CA is told so in one line; a
process given neither certificates nor --insecure refuses to start."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from orchestrator import certs
from orchestrator.api.logs import agent_address
from orchestrator.transport import ClientTLS, health
from tests.integration.cluster import REPO, Cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(module_cluster_factory: Any) -> Cluster:
    return module_cluster_factory(masters=3, workers=2, lb=True)


async def grpc_servers(c: Cluster) -> dict[str, str]:
    """name -> host:port of every gRPC server the cluster runs."""
    servers = {f"master {m}": m for m in c.master_addresses}
    async with c.client() as client:
        nodes, _ = await client.list("Node")
    servers.update({f"agent {n['metadata']['name']}": agent_address(n) for n in nodes})
    lb = c.config["lb"]
    servers["balancer health"] = f"{lb['address']}:{lb['healthPort']}"
    return servers


async def test_every_server_refuses_plaintext_and_answers_tls(cluster: Cluster) -> None:
    servers = await grpc_servers(cluster)
    assert len(servers) == 3 + 2 + 1, servers
    tls = cluster.tls()
    for name, address in servers.items():
        assert await health(address, ClientTLS.insecure(), timeout=2.0) == "UNAVAILABLE", name
        assert await health(address, tls, timeout=2.0) == "SERVING", name


def other_ca(tmp: Path, address: str) -> Path:
    return certs.ensure_cluster_pki(tmp, names={"x": [address]}, now=datetime.now(UTC))["ca.crt"]


async def test_a_client_with_another_ca_is_told_so(cluster: Cluster, tmp_path: Path) -> None:
    stranger = ClientTLS.from_file(str(other_ca(tmp_path, "127.0.0.1")))
    for address in (await grpc_servers(cluster)).values():
        assert (await health(address, stranger)).startswith("TLS: the server's certificate is not signed by")
    out = cluster.skiff("--ca-file", str(tmp_path / "ca.crt"), "get", "nodes")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert f"TLS: the server's certificate is not signed by the CA in {tmp_path / 'ca.crt'}" in lines[0]


def test_skiff_agents_and_the_balancer_work_over_tls(cluster: Cluster) -> None:
    config = cluster.config
    assert Path(config["caFile"]) == cluster.state_dir / "pki" / "ca.crt"
    nodes = cluster.skiff("get", "nodes", check=True).stdout  # skiff, over TLS by its config
    assert nodes.count(" Ready ") == 2, nodes  # both agents stream their heartbeats over TLS
    status = cluster.skiff("cluster", "status", check=True).stdout
    assert "SERVING" in status  # the balancer's health, over TLS
    for rec in cluster.pids.values():
        argv = " ".join(rec["argv"])
        assert "--insecure" not in argv, rec["name"]
        assert "--ca-file" in argv and "--tls-cert-file" in argv, rec["name"]
    # The balancer's route watch runs over TLS as well: it logged no failed connection.
    assert "TLS:" not in cluster.log("lb")


@pytest.mark.parametrize(
    "argv",
    [
        ["orchestrator", "--name", "m1", "--api", "127.0.0.1:0", "--raft", "127.0.0.1:0", "--data-dir", "d",
         "--tokens-file", "t.json"],
        ["agents", "--name", "w", "--address", "127.0.0.1", "--masters", "127.0.0.1:1", "--token-file", "t",
         "--state-dir", "s"],
        ["lb", "--masters", "127.0.0.1:1", "--token-file", "t"],
    ],
    ids=["master", "agent", "balancer"],
)  # fmt: skip
def test_no_certificate_and_no_insecure_refuses_to_start(argv: list[str], tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", *argv], capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert out.returncode == 2, out
    last = out.stderr.strip().splitlines()[-1]
    assert "--insecure" in last and ("--tls-cert-file" in last or "--ca-file" in last), out.stderr
    assert not any(tmp_path.iterdir())  # refused before it touched anything
