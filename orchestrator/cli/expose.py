"""`skiff expose TYPE/NAME`: a new Service selecting the pods of a deployment, pod or service."""

from __future__ import annotations

from orchestrator.cli import printers
from orchestrator.cli.common import CliError, Ctx, Obj, get_object, one_target
from orchestrator.cli.parser import Subcommands
from orchestrator.model import labels_of, validate


def _int_or_str(v: str) -> int | str:
    return int(v) if v.isdigit() else v


async def cmd_expose(ctx: Ctx) -> int:
    a = ctx.args
    kind, name = one_target(a.resources, "expose")
    obj = await get_object(ctx, kind, name, ctx.namespace)
    spec = obj.get("spec") or {}
    if kind in ("Deployment", "ReplicaSet"):
        sel = spec.get("selector") or {}
        selector = dict(
            sel.get("matchLabels") or ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        )
        if sel.get("matchExpressions"):
            raise CliError(
                f"couldn't convert the selector of {printers.singular(kind)}/{name}: matchExpressions are not supported"
            )
        containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    elif kind == "Pod":
        selector = labels_of(obj)
        containers = spec.get("containers") or []
    elif kind == "Service":
        selector = dict(spec.get("selector") or {})
        containers = []
    else:
        raise CliError(f"cannot expose a {kind}")
    if not selector:
        raise CliError(f"couldn't find a selector for {printers.singular(kind)}/{name}")
    port = a.port
    if port is None:
        ports = [p.get("containerPort") for c in containers for p in c.get("ports") or []]
        if not ports:
            raise CliError("couldn't find port via --port flag or introspection")
        port = ports[0]
    svc_port: Obj = {
        "port": int(port),
        "protocol": a.protocol,
        "targetPort": _int_or_str(str(a.target_port or port)),
    }
    if a.node_port:
        svc_port["nodePort"] = a.node_port
    svc_name = a.svc_name or name
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": svc_name, "namespace": ctx.namespace, "labels": labels_of(obj) or selector},
        "spec": {"type": a.type, "selector": selector, "ports": [svc_port]},
    }
    validate(svc)
    await ctx.client.create(svc)
    ctx.print(f"service/{svc_name} exposed")
    return 0


def register(sub: Subcommands) -> None:
    p = sub.add("expose", "Expose a deployment, pod or service as a new Service", cmd_expose)
    p.add_argument("resources", nargs="+", metavar="TYPE/NAME")
    p.add_argument("--port", type=int)
    p.add_argument("--target-port")
    p.add_argument("--type", default="ClusterIP", choices=["ClusterIP", "NodePort", "LoadBalancer"])
    p.add_argument("--name", dest="svc_name")
    p.add_argument("--protocol", default="TCP")
    p.add_argument("--node-port", type=int)
