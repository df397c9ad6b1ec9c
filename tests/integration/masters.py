"""A harness for integration tests that need only masters: real processes on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from orchestrator import certs
from orchestrator.client import ApiClient
from orchestrator.transport import ClientTLS
from skiffpb import api_pb2 as api

ROOT = Path(__file__).resolve().parents[2]
TOKENS = {"admin-token": "admin", "viewer-token": "viewer", "node-token": "node"}


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class MasterSet:
    """N masters as separate process groups, each with its own loopback address and data dir."""

    def __init__(
        self, tmp: Path, subnet: str, n: int = 3, extra: tuple[str, ...] = (), *, plaintext: bool = False
    ) -> None:
        """`plaintext`: gRPC without TLS (--insecure on both ends), for the benchmark's baseline."""
        self.tmp = tmp
        self.plaintext = plaintext
        self.n = n
        self.extra = extra
        self.hosts = [f"{subnet}.{i + 1}" for i in range(n)]
        self.api = [f"{h}:{free_port(h)}" for h in self.hosts]
        self.raft = [f"{h}:{free_port(h)}" for h in self.hosts]
        self.tokens_file = tmp / "tokens.json"
        self.tokens_file.write_text(json.dumps(TOKENS))
        self.procs: dict[int, subprocess.Popen] = {}
        self.per_master: list[list[str]] = [[] for _ in range(n)]  # flags for one master only
        # TLS as `skiff up` has it: one CA, a certificate per master naming its address.
        self.pki = certs.ensure_cluster_pki(
            tmp / "pki", names={f"m{i + 1}": [h] for i, h in enumerate(self.hosts)}, now=datetime.now(UTC)
        )
        self.tls = ClientTLS.insecure() if plaintext else ClientTLS.from_file(str(self.pki["ca.crt"]))

    def tls_flags(self, name: str, address: str | None = None) -> list[str]:
        """--tls-cert-file, --tls-key-file and --ca-file for process `name` (a certificate naming
        `address` is issued first when given: an agent's log server)."""
        if self.plaintext:
            return ["--insecure"]
        if address is not None:
            self.pki.update(
                certs.ensure_cluster_pki(self.tmp / "pki", names={name: [address]}, now=datetime.now(UTC))
            )
        return [
            "--tls-cert-file", str(self.pki[f"{name}.crt"]), "--tls-key-file", str(self.pki[f"{name}.key"]),
            "--ca-file", str(self.pki["ca.crt"]),
        ]  # fmt: skip

    def start(self, i: int) -> None:
        peers = ",".join(r for j, r in enumerate(self.raft) if j != i)
        log = open(self.tmp / f"m{i + 1}.log", "ab")
        argv = [
            sys.executable,
            "-m",
            "orchestrator",
            "--name",
            f"m{i + 1}",
            "--api",
            self.api[i],
            "--raft",
            self.raft[i],
            "--peers",
            peers,
            "--data-dir",
            str(self.tmp / f"m{i + 1}"),
            "--tokens-file",
            str(self.tokens_file),
            *self.tls_flags(f"m{i + 1}"),
            *self.extra,
            *self.per_master[i],
        ]
        self.procs[i] = subprocess.Popen(
            argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def start_all(self) -> None:
        for i in range(self.n):
            self.start(i)

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(i, None)
        if proc is None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)

    def close(self) -> None:
        for i in list(self.procs):
            self.kill(i)

    def logs(self) -> str:
        out = []
        for i in range(self.n):
            path = self.tmp / f"m{i + 1}.log"
            if path.exists():
                out.append(f"----- m{i + 1}\n" + "\n".join(path.read_text().splitlines()[-40:]))
        return "\n".join(out)

    def client(self, token: str = "admin-token", masters: list[str] | None = None, **kw) -> ApiClient:
        return ApiClient(masters or self.api, token, **{"tls": self.tls, **kw})

    async def statuses(self, client: ApiClient) -> dict[int, api.MasterStatus]:
        out: dict[int, api.MasterStatus] = {}
        for i, address in enumerate(self.api):
            if i in self.procs:
                try:
                    out[i] = await client.status(address, timeout=1.0)
                except Exception:
                    pass
        return out

    async def wait_leader(self, client: ApiClient, deadline: float = 20.0) -> int:
        """Index of the leader, once one is known to every running master."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            st = await self.statuses(client)
            leaders = [i for i, s in st.items() if s.role == "leader"]
            if len(st) == len(self.procs) and len(leaders) == 1:
                return leaders[0]
            await asyncio.sleep(0.05)
        raise TimeoutError("no leader elected\n" + self.logs())

    async def wait_converged(self, client: ApiClient, deadline: float = 20.0) -> tuple[int, str]:
        """(revision, digest) once every running master holds the same state."""
        end = time.monotonic() + deadline
        seen = None
        while time.monotonic() < end:
            st = await self.statuses(client)
            seen = {(s.revision, s.state_digest) for s in st.values()}
            # An empty digest is one not computed (a master catching up): it proves nothing.
            if len(st) == len(self.procs) and len(seen) == 1 and all(d for _, d in seen):
                return seen.pop()
            await asyncio.sleep(0.1)
        raise TimeoutError(f"masters did not converge: {seen}\n" + self.logs())
