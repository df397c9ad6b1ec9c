"""The fuzz run: hostile input from tests/fuzz/cases.py against three real masters, for a time budget.

The masters run without controllers, so the fuzz is the only writer: a refused input must leave
the revision where it was. Four invariants are checked on every case:

1. a refusal is one clear line (a gRPC status's details, a REST Status's message, the CLI's stderr);
2. no traceback, no UNKNOWN or INTERNAL, no 500;
3. no hang: every call is answered within its deadline;
4. a refused input changes nothing: the revision is the same after it; and at the end the Raft term
   is the one the run started in, and every master is alive with the same state digest.

Hypothesis draws the cases (seeded, generate phase only); each family gets an equal share of the time.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import grpc
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from skiffpb import api_pb2 as api
from skiffpb import api_pb2_grpc as api_grpc
from tests.fuzz import cases
from tests.integration.masters import ROOT, MasterSet, free_port

T = TypeVar("T")
DEADLINE = 15.0  # seconds any one case may take before it counts as a hang
TOKEN = "admin-token"
FAMILIES = ("api-objects", "api-bytes", "api-calls", "rest", "cli-manifests", "cli-flags")


class _TimeUp(BaseException):
    """Ends a family's hypothesis run when its share of the time is spent (not a failure)."""


@dataclass
class Family:
    cases: int = 0
    refused: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)

    def violation(self, what: str, case: Any) -> None:
        if len(self.violations) < 20:
            self.violations.append(f"{what}: {json.dumps(case, default=repr)[:300]}")
        self.outcomes["VIOLATION"] += 1


@dataclass
class Report:
    seconds: float
    seed: int
    families: dict[str, Family]
    term_before: list[int]
    term_after: list[int]
    digests: list[str]

    @property
    def violations(self) -> int:
        return sum(f.outcomes["VIOLATION"] for f in self.families.values()) + self.cluster_problems

    @property
    def cluster_problems(self) -> int:
        return int(self.term_before != self.term_after) + int(
            len(set(self.digests)) != 1 or len(self.digests) != 3
        )

    def summary(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 1),
            "seed": self.seed,
            "cases": sum(f.cases for f in self.families.values()),
            "violations": self.violations,
            "raft_terms": {"before": self.term_before, "after": self.term_after},
            "masters_agree": len(set(self.digests)) == 1 and len(self.digests) == 3,
            "families": {
                name: {
                    "cases": f.cases,
                    "refused": f.refused,
                    "outcomes": dict(f.outcomes),
                    "violations": f.violations,
                }
                for name, f in self.families.items()
            },
        }


def one_line(text: str) -> bool:
    return bool(text.strip()) and "\n" not in text.strip() and len(text) <= 1200 and "Traceback" not in text


def clear_lines(text: str, most: int) -> bool:
    """At most `most` lines, each a one-line error ("error: ..." or kubectl's "Error from server ...")."""
    lines = text.strip().splitlines()
    return 0 < len(lines) <= max(1, most) and all(
        one_line(line) and line.startswith(("error: ", "Error from server", "warning: ")) for line in lines
    )


class Fuzz:
    def __init__(self, tmp: Path, subnet: str = "127.0.77") -> None:
        self.tmp = tmp
        self.ms = MasterSet(tmp, subnet, extra=("--no-controllers",))
        self.kube = [f"{h}:{free_port(h)}" for h in self.ms.hosts]
        self.ms.per_master = [["--kube-api", k] for k in self.kube]
        self.families = {name: Family() for name in FAMILIES}
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.worker: subprocess.Popen[str] | None = None

    # ------------------------------------------------------------ setup

    def __enter__(self) -> Fuzz:
        self.ms.start_all()
        self._thread.start()
        self.call(self._connect())
        self._start_worker()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.worker is not None:
            self.worker.kill()
            self.worker.wait()
        try:
            self.call(self._disconnect(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            self.ms.close()

    async def _connect(self) -> None:
        self.client = self.ms.client()
        await self.ms.wait_leader(self.client, deadline=60)
        self.channel = self.ms.tls.channel(self.ms.api[0])
        self.stub = api_grpc.ApiStub(self.channel)
        ctx = ssl.create_default_context(cafile=str(self.ms.pki["ca.crt"]))
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx))

    async def _disconnect(self) -> None:
        await self.http.close()
        await self.channel.close()
        await self.client.close()

    def _start_worker(self) -> None:
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "tests.fuzz.cli_worker"], cwd=ROOT, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
        )  # fmt: skip

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = DEADLINE) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _status(self) -> list[api.MasterStatus]:
        return [await self.client.status(a, timeout=5) for a in self.ms.api]

    def revision(self) -> int:
        return int(self.call(self.client.status(self.ms.api[0], timeout=5)).revision)

    # ------------------------------------------------------------ the run

    def run(self, seconds: float, seed_value: int) -> Report:
        t0 = time.monotonic()
        before = self.call(self._status())
        share = seconds / len(FAMILIES)
        plan: list[tuple[str, st.SearchStrategy[Any], Callable[[Any], None]]] = [
            ("api-objects", cases.broken_object(), self.api_object),
            ("api-bytes", cases.hostile_bytes(), self.api_bytes),
            ("api-calls", cases.CALL, self.api_call),
            ("rest", cases.REST, self.rest),
            ("cli-manifests", cases.manifest(), self.cli_manifest),
            ("cli-flags", cases.ARGV, self.cli_flags),
        ]
        for i, (name, strategy, fn) in enumerate(plan):
            self._drive(name, strategy, fn, share, seed_value + i)
        time.sleep(1.0)  # let the followers apply the last accepted writes
        after = self.call(self._status())
        return Report(
            seconds=time.monotonic() - t0,
            seed=seed_value,
            families=self.families,
            term_before=[s.term for s in before],
            term_after=[s.term for s in after],
            digests=[s.state_digest for s in after],
        )

    def _drive(
        self, name: str, strategy: st.SearchStrategy[Any], fn: Callable[[Any], None], budget: float, s: int
    ) -> None:
        end = time.monotonic() + budget
        family = self.families[name]

        @settings(max_examples=10**7, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @seed(s)
        @given(strategy)
        def prop(value: Any) -> None:
            if time.monotonic() >= end:
                raise _TimeUp
            family.cases += 1
            try:
                fn(value)
            except TimeoutError:
                family.violation("hang", value)
            except Exception as e:  # noqa: BLE001 - the fuzz records what broke and goes on
                family.violation(f"harness error {type(e).__name__}: {e}", value)

        try:
            prop()
        except _TimeUp:
            pass

    def _refused(self, family: Family, ok: bool, before: int, case: Any) -> None:
        if ok:
            return
        family.refused += 1
        if self.revision() != before:
            family.violation("a refused input changed the state", case)

    # ------------------------------------------------------------ gRPC

    async def _unary(self, method: str, request: Any) -> tuple[str, str]:
        try:
            await getattr(self.stub, method)(
                request, metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=10
            )
        except grpc.aio.AioRpcError as e:
            return e.code().name, e.details() or ""
        return "OK", ""

    async def _watch(self, request: api.WatchRequest) -> tuple[str, str]:
        call = self.stub.Watch(request, metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=10)
        try:
            async with asyncio.timeout(0.5):  # a watch that is answered with events is fine
                async for _ in call:
                    pass
        except TimeoutError:
            return "OK", ""
        except grpc.aio.AioRpcError as e:
            return e.code().name, e.details() or ""
        finally:
            call.cancel()
        return "OK", ""

    def _grpc_outcome(self, family: Family, code: str, details: str, before: int, case: Any) -> None:
        family.outcomes[code] += 1
        if code in ("UNKNOWN", "INTERNAL", "DEADLINE_EXCEEDED"):
            family.violation(f"{code}: {details[:200]}", case)
        elif code != "OK" and not one_line(details):
            family.violation(f"not one clear line: {details[:200]!r}", case)
        self._refused(family, code == "OK", before, case)

    def api_object(self, obj: Any) -> None:
        before = self.revision()
        body = cases.dumps(obj)
        code, details = self.call(
            self._unary("Create", api.WriteRequest(request_id=uuid.uuid4().hex, object=body))
        )
        self._grpc_outcome(self.families["api-objects"], code, details, before, obj)

    def api_bytes(self, body: bytes) -> None:
        before = self.revision()
        code, details = self.call(
            self._unary("Apply", api.WriteRequest(request_id=uuid.uuid4().hex, object=body))
        )
        self._grpc_outcome(self.families["api-bytes"], code, details, before, body[:200].decode("latin-1"))

    def api_call(self, c: dict[str, Any]) -> None:
        try:
            self._api_call(c)
        except ValueError:  # a string protobuf cannot carry (a lone surrogate): the client refuses it
            self.families["api-calls"].outcomes["unsendable"] += 1

    def _api_call(self, c: dict[str, Any]) -> None:
        before = self.revision()
        m = c["method"]
        rid = c["rid"] or uuid.uuid4().hex
        body = cases.dumps(
            {**cases.TEMPLATES["ConfigMap"], "metadata": {"name": c["name"], "namespace": c["namespace"]}}
        )
        request: Any
        if m in ("Create", "Apply", "Update"):
            request = api.WriteRequest(request_id=rid, object=body)
        elif m == "Patch":
            request = api.PatchRequest(request_id=rid, kind=c["kind"], namespace=c["namespace"], name=c["name"],
                                       patch=cases.dumps({"data": {"k": c["name"]}}), status=c["status"])  # fmt: skip
        elif m == "Delete":
            request = api.DeleteRequest(request_id=rid, kind=c["kind"], namespace=c["namespace"], name=c["name"],
                                        resource_version=c["revision"])  # fmt: skip
        elif m == "Get":
            request = api.GetRequest(kind=c["kind"], namespace=c["namespace"], name=c["name"])
        elif m == "List":
            request = api.ListRequest(kind=c["kind"], namespace=c["namespace"], label_selector=c["selector"])
        if m == "Watch":
            watch = api.WatchRequest(kind=c["kind"], namespace=c["namespace"], label_selector=c["selector"],
                                     resource_version=c["revision"])  # fmt: skip
            code, details = self.call(self._watch(watch))
        else:
            code, details = self.call(self._unary(m, request))
        self._grpc_outcome(self.families["api-calls"], code, details, before, c)

    # ------------------------------------------------------------ REST

    async def _rest(self, r: dict[str, Any]) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        if r["content_type"]:
            headers["Content-Type"] = r["content_type"]
        url = f"https://{self.kube[0]}{r['path']}"
        timeout = aiohttp.ClientTimeout(total=10)
        try:
            async with self.http.request(
                r["method"], url, data=r["body"], headers=headers, timeout=timeout
            ) as resp:
                if "watch=true" in r["path"] and resp.status == 200:
                    return 200, ""
                return resp.status, await resp.text()
        except (aiohttp.InvalidURL, ValueError, UnicodeError):
            return -1, "unsendable"

    def rest(self, r: dict[str, Any]) -> None:
        family = self.families["rest"]
        before = self.revision()
        code, text = self.call(self._rest(r))
        family.outcomes[str(code)] += 1
        if code == -1:
            return
        if code >= 500 and code not in (503, 504):
            family.violation(f"HTTP {code}: {text[:200]}", r)
        elif code >= 400:
            try:
                doc = json.loads(text)
                message = doc["message"] if doc.get("kind") == "Status" else ""
            except (ValueError, KeyError, AttributeError):
                message = ""
            if not one_line(message):
                family.violation(f"HTTP {code} without a one-line Status: {text[:200]!r}", r)
        self._refused(family, code < 400, before, r)

    # ------------------------------------------------------------ CLI

    def _cli(self, argv: list[str], files: dict[str, str] | None = None) -> dict[str, Any]:
        assert self.worker is not None and self.worker.stdin and self.worker.stdout
        full = ["--server", self.ms.api[0], "--token", TOKEN, "--ca-file", str(self.ms.pki["ca.crt"]),
                "--request-timeout", "10s", *argv]  # fmt: skip
        self.worker.stdin.write(json.dumps({"argv": full, "files": files or {}}) + "\n")
        self.worker.stdin.flush()
        reply: list[str] = []
        reader = threading.Thread(target=lambda: reply.append(self.worker.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(DEADLINE)
        if not reply or not reply[0]:
            self.worker.kill()
            self.worker.wait()
            self._start_worker()
            raise TimeoutError(f"skiff {' '.join(argv)[:100]} did not finish in {DEADLINE:g} s")
        return json.loads(reply[0])

    def _cli_outcome(self, family: Family, out: dict[str, Any], case: Any, lines: int = 1) -> bool:
        """`lines`: how many error lines a refusal may print (kubectl prints one per name it could not
        act on), each one clear line of its own."""
        rc = out["rc"]
        family.outcomes[f"rc={rc}"] += 1
        if out["escaped"]:
            family.violation(f"traceback: {out['escaped'][-300:]}", case)
        elif "Traceback" in out["stderr"]:
            family.violation(f"traceback on stderr: {out['stderr'][-300:]}", case)
        elif rc not in (0, 1):
            family.violation(f"exit status {rc!r}", case)
        elif rc == 1 and not clear_lines(out["stderr"], lines):
            family.violation(f"not {lines} clear line(s) at most: {out['stderr'][:300]!r}", case)
        return rc == 0

    def cli_manifest(self, text: str) -> None:
        family = self.families["cli-manifests"]
        path = str(self.tmp / "manifest.yaml")
        before = self.revision()
        validate = ["--validate=false"] if len(text) % 2 else []
        out = self._cli(["apply", *validate, "-f", path], {path: text})
        ok = self._cli_outcome(family, out, text[:300])
        self._refused(family, ok, before, text[:300])

    def cli_flags(self, argv: list[str]) -> None:
        self._cli_outcome(self.families["cli-flags"], self._cli(argv), argv, lines=len(argv))


def run(seconds: float, seed_value: int, tmp: Path, subnet: str = "127.0.77") -> Report:
    with Fuzz(tmp, subnet) as fuzz:
        return fuzz.run(seconds, seed_value)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import tempfile

    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", default="", help="also write the report here")
    args = p.parse_args(argv)
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    with tempfile.TemporaryDirectory(prefix="skiff-fuzz-") as d:
        report = run(args.seconds, args.seed, Path(d))
    summary = report.summary()
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 1 if report.violations else 0
