"""The fault schedule: a pure function of the seed, the duration and the cluster's shape.

Faults on masters never overlap (at most one master is down, paused or cut off at a time, so a
majority always stands); every fault that takes something away is healed after its hold time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

KINDS = (
    "kill-master",  # kill -9 of a master, restarted after the hold
    "kill-agent",  # kill -9 of an agent only (its containers keep running), restarted
    "kill-worker",  # kill -9 of an agent and all its containers, restarted
    "kill-container",  # kill -9 of one container (the agent restarts it)
    "kill-lb-worker",  # kill -9 of one balancer worker process (its supervisor restarts it)
    "pause-master",  # SIGSTOP, SIGCONT after the hold
    "pause-agent",
    "partition-master",  # blackhole one master's links to the other masters
)
WEIGHTS = (3, 2, 2, 3, 2, 2, 2, 2)
TOUCHES_MASTER = {"kill-master", "pause-master", "partition-master"}


@dataclass(frozen=True)
class Fault:
    at: float  # seconds from the start
    kind: str
    target: int  # index into the masters, workers or balancer workers
    hold: float  # seconds until it is healed (0 = nothing to heal)

    @property
    def healed_at(self) -> float:
        return self.at + self.hold


def schedule(
    seed: int, duration: float, masters: int, workers: int, *, mean_gap: float = 4.0, settle: float = 5.0
) -> list[Fault]:
    """Faults for a run of `duration` seconds; all are healed `settle` seconds before its end."""
    rng = random.Random(seed)
    faults: list[Fault] = []
    t = 2.0
    master_busy_until = 0.0
    worker_busy_until = [0.0] * workers
    while True:
        t += rng.uniform(0.5, 2 * mean_gap - 0.5)
        kind = rng.choices(KINDS, WEIGHTS)[0]
        hold = {
            "kill-master": rng.uniform(2.0, 5.0),
            "kill-agent": rng.uniform(1.0, 4.0),
            "kill-worker": rng.uniform(3.0, 6.0),
            "pause-master": rng.uniform(1.0, 3.0),
            "pause-agent": rng.uniform(1.0, 3.0),
            "partition-master": rng.uniform(2.0, 5.0),
        }.get(kind, 0.0)
        if t + hold > duration - settle:
            return faults
        if kind in TOUCHES_MASTER:
            if t < master_busy_until:
                continue
            target = rng.randrange(masters)
            master_busy_until = t + hold + 1.0
        elif kind in ("kill-agent", "kill-worker", "pause-agent", "kill-container"):
            free = [i for i in range(workers) if worker_busy_until[i] <= t]
            if not free:
                continue
            target = rng.choice(free)
            # Keep a worker quiet after it is healed so two faults never stack on one node.
            worker_busy_until[target] = t + hold + 2.0
        else:
            target = rng.randrange(2)
        faults.append(Fault(round(t, 2), kind, target, round(hold, 2)))
