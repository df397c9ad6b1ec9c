"""`skiff rollout status|history|undo|restart deployment/NAME`. The choice of revisions is
orchestrator.workloads'; this module reads, prints and writes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from orchestrator import errors, workloads
from orchestrator.cli import printers
from orchestrator.cli.common import CliError, Ctx, get_object, one_target, parse_duration, update_with_retry
from orchestrator.cli.parser import Subcommands
from orchestrator.model import name_of, namespace_of, rfc3339


def rollout_message(dep: Mapping[str, Any]) -> tuple[str, bool]:
    """kubectl's rollout status message for a deployment and whether the rollout is done.
    Raises CliError when its progress deadline was exceeded."""
    name = name_of(dep)
    meta = dep.get("metadata") or {}
    spec = dep.get("spec") or {}
    st = dep.get("status") or {}
    if int(meta.get("generation", 0)) > int(st.get("observedGeneration", 0)):
        return "Waiting for deployment spec update to be observed...", False
    for c in st.get("conditions") or []:
        if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            raise CliError(f'deployment "{name}" exceeded its progress deadline')
    want = int(spec.get("replicas", 1))
    updated = int(st.get("updatedReplicas", 0))
    total = int(st.get("replicas", 0))
    available = int(st.get("availableReplicas", 0))
    if updated < want:
        return (
            f'Waiting for deployment "{name}" rollout to finish: {updated} out of {want} new replicas have been updated...',
            False,
        )
    if total > updated:
        return (
            f'Waiting for deployment "{name}" rollout to finish: {total - updated} old replicas are pending termination...',
            False,
        )
    if available < updated:
        return (
            f'Waiting for deployment "{name}" rollout to finish: {available} of {updated} updated replicas are available...',
            False,
        )
    return f'deployment "{name}" successfully rolled out', True


async def rollout_status(ctx: Ctx, name: str) -> int:
    a = ctx.args
    dep = await get_object(ctx, "Deployment", name, ctx.namespace)
    last = ""

    async def follow() -> None:
        nonlocal last, dep
        while True:
            msg, done = rollout_message(dep)
            if msg != last:
                ctx.print(msg)
                last = msg
            if done or not a.watch_status:
                return
            _, rv = await ctx.client.list("Deployment", ctx.namespace, "", f"metadata.name={name}")
            dep = await get_object(ctx, "Deployment", name, ctx.namespace)
            msg, done = rollout_message(dep)
            if done or msg != last:
                continue
            async for ev in ctx.client.watch(
                "Deployment", ctx.namespace, "", f"metadata.name={name}", resource_version=rv
            ):
                if ev.type == "DELETED":
                    raise CliError(f'deployment "{name}" was deleted')
                if ev.obj is not None and name_of(ev.obj) == name:
                    dep = ev.obj
                    if rollout_message(dep)[0] != last:
                        break

    timeout = parse_duration(a.timeout) if a.timeout else 0
    try:
        if timeout:
            await asyncio.wait_for(follow(), timeout)
        else:
            await follow()
    except TimeoutError:
        raise CliError("timed out waiting for the condition") from None
    return 0


async def cmd_rollout(ctx: Ctx) -> int:
    a = ctx.args
    kind, name = one_target(a.resources, f"rollout {a.action}")
    if kind != "Deployment":
        raise CliError(f"no rollout support for {printers.plural(kind)}; only deployments")
    if a.action == "status":
        return await rollout_status(ctx, name)
    if a.action == "restart":
        stamp = rfc3339(ctx.now())
        patch = {
            "spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}
        }
        try:
            await ctx.client.patch("Deployment", ctx.namespace, name, patch)
        except errors.NotFound:
            raise errors.NotFound(f'deployments.apps "{name}" not found') from None
        ctx.print(f"deployment.apps/{name} restarted")
        return 0
    dep = await get_object(ctx, "Deployment", name, ctx.namespace)
    rss, _ = await ctx.client.list("ReplicaSet", namespace_of(dep))
    rss = workloads.history(dep, rss)
    if a.action == "history":
        if a.revision:
            rs = workloads.with_revision(rss, a.revision)
            if rs is None:
                raise CliError(f"unable to find the specified revision {a.revision}")
            ctx.print(f"deployment.apps/{name} with revision #{a.revision}")
            ctx.print(printers.to_yaml([rs["spec"]["template"]], True))
            return 0
        ctx.print(f"deployment.apps/{name}")
        rows = [
            [
                str(workloads.revision_of(r)),
                (r["metadata"].get("annotations") or {}).get("kubernetes.io/change-cause", "<none>"),
            ]
            for r in rss
        ]
        ctx.print(printers.format_table(["REVISION", "CHANGE-CAUSE"], rows))
        return 0
    # undo
    try:
        target = workloads.undo_target(dep, rss, a.to_revision)
    except workloads.UndoError as e:
        raise CliError(str(e)) from None
    result = await update_with_retry(ctx, "Deployment", name, lambda obj: workloads.rolled_back(obj, target))
    if result is None:
        ctx.print(
            f"deployment.apps/{name} skipped rollback (current template already matches revision {workloads.revision_of(target)})"
        )
    else:
        ctx.print(f"deployment.apps/{name} rolled back")
    return 0


def register(sub: Subcommands) -> None:
    p = sub.add("rollout", "Manage the rollout of a deployment", cmd_rollout)
    p.add_argument("action", choices=["status", "history", "undo", "restart"])
    p.add_argument("resources", nargs="+", metavar="TYPE/NAME")
    p.add_argument("--to-revision", type=int, default=0)
    p.add_argument("--revision", type=int, default=0)
    p.add_argument("--timeout", default="", help="status: give up after this long (e.g. 2m)")
    p.add_argument("-w", "--watch", dest="watch_status", default=True, type=lambda v: v.lower() != "false")
