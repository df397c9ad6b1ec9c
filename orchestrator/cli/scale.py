"""`skiff scale TYPE/NAME --replicas=N`: a Deployment's or ReplicaSet's size."""

from __future__ import annotations

from orchestrator import errors
from orchestrator.cli import printers
from orchestrator.cli.common import CliError, Ctx, one_target
from orchestrator.cli.parser import Subcommands


async def cmd_scale(ctx: Ctx) -> int:
    a = ctx.args
    if a.replicas is None:
        raise CliError('required flag(s) "replicas" not set')
    if a.replicas < 0:
        raise CliError("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
    kind, name = one_target(a.resources, "scale")
    if kind not in ("Deployment", "ReplicaSet"):
        raise CliError(f"cannot scale {printers.plural(kind)}")
    try:
        await ctx.client.patch(kind, ctx.namespace, name, {"spec": {"replicas": a.replicas}})
    except errors.NotFound:
        raise errors.NotFound(f'{printers.plural(kind)} "{name}" not found') from None
    ctx.print(f"{printers.singular(kind)}/{name} scaled")
    return 0


def register(sub: Subcommands) -> None:
    p = sub.add("scale", "Set a new size for a deployment or replica set", cmd_scale)
    p.add_argument("resources", nargs="+", metavar="TYPE/NAME")
    p.add_argument("--replicas", type=int, required=True)
