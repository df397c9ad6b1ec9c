"""The container lifecycle as pure functions: restart decisions, back-off, and the pod status they imply.

Nothing here awaits, reads a clock or does I/O: the runtime (the shell) passes `now` in and performs the
actions returned. Kubernetes' rules, as kubelet applies them:

- restartPolicy Always restarts every exit, OnFailure only a non-zero exit, Never none;
- back-off: the first crash restarts at once; each further consecutive crash waits `base` (1 s) doubling
  up to `cap` (60 s): 0, 1, 2, 4, ..., 60, 60. A container that ran `reset_after` (10 min) before it
  exited starts the count again;
- restartCount counts restarts (it grows when the next instance starts), lastState is the previous
  instance's termination;
- phase: Pending until every container has started once; Succeeded / Failed when every container has
  terminated for good (all exit 0 / any other); Running otherwise;
- conditions PodScheduled, Initialized, ContainersReady and Ready, each with a stable
  lastTransitionTime.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from orchestrator.model import rfc3339

Obj = dict[str, Any]


@dataclass(frozen=True)
class BackoffConfig:
    base: float = 1.0
    cap: float = 60.0
    reset_after: float = 600.0


def backoff_delay(streak: int, cfg: BackoffConfig) -> float:
    """Seconds to wait before restarting after the `streak`-th consecutive crash (1-based)."""
    if streak <= 1:
        return 0.0
    return min(cfg.base * 2 ** (streak - 2), cfg.cap)


def next_streak(streak: int, ran_for: float, cfg: BackoffConfig) -> int:
    """The crash streak after an exit: a run of `reset_after` or longer starts it again."""
    return 1 if ran_for >= cfg.reset_after else streak + 1


def should_restart(restart_policy: str, exit_code: int) -> bool:
    if restart_policy == "Never":
        return False
    if restart_policy == "OnFailure":
        return exit_code != 0
    return True


class State(Enum):
    WAITING = "waiting"
    RUNNING = "running"
    TERMINATED = "terminated"


@dataclass(frozen=True)
class Termination:
    exit_code: int
    reason: str  # Completed, Error, OOMKilled, StartError
    started_at: float
    finished_at: float
    signal: int = 0
    message: str = ""
    container_id: str = ""

    def to_dict(self) -> Obj:
        out: Obj = {
            "exitCode": self.exit_code,
            "reason": self.reason,
            "startedAt": rfc3339(self.started_at),
            "finishedAt": rfc3339(self.finished_at),
        }
        if self.signal:
            out["signal"] = self.signal
        if self.message:
            out["message"] = self.message
        if self.container_id:
            out["containerID"] = self.container_id
        return out

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> Termination:
        return Termination(
            exit_code=int(d.get("exitCode", 0)),
            reason=d.get("reason", ""),
            started_at=float(d.get("startedAt", 0.0)),
            finished_at=float(d.get("finishedAt", 0.0)),
            signal=int(d.get("signal", 0)),
            message=d.get("message", ""),
            container_id=d.get("containerID", ""),
        )

    def to_record(self) -> Obj:
        """The form kept in the state dir (epoch floats, not RFC 3339)."""
        return {
            "exitCode": self.exit_code,
            "reason": self.reason,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "signal": self.signal,
            "message": self.message,
            "containerID": self.container_id,
        }


@dataclass(frozen=True)
class ContainerView:
    """What the runtime knows of one container of a pod (all instances so far)."""

    name: str
    image: str = ""
    state: State = State.WAITING
    reason: str = "ContainerCreating"  # while waiting
    message: str = ""
    started_at: float = 0.0
    termination: Termination | None = None  # how the current instance ended
    last_termination: Termination | None = None  # how the previous instance ended
    restart_count: int = 0
    streak: int = 0
    restart_at: float | None = None  # when a terminated/waiting container may (re)start; None = never
    ready: bool = False
    started: bool = False  # startup probe passed (or none)
    container_id: str = ""
    ever_started: bool = False


# ---------------------------------------------------------------- transitions


def on_started(view: ContainerView, now: float, container_id: str) -> ContainerView:
    """A new instance is running. Restarting one that ran before counts a restart."""
    restarted = view.termination is not None
    return replace(
        view,
        state=State.RUNNING,
        reason="",
        message="",
        started_at=now,
        termination=None,
        last_termination=view.termination if restarted else view.last_termination,
        restart_count=view.restart_count + (1 if restarted else 0),
        restart_at=None,
        ready=False,
        started=False,
        container_id=container_id,
        ever_started=True,
    )


def on_exited(
    view: ContainerView, term: Termination, restart_policy: str, cfg: BackoffConfig, deleting: bool = False
) -> ContainerView:
    """The current instance exited: record it and decide whether and when it restarts."""
    streak = next_streak(view.streak, term.finished_at - term.started_at, cfg)
    restart_at: float | None = None
    if not deleting and should_restart(restart_policy, term.exit_code):
        restart_at = term.finished_at + backoff_delay(streak, cfg)
    return replace(
        view,
        state=State.TERMINATED,
        reason="",
        message="",
        termination=term,
        streak=streak,
        restart_at=restart_at,
        ready=False,
        started=False,
        ever_started=True,
    )


def on_image_error(view: ContainerView, message: str, now: float, cfg: BackoffConfig) -> ContainerView:
    """The image did not resolve: ErrImagePull the first time, ImagePullBackOff while retrying."""
    streak = view.streak + 1
    first = view.reason not in ("ErrImagePull", "ImagePullBackOff")
    return replace(
        view,
        state=State.WAITING,
        reason="ErrImagePull" if first else "ImagePullBackOff",
        message=message,
        streak=streak,
        restart_at=now + max(cfg.base, backoff_delay(streak, cfg)),
    )


# ---------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Start:
    container: str


@dataclass(frozen=True)
class Stop:
    container: str
    grace: float
    reason: str


@dataclass(frozen=True)
class ReportDeleted:
    pass


Action = Start | Stop | ReportDeleted


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    wake_at: float | None  # when to decide again even if nothing happens


def grace_period(pod: Mapping[str, Any]) -> float:
    meta = pod.get("metadata") or {}
    if meta.get("deletionGracePeriodSeconds") is not None:
        return float(meta["deletionGracePeriodSeconds"])
    spec = pod.get("spec") or {}
    value = spec.get("terminationGracePeriodSeconds")
    return 30.0 if value is None else float(value)


def plan_pod(
    pod: Mapping[str, Any],
    views: Mapping[str, ContainerView],
    active: Mapping[str, bool],
    now: float,
) -> Plan:
    """What to do for one pod now. `active[name]` is True while a container's process exists.

    A pod marked for deletion stops its containers and, once none is left, is reported deleted.
    Otherwise each container without a live process starts when its restart time has come.
    """
    containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        running = [n for n in views if active.get(n)]
        if running:
            grace = grace_period(pod)
            return Plan(tuple(Stop(n, grace, "Killing") for n in running), None)
        return Plan((ReportDeleted(),), None)
    actions: list[Action] = []
    wake: float | None = None
    for name in containers:
        if active.get(name):
            continue
        view = views.get(name)
        if view is None or (view.state is State.WAITING and view.restart_at is None):
            actions.append(Start(name))
            continue
        if view.restart_at is None:
            continue  # terminated for good
        if view.restart_at <= now:
            actions.append(Start(name))
        else:
            wake = view.restart_at if wake is None else min(wake, view.restart_at)
    return Plan(tuple(actions), wake)


# ---------------------------------------------------------------- status


def container_status(view: ContainerView, now: float) -> Obj:
    state: Obj
    if view.state is State.RUNNING:
        state = {"running": {"startedAt": rfc3339(view.started_at)}}
    elif view.state is State.TERMINATED and view.termination is not None:
        if view.restart_at is not None:
            waiting: Obj = {"reason": "CrashLoopBackOff" if view.restart_at > now else "ContainerCreating"}
            if view.restart_at > now:
                delay = max(1, round(view.restart_at - view.termination.finished_at))
                waiting["message"] = f"back-off {delay}s restarting failed container={view.name}"
            state = {"waiting": waiting}
        else:
            state = {"terminated": view.termination.to_dict()}
    else:
        state = {"waiting": {"reason": view.reason or "ContainerCreating"}}
        if view.message:
            state["waiting"]["message"] = view.message
    last: Obj = {}
    if view.state is State.TERMINATED and view.restart_at is not None and view.termination is not None:
        last = {"terminated": view.termination.to_dict()}
    elif view.last_termination is not None:
        last = {"terminated": view.last_termination.to_dict()}
    out: Obj = {
        "name": view.name,
        "state": state,
        "lastState": last,
        "ready": view.ready and view.state is State.RUNNING,
        "restartCount": view.restart_count,
        "image": view.image,
        "imageID": f"skiff://{view.image}" if view.image else "",
        "started": view.started and view.state is State.RUNNING,
    }
    if view.container_id:
        out["containerID"] = view.container_id
    return out


def pod_phase(restart_policy: str, views: Sequence[ContainerView]) -> str:
    if not views or any(not v.ever_started for v in views):
        return "Pending"
    if all(v.state is State.TERMINATED and v.restart_at is None for v in views):
        ok = all(v.termination is not None and v.termination.exit_code == 0 for v in views)
        return "Succeeded" if ok else "Failed"
    return "Running"


def _condition(
    type_: str, ok: bool, prev: Mapping[str, Obj], now: float, reason: str = "", message: str = ""
) -> Obj:
    status = "True" if ok else "False"
    before = prev.get(type_)
    since = (
        before["lastTransitionTime"]
        if before and before.get("status") == status and before.get("lastTransitionTime")
        else rfc3339(now)
    )
    out: Obj = {"type": type_, "status": status, "lastTransitionTime": since}
    if not ok and reason:
        out["reason"] = reason
    if not ok and message:
        out["message"] = message
    return out


def pod_status(
    pod: Mapping[str, Any],
    views: Mapping[str, ContainerView],
    now: float,
    *,
    host_ip: str,
    port_mappings: Sequence[Mapping[str, Any]],
    start_time: float,
    prev_conditions: Sequence[Mapping[str, Any]] = (),
) -> Obj:
    """The PodStatus for `pod` given its containers' views (in spec order)."""
    spec = pod.get("spec") or {}
    restart_policy = spec.get("restartPolicy") or "Always"
    names = [c["name"] for c in spec.get("containers") or []]
    ordered = [views.get(n) or ContainerView(name=n) for n in names]
    phase = pod_phase(restart_policy, ordered)
    unready = [v.name for v in ordered if not (v.ready and v.state is State.RUNNING)]
    prev = {c.get("type", ""): dict(c) for c in prev_conditions}
    if phase == "Succeeded":
        reason = "PodCompleted"
    else:
        reason = "ContainersNotReady"
    message = f"containers with unready status: [{' '.join(unready)}]" if unready else ""
    ready = not unready and phase == "Running"
    conditions = [
        _condition("Initialized", True, prev, now),
        _condition("Ready", ready, prev, now, reason, message),
        _condition("ContainersReady", ready, prev, now, reason, message),
        _condition("PodScheduled", True, prev, now),
    ]
    out: Obj = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": host_ip,
        "podIP": host_ip,
        "startTime": rfc3339(start_time),
        "containerStatuses": [container_status(v, now) for v in ordered],
        "portMappings": [dict(m) for m in port_mappings],
    }
    waiting = [
        v for v in ordered if v.state is State.WAITING and v.reason in ("ErrImagePull", "ImagePullBackOff")
    ]
    if waiting:
        out["message"] = waiting[0].message
    return out
