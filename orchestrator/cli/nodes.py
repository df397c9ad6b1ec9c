"""`skiff cordon|uncordon NODE...` and `skiff drain NODE`: a node's schedulability, and evicting its pods."""

from __future__ import annotations

import asyncio
import time

from orchestrator import errors
from orchestrator.cli.common import CliError, Ctx, get_object, parse_duration
from orchestrator.cli.parser import Subcommands
from orchestrator.model import controller_of, name_of, namespace_of


async def _set_unschedulable(ctx: Ctx, node: str, value: bool) -> None:
    obj = await get_object(ctx, "Node", node, "")
    word = "cordoned" if value else "uncordoned"
    if bool((obj.get("spec") or {}).get("unschedulable")) == value:
        ctx.print(f"node/{node} already {word}")
        return
    await ctx.client.patch("Node", "", node, {"spec": {"unschedulable": value}})
    ctx.print(f"node/{node} {word}")


async def cmd_cordon(ctx: Ctx) -> int:
    for node in ctx.args.nodes:
        await _set_unschedulable(ctx, node, ctx.args.verb == "cordon")
    return 0


async def cmd_drain(ctx: Ctx) -> int:
    a = ctx.args
    node = a.node
    await _set_unschedulable(ctx, node, True)
    pods, _ = await ctx.client.list("Pod", "", "", f"spec.nodeName={node}")
    pods = [p for p in pods if (p.get("spec") or {}).get("nodeName") == node]
    unmanaged = [p for p in pods if controller_of(p) is None]
    if unmanaged and not a.force:
        names = ", ".join(f"{namespace_of(p)}/{name_of(p)}" for p in unmanaged)
        raise CliError(
            f'unable to drain node "{node}" due to error: cannot delete Pods not managed by a '
            f"ReplicaSet or other controller (use --force to override): {names}"
        )
    daemons = [p for p in pods if (controller_of(p) or {}).get("kind") == "DaemonSet"]
    if daemons and not a.ignore_daemonsets:
        raise CliError(f'unable to drain node "{node}": DaemonSet-managed pods (use --ignore-daemonsets)')
    if unmanaged:
        ctx.warn(
            "Warning: deleting Pods that declare no controller: "
            + ", ".join(f"{namespace_of(p)}/{name_of(p)}" for p in unmanaged)
        )
    victims = [p for p in pods if p not in daemons]
    for p in victims:
        ctx.print(f"evicting pod {namespace_of(p)}/{name_of(p)}")
        try:
            await ctx.client.delete("Pod", namespace_of(p), name_of(p))
        except errors.NotFound:
            pass
    deadline = time.monotonic() + parse_duration(a.timeout)
    remaining = {(namespace_of(p), name_of(p), p["metadata"].get("uid")) for p in victims}
    while remaining:
        for ns, name, uid in list(remaining):
            try:
                cur = await ctx.client.get("Pod", ns, name)
                if uid and cur["metadata"].get("uid") != uid:
                    raise errors.NotFound(name)
            except errors.NotFound:
                remaining.discard((ns, name, uid))
                ctx.print(f"pod/{name} evicted")
        if remaining and time.monotonic() > deadline:
            raise CliError(
                f'drain did not complete within {a.timeout}: {len(remaining)} pods still terminating on node "{node}"'
            )
        if remaining:
            await asyncio.sleep(0.2)
    ctx.print(f"node/{node} drained")
    return 0


def register(sub: Subcommands) -> None:
    for verb, text in (("cordon", "Mark node as unschedulable"), ("uncordon", "Mark node as schedulable")):
        p = sub.add(verb, text, cmd_cordon)
        p.add_argument("nodes", nargs="+", metavar="NODE")

    p = sub.add("drain", "Cordon a node and evict its pods", cmd_drain)
    p.add_argument("node", metavar="NODE")
    p.add_argument("--ignore-daemonsets", action="store_true")
    p.add_argument("--force", action="store_true", help="also delete pods without a controller")
    p.add_argument("--delete-emptydir-data", action="store_true", help="accepted for kubectl compatibility")
    p.add_argument("--timeout", default="120s")
