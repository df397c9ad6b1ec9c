"""An in-memory Cluster with the real semantics, and fake agents, for controller component tests.

FakeCluster: resourceVersion compare-and-set, generateName, uid/creationTimestamp/generation set by the
"server", JSON merge patch, graceful deletion of bound pods (deletionTimestamp; the agent removes them),
events fanned out on the event loop after each commit, an injected clock. Optional `latency` makes each
write land after a delay even if its caller is cancelled (a Raft write whose outcome is unknown), and
`lease()` hands out a fenced view whose writes fail with Fenced once a newer lease was taken.
FakeKubelet: plays the agents of a set of nodes: heartbeats, runs bound pods (Running, Ready, port
mappings) and finishes graceful deletions.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import random
import string
from collections import Counter
from collections.abc import Callable
from typing import Any

from orchestrator import errors, model

Obj = dict[str, Any]


class FakeClock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


class FakeCluster:
    """Implements orchestrator.controllers.base.Cluster in memory (unfenced; see `lease`)."""

    def __init__(self, clock: FakeClock | None = None, *, seed: int = 0, latency: float = 0.0) -> None:
        self.clock = clock or FakeClock()
        self.latency = latency
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.revision = 0
        self.epoch = 0
        self.writes: Counter[str] = Counter()
        self.fail_next: list[BaseException] = []
        self.observers: list[Callable[[str, Obj], None]] = []  # called synchronously at each commit
        self._handlers: list[Callable[[str, Obj], None]] = []
        self._rng = random.Random(seed)
        self._uids = 0
        self._landing: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------ reads

    def now(self) -> float:
        return self.clock.now()

    def list(self, kind: str, namespace: str = "") -> list[Obj]:
        return [
            o for (k, ns, _), o in self.objects.items() if k == kind and (not namespace or ns == namespace)
        ]

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.objects.get((kind, namespace, name))

    def pods_on_node(self, node: str) -> builtins.list[Obj]:
        return [p for p in self.list("Pod") if p.get("spec", {}).get("nodeName") == node]

    def pods_controlled_by(self, namespace: str, kind: str, name: str) -> builtins.list[Obj]:
        return [
            p
            for p in self.list("Pod", namespace)
            if (ref := model.controller_of(p)) is not None
            and (ref.get("kind"), ref.get("name")) == (kind, name)
        ]

    def heartbeats(self) -> dict[str, float]:
        """None apart from the nodes: a fake node's heartbeat is its Ready condition's lastHeartbeatTime."""
        return {}

    def subscribe(self, handler: Callable[[str, Obj], None]) -> Callable[[], None]:
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler)

    # ------------------------------------------------------------ writes

    def lease(self) -> LeasedCluster:
        """Take the leader lease: earlier leases' writes fail with Fenced from now on."""
        self.epoch += 1
        return LeasedCluster(self, self.epoch)

    async def create(self, obj: Obj) -> Obj:
        return await self._write(lambda: self.apply_create(obj))

    async def update(self, obj: Obj) -> Obj:
        return await self._write(lambda: self.apply_update(obj))

    async def patch(self, kind: str, namespace: str, name: str, patch: Obj, *, status: bool = False) -> Obj:
        return await self._write(lambda: self.apply_patch(kind, namespace, name, patch, status=status))

    async def bind(self, namespace: str, name: str, node: str) -> Obj:
        return await self._write(
            lambda: self.apply_patch("Pod", namespace, name, {"spec": {"nodeName": node}})
        )

    async def delete(
        self, kind: str, namespace: str, name: str, *, force: bool = False, grace_seconds: int | None = None
    ) -> None:
        await self._write(
            lambda: self.apply_delete(kind, namespace, name, force=force, grace_seconds=grace_seconds)
        )

    async def _write(self, fn: Callable[[], Any], epoch: int | None = None) -> Any:
        if self.fail_next:
            raise self.fail_next.pop(0)

        def commit() -> Any:
            if epoch is not None and epoch != self.epoch:
                raise errors.Fenced("lease lost")
            return fn()

        if not self.latency:
            return commit()

        async def land() -> Any:
            await asyncio.sleep(self.latency)
            return commit()

        task = asyncio.get_running_loop().create_task(land())
        self._landing.add(task)
        task.add_done_callback(self._landing.discard)
        return await asyncio.shield(task)

    async def settle(self) -> None:
        """Wait for writes still landing."""
        while self._landing:
            await asyncio.gather(*self._landing, return_exceptions=True)

    # ------------------------------------------------------------ commits (synchronous)

    def _key(self, obj: Obj) -> tuple[str, str, str]:
        info = model.KINDS[obj["kind"]]
        ns = obj["metadata"].get("namespace") or model.DEFAULT_NAMESPACE if info.namespaced else ""
        return obj["kind"], ns, obj["metadata"]["name"]

    def _commit(self, event: str, obj: Obj) -> Obj:
        self.revision += 1
        key = self._key(obj)
        self.writes[f"{event} {obj['kind']}"] += 1
        if event == "DELETED":
            self.objects.pop(key, None)
        else:
            obj["metadata"]["resourceVersion"] = str(self.revision)
            self.objects[key] = obj
        for o in self.observers:
            o(event, obj)
        loop = asyncio.get_running_loop()
        for h in list(self._handlers):
            loop.call_soon(h, event, obj)
        return obj

    def apply_create(self, obj: Obj) -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if model.KINDS[obj["kind"]].namespaced:
            meta["namespace"] = meta.get("namespace") or model.DEFAULT_NAMESPACE
        if not meta.get("name"):
            suffix = "".join(self._rng.choice(string.ascii_lowercase + string.digits) for _ in range(5))
            meta["name"] = meta["generateName"] + suffix
        if self._key(obj) in self.objects:
            raise errors.AlreadyExists(f"{obj['kind']} {meta['name']} already exists")
        self._uids += 1
        meta["uid"] = f"uid-{self._uids:06d}"
        meta["creationTimestamp"] = model.rfc3339(self.now())
        meta["generation"] = 1
        return self._commit("ADDED", obj)

    def apply_update(self, obj: Obj) -> Obj:
        obj = copy.deepcopy(obj)
        current = self.objects.get(self._key(obj))
        if current is None:
            raise errors.NotFound(obj["metadata"]["name"])
        if obj["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise errors.Conflict(f"{obj['kind']} {obj['metadata']['name']}: resourceVersion changed")
        for k in ("uid", "creationTimestamp", "generation", "deletionTimestamp"):
            if k in current["metadata"]:
                obj["metadata"][k] = current["metadata"][k]
        if obj.get("spec") != current.get("spec"):
            obj["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        return self._commit("MODIFIED", obj)

    def apply_patch(self, kind: str, namespace: str, name: str, patch: Obj, *, status: bool = False) -> Obj:
        current = self.objects.get((kind, namespace, name))
        if current is None:
            raise errors.NotFound(f"{kind} {namespace}/{name}")
        if status:
            patch = {"status": patch.get("status", {})}
        else:
            patch = {k: v for k, v in patch.items() if k != "status"}
        obj = merge_patch(copy.deepcopy(current), patch)
        if obj.get("spec") != current.get("spec"):
            obj["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        return self._commit("MODIFIED", obj)

    def apply_delete(
        self, kind: str, namespace: str, name: str, *, force: bool = False, grace_seconds: int | None = None
    ) -> None:
        current = self.objects.get((kind, namespace, name))
        if current is None:
            raise errors.NotFound(f"{kind} {namespace}/{name}")
        if kind == "Pod" and current.get("spec", {}).get("nodeName") and not force:
            if current["metadata"].get("deletionTimestamp"):
                return
            grace = (
                grace_seconds
                if grace_seconds is not None
                else current["spec"].get("terminationGracePeriodSeconds", 30)
            )
            obj = copy.deepcopy(current)
            obj["metadata"]["deletionTimestamp"] = model.rfc3339(self.now() + grace)
            obj["metadata"]["deletionGracePeriodSeconds"] = grace
            self._commit("MODIFIED", obj)
            return
        self._commit("DELETED", current)


class LeasedCluster:
    """A FakeCluster view whose writes are fenced by the lease it was created with."""

    def __init__(self, cluster: FakeCluster, epoch: int) -> None:
        self.cluster = cluster
        self.epoch_held = epoch

    def now(self) -> float:
        return self.cluster.now()

    def list(self, kind: str, namespace: str = "") -> list[Obj]:
        return self.cluster.list(kind, namespace)

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.cluster.get(kind, namespace, name)

    def pods_on_node(self, node: str) -> builtins.list[Obj]:
        return self.cluster.pods_on_node(node)

    def pods_controlled_by(self, namespace: str, kind: str, name: str) -> builtins.list[Obj]:
        return self.cluster.pods_controlled_by(namespace, kind, name)

    def heartbeats(self) -> dict[str, float]:
        return self.cluster.heartbeats()

    def subscribe(self, handler: Callable[[str, Obj], None]) -> Callable[[], None]:
        return self.cluster.subscribe(handler)

    async def create(self, obj: Obj) -> Obj:
        c = self.cluster
        return await c._write(lambda: c.apply_create(obj), self.epoch_held)

    async def update(self, obj: Obj) -> Obj:
        c = self.cluster
        return await c._write(lambda: c.apply_update(obj), self.epoch_held)

    async def patch(self, kind: str, namespace: str, name: str, patch: Obj, *, status: bool = False) -> Obj:
        c = self.cluster
        return await c._write(
            lambda: c.apply_patch(kind, namespace, name, patch, status=status), self.epoch_held
        )

    async def bind(self, namespace: str, name: str, node: str) -> Obj:
        c = self.cluster
        return await c._write(
            lambda: c.apply_patch("Pod", namespace, name, {"spec": {"nodeName": node}}), self.epoch_held
        )

    async def delete(
        self, kind: str, namespace: str, name: str, *, force: bool = False, grace_seconds: int | None = None
    ) -> None:
        c = self.cluster
        await c._write(
            lambda: c.apply_delete(kind, namespace, name, force=force, grace_seconds=grace_seconds),
            self.epoch_held,
        )


def make_node(
    name: str, now: float, *, cpu: str = "4", memory: str = "8Gi", pods: str = "110", ip: str = ""
) -> Obj:
    stamp = model.rfc3339_micro(now)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
            "capacity": {"cpu": cpu, "memory": memory, "pods": pods},
            "addresses": [{"type": "InternalIP", "address": ip or "127.0.0.1"}],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                }
            ],
        },
    }


class FakeKubelet:
    """The agents of `nodes`: `step()` heartbeats every alive node, runs its newly bound pods and
    removes its terminating ones. A node taken out of `alive` goes silent."""

    def __init__(self, cluster: FakeCluster, nodes: list[str], **node_kwargs: Any) -> None:
        self.cluster = cluster
        self.alive = set(nodes)
        self._ports = 30000
        for i, name in enumerate(nodes):
            cluster.apply_create(make_node(name, cluster.now(), ip=f"127.0.1.{i + 1}", **node_kwargs))

    def step(self) -> None:
        c = self.cluster
        now = c.now()
        stamp = model.rfc3339_micro(now)
        for name in sorted(self.alive):
            node = c.get("Node", "", name)
            if node is None:
                continue
            cond = next(x for x in node["status"]["conditions"] if x["type"] == "Ready")
            if cond.get("lastHeartbeatTime") != stamp or cond.get("status") != "True":
                ready = {**cond, "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": stamp}
                if cond.get("status") != "True":
                    ready["lastTransitionTime"] = stamp
                c.apply_patch("Node", "", name, {"status": {"conditions": [ready]}}, status=True)
        for pod in list(c.list("Pod")):
            node_name = pod.get("spec", {}).get("nodeName")
            if node_name not in self.alive:
                continue
            ns, name = model.namespace_of(pod), model.name_of(pod)
            if model.pod_is_terminating(pod):
                c.apply_delete("Pod", ns, name, force=True)
            elif pod.get("status", {}).get("phase") != "Running":
                node = c.get("Node", "", node_name) or {}
                ip = node.get("status", {}).get("addresses", [{}])[0].get("address", "")
                mappings = []
                for container in pod["spec"].get("containers") or []:
                    for port in container.get("ports") or []:
                        self._ports += 1
                        mappings.append(
                            {
                                "name": port.get("name", ""),
                                "containerPort": port["containerPort"],
                                "hostPort": self._ports,
                                "hostIP": ip,
                                "protocol": "TCP",
                            }
                        )
                status = {
                    "phase": "Running",
                    "hostIP": ip,
                    "portMappings": mappings,
                    "conditions": [
                        {"type": "Ready", "status": "True", "lastTransitionTime": model.rfc3339(now)}
                    ],
                }
                c.apply_patch("Pod", ns, name, {"status": status}, status=True)
