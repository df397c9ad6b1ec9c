"""`skiff run NAME --image=IMAGE [-- ARGS]`: a Deployment, or a bare Pod with --restart=Never|OnFailure."""

from __future__ import annotations

from orchestrator.cli.apply import container_spec, deployment_manifest
from orchestrator.cli.common import CliError, Ctx, kv
from orchestrator.cli.parser import Subcommands
from orchestrator.model import validate


def _labels_arg(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    return dict(kv(p.strip(), "--labels") for p in text.split(",") if p.strip())


async def cmd_run(ctx: Ctx) -> int:
    a = ctx.args
    labels = _labels_arg(a.labels) or {"app": a.name}
    c = container_spec(a.name, a.image, a.port, a.env)
    if a.cmd_args:
        c["command" if a.command else "args"] = list(a.cmd_args)
    elif a.command:
        raise CliError("--command requires a command after --")
    if a.restart in ("Never", "OnFailure"):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": a.name, "namespace": ctx.namespace, "labels": labels},
            "spec": {"containers": [c], "restartPolicy": a.restart},
        }
        validate(pod)
        await ctx.client.create(pod)
        ctx.print(f"pod/{a.name} created")
        return 0
    if a.restart != "Always":
        raise CliError(f'invalid --restart "{a.restart}": use Always, OnFailure or Never')
    dep = deployment_manifest(a.name, a.image, ctx.namespace, replicas=a.replicas, labels=labels, container=c)
    validate(dep)
    await ctx.client.create(dep)
    ctx.print(f'deployment.apps "{a.name}" created')
    return 0


def register(sub: Subcommands) -> None:
    p = sub.add("run", "Run an image in a Deployment (or a bare Pod with --restart=Never)", cmd_run)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--image", required=True)
    p.add_argument("--port", type=int)
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--labels", help="k=v,k2=v2 (default app=NAME)")
    p.add_argument("--env", action="append", help="KEY=VALUE (repeatable)")
    p.add_argument("--restart", default="Always", help="Always (Deployment), OnFailure or Never (Pod)")
    p.add_argument("--command", action="store_true", help="the arguments after -- are the command, not args")
    p.add_argument("cmd_args", nargs="*", metavar="-- ARGS")
    # Everything after "--" belongs to the container, never to argparse.
    p.set_defaults(after_dashes="cmd_args")
