"""A local Skiff cluster for integration tests, started and stopped with the real `skiff up` / `skiff down`.

    with Cluster(tmp_path, masters=3, workers=2, lb=True) as c:   # or the conftest fixtures
        c.skiff("apply", "-f", "examples/demo-deployment.yaml", check=True)
        c.kill("m1"); c.start("m1"); c.wait_for(lambda: ..., "m1 back")
        async with c.client() as api: ...                          # ApiClient (admin token)

Each cluster gets its own loopback ranges (masters 127.0.X.*, workers 127.0.X+1.*, balancer 127.0.X+2.1)
and free ports, so tests never collide with a developer's cluster (127.0.1/127.0.2) or with each other.
`down()` always runs `skiff down` and then SIGKILLs any recorded process group still alive.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from orchestrator.client import ApiClient
from orchestrator.errors import SkiffError
from orchestrator.procs import group_alive, is_ours
from orchestrator.transport import ClientTLS

REPO = Path(__file__).resolve().parents[2]
_slots = itertools.count()
T = TypeVar("T")


def next_address_bases() -> tuple[str, str, str]:
    """(master base, worker base, lb address) on a 127.0.X range unique to this process and call."""
    slot = (os.getpid() * 7 + next(_slots)) % 68
    x = 40 + 3 * slot
    return f"127.0.{x}", f"127.0.{x + 1}", f"127.0.{x + 2}.1"


class Cluster:
    """A cluster started by `skiff up` into `state_dir`; see the module docstring."""

    def __init__(
        self,
        state_dir: Path,
        *,
        masters: int = 3,
        workers: int = 0,
        lb: bool = False,
        up_args: Sequence[str] = (),
        timeout: float = 90.0,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.state_dir / "client-config.json"
        self.masters, self.workers, self.lb = masters, workers, lb
        self.up_args = list(up_args)
        self.timeout = timeout
        self.master_base, self.worker_base, self.lb_address = next_address_bases()
        self._records: dict[str, dict[str, Any]] = {}
        self.up_result: subprocess.CompletedProcess[str] | None = None

    # ------------------------------------------------------------ lifecycle

    def up(self) -> Cluster:
        argv = [
            "up", "--state-dir", str(self.state_dir), "--config", str(self.config_path),
            "--kubeconfig", str(self.state_dir / "kubeconfig"),
            "--masters", str(self.masters), "--workers", str(self.workers), "--lb" if self.lb else "--no-lb",
            "--master-address-base", self.master_base, "--worker-address-base", self.worker_base,
            "--lb-address", self.lb_address, "--http-port", "0", "--timeout", str(self.timeout),
            *self.up_args,
        ]  # fmt: skip
        self.up_result = self.skiff(*argv, timeout=self.timeout + 30)
        self._remember()
        if self.up_result.returncode != 0:
            raise RuntimeError(
                f"skiff up failed ({self.up_result.returncode}):\n{self.up_result.stderr}\n{self.log_tails()}"
            )
        return self

    def down(self) -> None:
        """`skiff down`, then SIGKILL whatever recorded group is still alive. Never raises."""
        self._remember()
        try:
            self.skiff("down", "--state-dir", str(self.state_dir), "--timeout", "5", timeout=120)
        except Exception as e:  # noqa: BLE001 - reaping below must still happen
            print(f"skiff down failed: {e}", file=sys.stderr)
        for rec in self._records.values():
            pgid = int(rec.get("pgid") or 0)
            if pgid > 0 and (is_ours(rec) or group_alive(pgid)):
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def __enter__(self) -> Cluster:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    # ------------------------------------------------------------ the CLI

    def skiff(
        self,
        *args: str,
        check: bool = False,
        timeout: float = 60.0,
        input: str | None = None,
        token: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `skiff --config <this cluster's config> ARGS` and capture its output."""
        argv = [sys.executable, "-m", "orchestrator.cli", "--config", str(self.config_path)]
        if token is not None:
            argv += ["--token", token]
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("SKIFF_")}
        full_env.update(env or {})
        out = subprocess.run(
            [*argv, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            cwd=REPO,
            env=full_env,
        )
        if check and out.returncode != 0:
            raise AssertionError(
                f"skiff {' '.join(args)} failed ({out.returncode}): {out.stderr}{out.stdout}"
            )
        return out

    def popen_skiff(self, *args: str) -> subprocess.Popen[str]:
        """A long-running `skiff` (get -w, logs -f, rollout status); the caller terminates it."""
        argv = [sys.executable, "-m", "orchestrator.cli", "--config", str(self.config_path), *args]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)

    # ------------------------------------------------------------ state

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.config_path.read_text())

    @property
    def master_addresses(self) -> list[str]:
        return list(self.config["masters"])

    async def follower_address(self) -> str:
        """A master that is a Raft follower now: the agents' streams go to followers (the leader
        refuses them while a follower is connected, orchestrator.api.gateway)."""

        async def find() -> str:
            async with self.client() as client:
                for address in self.master_addresses:
                    try:
                        if (await client.status(address, timeout=1.0)).role == "follower":
                            return address
                    except SkiffError:
                        continue
            return ""

        return str(await wait_until(find, "a Raft follower", 20))

    def token(self, role: str = "admin") -> str:
        return (self.state_dir / f"{role}.token").read_text().strip()

    def client(self, role: str = "admin", **kw: Any) -> ApiClient:
        """An ApiClient on every master; create it inside the running event loop (grpc.aio)."""
        return ApiClient(self.master_addresses, self.token(role), **{"tls": self.tls(), **kw})

    def tls(self) -> ClientTLS:
        """TLS checked against this cluster's CA (state/pki/ca.crt, which `skiff up` made)."""
        return ClientTLS.from_file(str(self.state_dir / "pki" / "ca.crt"))

    @property
    def pids(self) -> dict[str, dict[str, Any]]:
        """name -> record (name, role, pid, pgid, argv, log, ...) as in pids.json."""
        self._remember()
        return dict(self._records)

    def _remember(self) -> None:
        try:
            data = json.loads((self.state_dir / "pids.json").read_text())
        except (OSError, ValueError):
            return
        for rec in data.get("processes", []):
            self._records[rec["name"]] = rec

    def log(self, name: str) -> str:
        try:
            return (self.state_dir / "logs" / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""

    def log_tails(self, lines: int = 40) -> str:
        out = []
        logs = self.state_dir / "logs"
        for f in sorted(logs.glob("*.log")) if logs.exists() else []:
            tail = f.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"==== {f.name} (last {len(tail)} lines) ====\n" + "\n".join(tail))
        return "\n".join(out)

    # ------------------------------------------------------------ chaos

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        self.skiff("kill", name, "--signal", str(int(sig)), "--state-dir", str(self.state_dir), check=True)

    def stop(self, name: str) -> None:
        self.skiff("stop", name, "--state-dir", str(self.state_dir), check=True)

    def start(self, name: str) -> None:
        self.skiff("start", name, "--state-dir", str(self.state_dir), check=True)
        self._remember()

    # ------------------------------------------------------------ waiting

    @staticmethod
    def wait_for(probe: Callable[[], T], what: str, timeout: float = 30.0, interval: float = 0.1) -> T:
        """Poll `probe` until it returns a truthy value (returned) or fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            try:
                last = probe()
                if last:
                    return last
            except Exception as e:  # noqa: BLE001 - keep polling; report the last error on timeout
                last = e
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
            time.sleep(interval)


async def wait_until(
    probe: Callable[[], Awaitable[Any]], what: str, timeout: float, interval: float = 0.05
) -> Any:
    """Await `probe()` until it returns something truthy (returned); fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await probe()
            if last:
                return last
        except (SkiffError, OSError) as e:
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        await asyncio.sleep(interval)
