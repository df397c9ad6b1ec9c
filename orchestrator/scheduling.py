"""Pure scheduling: which node should a pod run on?

Small filters, each with Kubernetes' fixed reason string, reject nodes; scorers whose weighted scores add
up rank the rest; the highest total wins and ties go to the node whose name sorts first. A `NodeInfo`
carries a node's usage and is updated in place as pods are placed, so a batch of pods costs O(nodes) per
pod and every placement sees the ones before it.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator import model

log = logging.getLogger(__name__)

Obj = dict[str, Any]

NOT_READY = "node(s) were not ready"
UNSCHEDULABLE = "node(s) were unschedulable"
SELECTOR_MISMATCH = "node(s) didn't match Pod's node affinity/selector"
TOO_MANY_PODS = "Too many pods"
INSUFFICIENT_CPU = "Insufficient cpu"
INSUFFICIENT_MEMORY = "Insufficient memory"
DEFAULT_MAX_PODS = 110


def _quantity(allocatable: Mapping[str, Any], key: str, parse: Callable[[Any], int]) -> int | None:
    value = allocatable.get(key)
    if value in (None, ""):
        return None
    try:
        return parse(value)
    except ValueError:
        return None


@dataclass
class NodeInfo:
    """A node and what is placed on it: requested cpu (millicores) and memory (bytes), pod count, and pods
    per owner (controller ownerReference uid). `None` allocatable means unlimited."""

    node: Obj
    cpu: int | None
    memory: int | None
    max_pods: int
    used_cpu: int = 0
    used_memory: int = 0
    pods: int = 0
    owners: Counter[str] = field(default_factory=Counter)
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = model.name_of(self.node)

    @classmethod
    def of(cls, node: Obj) -> NodeInfo:
        alloc = node.get("status", {}).get("allocatable") or node.get("status", {}).get("capacity") or {}
        max_pods = _quantity(alloc, "pods", lambda v: int(str(v)))
        return cls(
            node,
            _quantity(alloc, "cpu", model.parse_cpu),
            _quantity(alloc, "memory", model.parse_bytes),
            DEFAULT_MAX_PODS if max_pods is None else max_pods,
        )

    def add(self, pod: Obj) -> None:
        cpu, memory = model.pod_requests(pod)
        self.used_cpu += cpu
        self.used_memory += memory
        self.pods += 1
        owner = owner_uid(pod)
        if owner:
            self.owners[owner] += 1

    def copy(self) -> NodeInfo:
        return NodeInfo(
            self.node, self.cpu, self.memory, self.max_pods, self.used_cpu, self.used_memory, self.pods,
            Counter(self.owners),
        )  # fmt: skip

    def remove(self, pod: Obj) -> None:
        cpu, memory = model.pod_requests(pod)
        self.used_cpu -= cpu
        self.used_memory -= memory
        self.pods -= 1
        owner = owner_uid(pod)
        if owner:
            self.owners[owner] -= 1


def owner_uid(pod: Obj) -> str:
    ref = model.controller_of(pod)
    return ref.get("uid", "") if ref else ""


def occupies_node(pod: Obj) -> bool:
    """A pod bound to a node that has not finished holds its requests there (terminating ones too)."""
    return bool(pod.get("spec", {}).get("nodeName")) and pod.get("status", {}).get("phase") not in (
        "Succeeded",
        "Failed",
    )


def node_infos(nodes: Iterable[Obj], pods: Iterable[Obj]) -> dict[str, NodeInfo]:
    """NodeInfo per node name, with the usage of every pod that occupies it."""
    infos = {model.name_of(n): NodeInfo.of(n) for n in nodes}
    for p in pods:
        if occupies_node(p):
            info = infos.get(p["spec"]["nodeName"])
            if info is not None:
                info.add(p)
    return infos


@dataclass(frozen=True)
class PodFacts:
    """What the filters and scorers ask of a pod, computed once per pod."""

    pod: Obj
    cpu: int
    memory: int
    owner: str

    @classmethod
    def of(cls, pod: Obj) -> PodFacts:
        cpu, memory = model.pod_requests(pod)
        return cls(pod, cpu, memory, owner_uid(pod))

    @property
    def spec(self) -> Obj:
        return self.pod.get("spec", {})


# ---------------------------------------------------------------- filters
# Each returns the reasons the node is rejected for (empty: it fits).

Filter = Callable[[PodFacts, NodeInfo], tuple[str, ...]]


def node_is_ready(node: Obj) -> bool:
    for c in node.get("status", {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def fits_ready(pod: PodFacts, info: NodeInfo) -> tuple[str, ...]:
    return () if node_is_ready(info.node) else (NOT_READY,)


def fits_schedulable(pod: PodFacts, info: NodeInfo) -> tuple[str, ...]:
    return (UNSCHEDULABLE,) if info.node.get("spec", {}).get("unschedulable") else ()


def fits_selector(pod: PodFacts, info: NodeInfo) -> tuple[str, ...]:
    selector = pod.spec.get("nodeSelector") or {}
    labels = model.labels_of(info.node)
    return () if all(labels.get(k) == v for k, v in selector.items()) else (SELECTOR_MISMATCH,)


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Kubernetes' ToleratesTaint: effect empty or equal; key empty with Exists matches every key."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    op = toleration.get("operator") or "Equal"
    if not toleration.get("key"):
        return op == "Exists"
    if toleration["key"] != taint.get("key"):
        return False
    return op == "Exists" or (toleration.get("value") or "") == (taint.get("value") or "")


def fits_taints(pod: PodFacts, info: NodeInfo) -> tuple[str, ...]:
    tolerations = pod.spec.get("tolerations") or []
    for taint in info.node.get("spec", {}).get("taints") or []:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            return (f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}",)
    return ()


def fits_pod_count(pod: PodFacts, info: NodeInfo) -> tuple[str, ...]:
    return (TOO_MANY_PODS,) if info.pods + 1 > info.max_pods else ()


def fits_resources(pod: PodFacts, info: NodeInfo) -> tuple[str, ...]:
    cpu, memory = pod.cpu, pod.memory
    reasons = []
    if cpu and info.cpu is not None and info.used_cpu + cpu > info.cpu:
        reasons.append(INSUFFICIENT_CPU)
    if memory and info.memory is not None and info.used_memory + memory > info.memory:
        reasons.append(INSUFFICIENT_MEMORY)
    return tuple(reasons)


# ---------------------------------------------------------------- scores
# Each scores all the nodes that passed every filter at once, 0..100 each, higher is better (Kubernetes'
# Score and NormalizeScore in one step: a scorer sees the other nodes' figures to normalise against).
# One call per pod rather than per node keeps a pod's scoring at 1,000 nodes well under a millisecond.

Scorer = Callable[[PodFacts, list[NodeInfo]], list[float]]


def least_allocated(pod: PodFacts, infos: list[NodeInfo]) -> list[float]:
    """The fraction of cpu and memory left free after placing the pod (pod count for a pod without
    requests, so pods that request nothing still spread)."""
    cpu, memory = pod.cpu, pod.memory
    if not cpu and not memory:
        return [100.0 * (i.max_pods - i.pods - 1) / max(1, i.max_pods) for i in infos]
    out = []
    for i in infos:
        fractions = []
        if cpu and i.cpu:
            fractions.append((i.cpu - i.used_cpu - cpu) / i.cpu)
        if memory and i.memory:
            fractions.append((i.memory - i.used_memory - memory) / i.memory)
        if not fractions:
            fractions.append((i.max_pods - i.pods - 1) / max(1, i.max_pods))
        out.append(100.0 * sum(fractions) / len(fractions))
    return out


def owner_spread(pod: PodFacts, infos: list[NodeInfo]) -> list[float]:
    """Fewer pods of the same owner on the node is better (Kubernetes' SelectorSpread), relative to
    the node holding the most."""
    owner = pod.owner
    counts = [i.owners[owner] for i in infos] if owner else []
    most = max(counts, default=0)
    if most == 0:
        return [100.0] * len(infos)
    return [100.0 * (most - n) / most for n in counts]


# ---------------------------------------------------------------- the pipeline
# Filters run cheapest and most decisive first; a node reports only the first filter that rejects it
# (as Kubernetes does), so "not ready" hides "insufficient memory" on a dead node. The static filters
# look only at the node and at the pod's selector and tolerations, so their verdict is shared by every
# pod of the same shape (the replicas of one template) within a batch; the dynamic ones look at usage,
# which each placement changes. Spread weighs twice least-allocated so replicas of one owner land
# evenly on equal nodes before balancing by usage.
STATIC_FILTERS: tuple[Filter, ...] = (fits_ready, fits_schedulable, fits_selector, fits_taints)
DYNAMIC_FILTERS: tuple[Filter, ...] = (fits_pod_count, fits_resources)
FILTERS: tuple[Filter, ...] = STATIC_FILTERS + DYNAMIC_FILTERS
# A pod that requests no cpu or memory cannot be short of either, so the resource filter is skipped
# for it (what a Kubernetes PreFilter's Skip status does): half the per-node calls for such a pod.
COUNT_FILTERS: tuple[Filter, ...] = (fits_pod_count,)
SCORERS: tuple[tuple[Scorer, float], ...] = (
    (least_allocated, 1.0),
    (owner_spread, 2.0),
)

# Per batch of placements over one set of NodeInfos: pod shape -> (nodes passing the static filters,
# how many nodes each static reason rejected).
StaticCache = dict[str, tuple[list[NodeInfo], Counter[str]]]


@dataclass(frozen=True)
class Choice:
    """The node chosen (None: unschedulable) and how many nodes each filter reason rejected."""

    node_name: str | None
    reasons: Counter[str]
    total_nodes: int = 0
    examined: int = 0  # nodes the dynamic filters looked at

    def message(self) -> str:
        """Kubernetes' FailedScheduling text: '0/5 nodes are available: 3 Insufficient memory, 2 ...'."""
        if self.total_nodes == 0:
            return "0/0 nodes are available: no nodes available to schedule pods."
        parts = ", ".join(f"{n} {reason}" for reason, n in sorted(self.reasons.items()))
        return f"0/{self.total_nodes} nodes are available: {parts}."


def _run_filters(
    filters: tuple[Filter, ...],
    facts: PodFacts,
    infos: Iterable[NodeInfo],
    reasons: Counter[str],
    enough: int | None = None,
) -> tuple[list[NodeInfo], int]:
    """The nodes that pass every filter (stopping once `enough` did), and how many were examined."""
    passed: list[NodeInfo] = []
    examined = 0
    for info in infos:
        if enough is not None and len(passed) >= enough:
            break
        examined += 1
        for f in filters:
            rejected = f(facts, info)
            if rejected:
                reasons.update(rejected)
                break
        else:
            passed.append(info)
    return passed, examined


def _shape(facts: PodFacts) -> str:
    return json.dumps([facts.spec.get("nodeSelector"), facts.spec.get("tolerations")], sort_keys=True)


MIN_FEASIBLE_NODES_TO_FIND = 100
BASE_PERCENTAGE_OF_NODES_TO_SCORE = 50
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5


def feasible_nodes_to_find(nodes: int) -> int:
    """How many feasible nodes the scheduler looks for before it scores them: Kubernetes' adaptive
    percentageOfNodesToScore (all of up to 100 nodes; 50% less 1% per 125 nodes, at least 5% and at
    least 100 nodes, beyond). At 1,000 nodes: 420."""
    if nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return nodes
    percentage = max(BASE_PERCENTAGE_OF_NODES_TO_SCORE - nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    return max(nodes * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


def choose(
    pod: Obj, infos: Mapping[str, NodeInfo], cache: StaticCache | None = None, start: int = 0
) -> Choice:
    """Pick a node for `pod` among `infos` (unchanged; the caller `add`s the pod to the chosen one).

    `cache` keeps the static filters' verdicts between calls over the same `infos`; pass a new dict
    whenever the nodes themselves may have changed. As Kubernetes' scheduler does, the dynamic
    filters stop once `feasible_nodes_to_find` nodes passed, going round the nodes from `start` (the
    caller moves it on by `Choice.examined`, so every node gets its turn); only those are scored.
    """
    facts = PodFacts.of(pod)
    shape = _shape(facts)
    static = cache.get(shape) if cache is not None else None
    if static is None:
        static_reasons: Counter[str] = Counter()
        static = (_run_filters(STATIC_FILTERS, facts, infos.values(), static_reasons)[0], static_reasons)
        if cache is not None:
            cache[shape] = static
    candidates, static_reasons = static
    reasons = Counter(static_reasons)
    wanted = feasible_nodes_to_find(len(infos))
    if candidates and start % len(candidates):
        at = start % len(candidates)
        candidates = candidates[at:] + candidates[:at]
    dynamic = DYNAMIC_FILTERS if facts.cpu or facts.memory else COUNT_FILTERS
    feasible, examined = _run_filters(dynamic, facts, candidates, reasons, wanted)
    if not feasible:
        return Choice(None, reasons, len(infos), examined)
    totals = [0.0] * len(feasible)
    for scorer, weight in SCORERS:
        totals = [t + weight * score for t, score in zip(totals, scorer(facts, feasible), strict=True)]
    top = max(totals)
    best = min(i.name for i, total in zip(feasible, totals, strict=True) if total == top)
    return Choice(best, reasons, len(infos), examined)


def select_node(pod: Obj, nodes: Iterable[Obj], pods_by_node: Mapping[str, Iterable[Obj]]) -> Choice:
    """Pick a node for one pod given every node and the pods bound to each."""
    return choose(pod, node_infos(nodes, (p for ps in pods_by_node.values() for p in ps)))


def schedule(pending: Iterable[Obj], nodes: Iterable[Obj], pods: Iterable[Obj]) -> list[tuple[Obj, Choice]]:
    """Place pods one after another, each seeing the placements before it."""
    infos = node_infos(nodes, pods)
    cache: StaticCache = {}
    out = []
    start = 0
    for pod in pending:
        choice = choose(pod, infos, cache, start)
        start += choice.examined
        if choice.node_name is not None:
            infos[choice.node_name].add(pod)
        out.append((pod, choice))
    return out
