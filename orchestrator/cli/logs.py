"""`skiff logs POD | TYPE/NAME`: a container's output (of the best pod of a deployment, RS or service)."""

from __future__ import annotations

from orchestrator.cli import printers
from orchestrator.cli.common import CliError, Ctx, get_object
from orchestrator.cli.parser import Subcommands
from orchestrator.model import label_selector_matches, labels_of, name_of, pod_is_ready, resolve_kind


async def cmd_logs(ctx: Ctx) -> int:
    a = ctx.args
    target = a.pod
    if "/" in target:
        kind_word, name = target.split("/", 1)
        kind = resolve_kind(kind_word)
    else:
        kind, name = "Pod", target
    pod_name = name
    if kind in ("Deployment", "ReplicaSet", "Service"):
        obj = await get_object(ctx, kind, name, ctx.namespace)
        pods, _ = await ctx.client.list("Pod", ctx.namespace)
        spec = obj.get("spec") or {}
        if kind == "Service":
            match = [
                p
                for p in pods
                if spec.get("selector") and all(labels_of(p).get(k) == v for k, v in spec["selector"].items())
            ]
        else:
            match = [p for p in pods if label_selector_matches(spec.get("selector"), labels_of(p))]
        if not match:
            raise CliError(f"no pods found for {printers.singular(kind)}/{name}")
        match.sort(
            key=lambda p: (not pod_is_ready(p), bool(p["metadata"].get("deletionTimestamp")), name_of(p))
        )
        pod_name = name_of(match[0])
        if len(match) > 1:
            ctx.warn(f"Found {len(match)} pods, using pod/{pod_name}")
    elif kind != "Pod":
        raise CliError(f"cannot get logs of a {kind}")
    out = getattr(ctx.out, "buffer", None)
    async for data in ctx.client.logs(
        ctx.namespace,
        pod_name,
        container=a.container or "",
        follow=a.follow,
        tail_lines=-1 if a.tail is None else a.tail,
        previous=a.previous,
    ):
        if out is not None:
            out.write(data)
            out.flush()
        else:
            ctx.out.write(data.decode(errors="replace"))
            ctx.out.flush()
    return 0


def register(sub: Subcommands) -> None:
    p = sub.add("logs", "Print the logs of a container", cmd_logs)
    p.add_argument("pod", metavar="POD | TYPE/NAME")
    p.add_argument("-c", "--container")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("--tail", type=int)
    p.add_argument("-p", "--previous", action="store_true")
