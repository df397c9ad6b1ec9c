"""Liveness, readiness and startup probes: Kubernetes' fields and defaults, pure result accounting.

A probe is run every `periodSeconds` (10) after `initialDelaySeconds` (0), each attempt bounded by
`timeoutSeconds` (1). Its result flips to failure after `failureThreshold` (3) consecutive failures and
back to success after `successThreshold` (1) consecutive successes.
- readiness: starts as failure; a failing one makes the pod not Ready (no restart);
- liveness: starts as success; failing kills the container, which then restarts per restartPolicy;
- startup: liveness and readiness wait until it succeeds; failing kills the container.

Actions: tcpSocket (connect), httpGet (status 200-399), exec (exit 0; run on the node with the
container's env, since containers share the node's filesystem). Ports name a container port (number
or name); the runtime maps them to the host port, and the host defaults to the node's address.

`ProbeSpec.parse`, `record` are pure; `run_probe` does the I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypedDict

log = logging.getLogger(__name__)


class _Timing(TypedDict):
    """The timing and threshold fields every probe kind shares (ProbeSpec's keyword arguments)."""

    initial_delay: float
    period: float
    timeout: float
    success_threshold: int
    failure_threshold: int


@dataclass(frozen=True)
class ProbeSpec:
    kind: str  # tcp, http, exec
    port: Any = None  # number or container port name
    host: str = ""
    path: str = "/"
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @staticmethod
    def parse(d: Mapping[str, Any] | None) -> ProbeSpec | None:
        if not d:
            return None
        common: _Timing = {
            "initial_delay": float(d.get("initialDelaySeconds") or 0),
            "period": float(d.get("periodSeconds") or 10),
            "timeout": float(d.get("timeoutSeconds") or 1),
            "success_threshold": int(d.get("successThreshold") or 1),
            "failure_threshold": int(d.get("failureThreshold") or 3),
        }
        if d.get("httpGet"):
            h = d["httpGet"]
            return ProbeSpec(
                "http",
                port=h.get("port"),
                host=h.get("host") or "",
                path=h.get("path") or "/",
                scheme=(h.get("scheme") or "HTTP").upper(),
                headers=tuple((x["name"], x.get("value", "")) for x in h.get("httpHeaders") or ()),
                **common,
            )
        if d.get("tcpSocket"):
            t = d["tcpSocket"]
            return ProbeSpec("tcp", port=t.get("port"), host=t.get("host") or "", **common)
        if d.get("exec"):
            return ProbeSpec("exec", command=tuple(d["exec"].get("command") or ()), **common)
        return None


@dataclass(frozen=True)
class Tally:
    """A probe's current result and its consecutive successes / failures."""

    ok: bool
    successes: int = 0
    failures: int = 0


def initial_tally(kind: str) -> Tally:
    """readiness and startup start failed (not yet ready/started); liveness starts passing."""
    return Tally(ok=kind == "liveness")


def record(tally: Tally, ok: bool, spec: ProbeSpec) -> Tally:
    """Account one attempt: the result flips only after the threshold of consecutive outcomes."""
    if ok:
        successes = tally.successes + 1
        return replace(
            tally, successes=successes, failures=0, ok=tally.ok or successes >= spec.success_threshold
        )
    failures = tally.failures + 1
    return replace(tally, successes=0, failures=failures, ok=tally.ok and failures < spec.failure_threshold)


# ---------------------------------------------------------------- the I/O


async def tcp_check(host: str, port: int, timeout: float) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def http_check(spec: ProbeSpec, host: str, port: int) -> bool:
    async def attempt() -> bool:
        ssl = None
        if spec.scheme == "HTTPS":
            import ssl as _ssl

            ssl = _ssl.create_default_context()
            ssl.check_hostname = False
            ssl.verify_mode = _ssl.CERT_NONE
        reader, writer = await asyncio.open_connection(host, port, ssl=ssl)
        try:
            headers = {"Host": f"{host}:{port}", "User-Agent": "skiff-probe/1.0", "Accept": "*/*"}
            headers.update(dict(spec.headers))
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            writer.write(f"GET {spec.path} HTTP/1.1\r\n{head}Connection: close\r\n\r\n".encode())
            line = await reader.readline()
            parts = line.split()
            return len(parts) >= 2 and 200 <= int(parts[1]) < 400
        finally:
            writer.close()

    try:
        return await asyncio.wait_for(attempt(), spec.timeout)
    except (OSError, TimeoutError, ValueError):
        return False


async def exec_check(spec: ProbeSpec, env: Mapping[str, str], cwd: str | None) -> bool:
    """Run the probe's command; success is exit code 0 within the timeout.

    The command runs through subprocess in a worker thread, not the loop's own process spawning:
    CPython spawns with vfork+exec, which is safe in a process with live gRPC threads, and its wait
    cannot be confused by another child's exit (seen: uvloop spawns reported a passing probe as failed).
    """
    if not spec.command:
        return False

    def run() -> bool:
        try:
            done = subprocess.run(
                list(spec.command),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                timeout=spec.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        except OSError as e:
            log.info("exec probe %s could not run: %s", spec.command[0], e)
            return False
        return done.returncode == 0

    return await asyncio.to_thread(run)


async def run_probe(
    spec: ProbeSpec,
    *,
    host: str,
    resolve_port: Callable[[Any], int | None],
    env: Mapping[str, str],
    cwd: str | None = None,
) -> bool:
    """One attempt of `spec`. `resolve_port` maps a container port (number or name) to the host port."""
    if spec.kind == "exec":
        return await exec_check(spec, env, cwd)
    port = resolve_port(spec.port)
    if port is None:
        return False
    target = spec.host or host
    if spec.kind == "tcp":
        return await tcp_check(target, port, spec.timeout)
    return await http_check(spec, target, port)
