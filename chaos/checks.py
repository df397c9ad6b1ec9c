"""What a chaos run must show at its end: pure checks over what was recorded and what is stored."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass
class WriteRecord:
    name: str
    value: str
    invoked: float
    completed: float
    outcome: str  # ok, failed (definitely not applied), unknown (may or may not be applied)


def lost_writes(records: list[WriteRecord], stored: dict[str, str]) -> list[str]:
    """Acknowledged writes that are missing, or hold another value."""
    return [r.name for r in records if r.outcome == "ok" and stored.get(r.name) != r.value]


def duplicated_writes(records: list[WriteRecord], stored: dict[str, str]) -> list[str]:
    """Values stored more than once (each write has a unique value), or stored though it failed."""
    counts = Counter(stored.values())
    dup = [v for v, n in counts.items() if n > 1]
    failed = {r.value for r in records if r.outcome == "failed"}
    return sorted(dup + [v for v in counts if v in failed])


def ready(pod: Obj) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in pod.get("status", {}).get("conditions") or []
    )


def replica_problems(deployments: list[Obj], pods: list[Obj]) -> list[str]:
    """Deployments whose live pods are not exactly `replicas`, all ready."""
    problems = []
    for d in deployments:
        want = d["spec"].get("replicas", 1)
        selector = d["spec"]["selector"].get("matchLabels") or {}
        mine = [
            p
            for p in pods
            if all(p["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())
            and not p["metadata"].get("deletionTimestamp")
        ]
        n_ready = sum(ready(p) for p in mine)
        if len(mine) != want or n_ready != want:
            problems.append(
                f"deployment {d['metadata']['name']}: {len(mine)} pods, {n_ready} ready, want {want}"
            )
    return problems


def double_running(running: list[tuple[str, str]], pods: list[Obj]) -> list[str]:
    """running: (worker, pod uid) for every live container. A pod may run on one worker only, and
    only pods that exist may run."""
    problems = []
    where: dict[str, set[str]] = {}
    for worker, uid in running:
        where.setdefault(uid, set()).add(worker)
    known = {p["metadata"]["uid"]: p for p in pods}
    for uid, workers in sorted(where.items()):
        if len(workers) > 1:
            problems.append(f"pod {uid} runs on {len(workers)} workers: {', '.join(sorted(workers))}")
        elif uid not in known:
            problems.append(f"container of deleted pod {uid} still runs on {next(iter(workers))}")
        elif known[uid]["spec"].get("nodeName") not in workers:
            problems.append(
                f"pod {uid} runs on {next(iter(workers))}, bound to {known[uid]['spec'].get('nodeName')}"
            )
    return problems


@dataclass
class ReadRecord:
    """One read of a register (a key whose one writer writes 1, 2, 3, ...): what came back, when."""

    key: str
    invoked: float
    completed: float
    value: int | None  # None: the read failed (UNAVAILABLE is allowed; it is not a stale answer)
    master: str


@dataclass
class RegisterWrite:
    key: str
    value: int
    invoked: float
    completed: float
    outcome: str  # ok, failed, unknown


def stale_reads(writes: list[RegisterWrite], reads: list[ReadRecord]) -> list[str]:
    """Reads that returned a value older than one whose write was acknowledged before the read began
    (the register model: each key has one sequential writer, so its values only grow; a write whose
    outcome is unknown may or may not be visible, and counts as neither)."""
    acked: dict[str, list[tuple[float, int]]] = {}
    for w in writes:
        if w.outcome == "ok":
            acked.setdefault(w.key, []).append((w.completed, w.value))
    for entries in acked.values():
        entries.sort()
    stale = []
    for r in reads:
        if r.value is None:
            continue
        floor = max((v for done, v in acked.get(r.key, []) if done < r.invoked), default=0)
        if r.value < floor:
            stale.append(
                f"{r.key} read {r.value} from {r.master}, though {floor} was acknowledged before the read began"
            )
    return stale
