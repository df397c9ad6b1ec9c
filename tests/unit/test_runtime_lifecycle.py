"""The pure container lifecycle: back-off, restart decisions, phase and conditions."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format

from agents import lifecycle as lc
from agents.lifecycle import BackoffConfig, ContainerView, State, Termination
from skiffpb import resources_pb2 as pb

CFG = BackoffConfig(base=1.0, cap=60.0, reset_after=600.0)


def pod(
    restart_policy: str = "Always", containers: tuple[str, ...] = ("app",), deleting: bool = False
) -> dict:
    p: dict[str, Any] = {
        "metadata": {"name": "p", "namespace": "default", "uid": "u"},
        "spec": {
            "restartPolicy": restart_policy,
            "containers": [{"name": n, "image": "demo"} for n in containers],
        },
    }
    if deleting:
        p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        p["metadata"]["deletionGracePeriodSeconds"] = 5
    return p


def term(code: int, start: float = 0.0, end: float = 1.0, reason: str = "") -> Termination:
    return Termination(code, reason or ("Completed" if code == 0 else "Error"), start, end)


def test_backoff_sequence_doubles_to_cap() -> None:
    delays = [lc.backoff_delay(streak, CFG) for streak in range(1, 11)]
    assert delays == [0, 1, 2, 4, 8, 16, 32, 60, 60, 60]


@pytest.mark.parametrize(
    ("streak", "ran_for", "expected"),
    [(0, 1.0, 1), (3, 5.0, 4), (7, 599.0, 8), (7, 600.0, 1), (7, 3600.0, 1)],
    ids=["first", "short-run", "just-under-reset", "reset", "long-run"],
)
def test_streak_resets_after_clean_run(streak: int, ran_for: float, expected: int) -> None:
    assert lc.next_streak(streak, ran_for, CFG) == expected


@pytest.mark.parametrize(
    ("policy", "code", "restart"),
    [
        ("Always", 0, True),
        ("Always", 1, True),
        ("OnFailure", 0, False),
        ("OnFailure", 2, True),
        ("Never", 0, False),
        ("Never", 137, False),
    ],
)
def test_should_restart(policy: str, code: int, restart: bool) -> None:
    assert lc.should_restart(policy, code) is restart


def test_crash_loop_restart_counts_and_backoff() -> None:
    v = ContainerView(name="app")
    t = 0.0
    restarts_at = []
    for i in range(5):
        v = lc.on_started(v, t, f"id{i}")
        assert v.restart_count == i
        t += 0.5
        v = lc.on_exited(v, term(1, t - 0.5, t), "Always", CFG)
        assert v.restart_at is not None  # restartPolicy Always: a restart is scheduled
        restarts_at.append(v.restart_at - t)
        t = v.restart_at
    assert restarts_at == [0, 1, 2, 4, 8]
    assert v.last_termination is not None and v.termination is not None


def test_exit_while_deleting_never_restarts() -> None:
    v = lc.on_exited(lc.on_started(ContainerView(name="a"), 0, "x"), term(143), "Always", CFG, deleting=True)
    assert v.restart_at is None


PLAN_CASES = [
    ("new pod starts all", pod(containers=("a", "b")), {}, {}, 0.0, [lc.Start("a"), lc.Start("b")], None),
    (
        "running is left alone",
        pod(),
        {"app": lc.on_started(ContainerView(name="app"), 0, "x")},
        {"app": True},
        1.0,
        [],
        None,
    ),
    (
        "first crash restarts now",
        pod(),
        {"app": lc.on_exited(lc.on_started(ContainerView(name="app"), 0, "x"), term(1, 0, 5), "Always", CFG)},
        {},
        5.0,
        [lc.Start("app")],
        None,
    ),
    (
        "backoff waits",
        pod(),
        {
            "app": lc.replace(
                ContainerView(name="app", state=State.TERMINATED, termination=term(1)), restart_at=10.0
            )
        },
        {},
        5.0,
        [],
        10.0,
    ),
    (
        "completed with Never stays",
        pod("Never"),
        {"app": lc.on_exited(lc.on_started(ContainerView(name="app"), 0, "x"), term(0), "Never", CFG)},
        {},
        5.0,
        [],
        None,
    ),
    (
        "deleting stops running",
        pod(deleting=True),
        {"app": lc.on_started(ContainerView(name="app"), 0, "x")},
        {"app": True},
        5.0,
        [lc.Stop("app", 5.0, "Killing")],
        None,
    ),
    ("deleting and stopped is deleted", pod(deleting=True), {}, {}, 5.0, [lc.ReportDeleted()], None),
]


@pytest.mark.parametrize(
    ("pod_", "views", "active", "now", "actions", "wake"),
    [c[1:] for c in PLAN_CASES],
    ids=[c[0] for c in PLAN_CASES],
)
def test_plan_pod(
    pod_: dict, views: dict, active: dict, now: float, actions: list, wake: float | None
) -> None:
    plan = lc.plan_pod(pod_, views, active, now)
    assert list(plan.actions) == actions
    assert plan.wake_at == wake


def running(name: str, ready: bool = True) -> ContainerView:
    return lc.replace(
        lc.on_started(ContainerView(name=name, image="demo"), 0, "x"), ready=ready, started=True
    )


def done(name: str, code: int, policy: str = "Never") -> ContainerView:
    return lc.on_exited(lc.on_started(ContainerView(name=name), 0, "x"), term(code), policy, CFG)


PHASES = [
    ("nothing started", "Always", [ContainerView(name="a")], "Pending"),
    ("image error", "Always", [lc.on_image_error(ContainerView(name="a"), "no", 0, CFG)], "Pending"),
    ("one running one pending", "Always", [running("a"), ContainerView(name="b")], "Pending"),
    ("running", "Always", [running("a"), running("b")], "Running"),
    ("crash looping", "Always", [done("a", 1, "Always")], "Running"),
    ("all succeeded", "Never", [done("a", 0), done("b", 0)], "Succeeded"),
    ("one failed", "Never", [done("a", 0), done("b", 2)], "Failed"),
    ("onfailure success", "OnFailure", [done("a", 0, "OnFailure")], "Succeeded"),
    ("failed while other runs", "Never", [done("a", 1), running("b")], "Running"),
]


@pytest.mark.parametrize(("policy", "views", "phase"), [c[1:] for c in PHASES], ids=[c[0] for c in PHASES])
def test_pod_phase(policy: str, views: list[ContainerView], phase: str) -> None:
    assert lc.pod_phase(policy, views) == phase


def test_pod_status_ready_conditions_and_schema() -> None:
    p = pod(containers=("a", "b"))
    views = {"a": running("a"), "b": running("b", ready=False)}
    mappings = [
        {"name": "http", "containerPort": 80, "hostPort": 30001, "hostIP": "127.0.60.1", "protocol": "TCP"}
    ]
    st = lc.pod_status(p, views, 100.0, host_ip="127.0.60.1", port_mappings=mappings, start_time=90.0)
    json_format.ParseDict(st, pb.PodStatus())  # fits the schema the master validates against
    cond = {c["type"]: c for c in st["conditions"]}
    assert st["phase"] == "Running"
    assert cond["Ready"]["status"] == "False" and "[b]" in cond["Ready"]["message"]
    assert cond["PodScheduled"]["status"] == "True"
    assert st["podIP"] == st["hostIP"] == "127.0.60.1"
    assert st["portMappings"] == mappings
    # Ready flips; the unchanged conditions keep their transition time.
    views["b"] = running("b")
    st2 = lc.pod_status(
        p,
        views,
        200.0,
        host_ip="127.0.60.1",
        port_mappings=mappings,
        start_time=90.0,
        prev_conditions=st["conditions"],
    )
    cond2 = {c["type"]: c for c in st2["conditions"]}
    assert cond2["Ready"]["status"] == "True"
    assert cond2["Ready"]["lastTransitionTime"] != cond["Ready"]["lastTransitionTime"]
    assert cond2["PodScheduled"]["lastTransitionTime"] == cond["PodScheduled"]["lastTransitionTime"]


def test_container_status_crash_loop_shows_waiting_and_last_state() -> None:
    v = done("a", 1, "Always")
    v = lc.on_started(v, 2, "y")
    v = lc.on_exited(v, term(1, 2, 3), "Always", CFG)  # second crash: 1 s back-off
    cs = lc.container_status(v, 3.5)
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert cs["restartCount"] == 1
    json_format.ParseDict(cs, pb.ContainerStatus())


def test_image_error_then_backoff() -> None:
    v = lc.on_image_error(ContainerView(name="a"), "not found", 0, CFG)
    assert v.reason == "ErrImagePull" and v.restart_at == 1.0
    v = lc.on_image_error(v, "not found", 1, CFG)
    assert v.reason == "ImagePullBackOff" and v.restart_at == 2.0
    cs = lc.container_status(v, 1.5)
    assert cs["state"]["waiting"] == {"reason": "ImagePullBackOff", "message": "not found"}
