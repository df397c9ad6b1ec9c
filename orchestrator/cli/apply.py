"""`skiff apply`, `skiff create` and `skiff delete`: objects from manifests (-f), or by type and name;
and the Deployment manifest `create deployment` and `run` build from flags."""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable, Mapping
from typing import Any

from orchestrator import errors
from orchestrator.cli import printers
from orchestrator.cli.common import CliError, Ctx, FileInvalid, Obj, format_error, kv, parse_targets
from orchestrator.cli.manifests import Manifest, load_manifests
from orchestrator.cli.parser import Subcommands, all_namespaces_flag
from orchestrator.model import KINDS, ValidationError, name_of, namespace_of, resolve_kind, validate


def prepare(ctx: Ctx, m: Manifest) -> Obj:
    """The object to send: as written, with the namespace filled in; validated locally first."""
    obj = copy.deepcopy(m.obj)
    kind = obj.get("kind")
    if kind in KINDS and KINDS[kind].namespaced:
        meta = obj.setdefault("metadata", {})
        if isinstance(meta, dict) and not meta.get("namespace"):
            meta["namespace"] = ctx.namespace
    if getattr(ctx.args, "validate", True):
        try:
            validate(obj)
        except ValidationError as e:
            raise FileInvalid(m.source, str(e)) from None
    return obj


def is_subset(want: Any, have: Any) -> bool:
    """Every field of `want` is present in `have` with the same value (lists compared item by item)."""
    if isinstance(want, Mapping):
        return isinstance(have, Mapping) and all(is_subset(v, have.get(k)) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(want) == len(have) and all(map(is_subset, want, have))
    if isinstance(want, int | float) and isinstance(have, int | float) and not isinstance(want, bool):
        return want == have
    return want == have or (str(want) == str(have) and want is not None and have is not None)


async def _for_each_manifest(ctx: Ctx, act: Callable[[Manifest, Obj], Any]) -> int:
    manifests = load_manifests(ctx.args.filename)
    rc = 0
    for m in manifests:
        try:
            obj = prepare(ctx, m)
            await act(m, obj)
        except (FileInvalid, errors.SkiffError) as e:
            if isinstance(e, errors.Unavailable | errors.Unauthenticated):
                raise
            ctx.warn(format_error(e, ctx.config))
            rc = 1
    return rc


async def cmd_apply(ctx: Ctx) -> int:
    async def act(m: Manifest, obj: Obj) -> None:
        # With --validate=false the object may be any shape: the server answers what is wrong with it.
        kind, meta = obj.get("kind"), obj.get("metadata")
        name = meta.get("name", "") if isinstance(meta, dict) else ""
        existing: Obj | None = None
        if isinstance(kind, str) and kind in KINDS and isinstance(name, str) and name:
            try:
                existing = await ctx.client.get(kind, namespace_of(obj), name)
            except (errors.NotFound, errors.Invalid):
                existing = None
        if existing is not None and is_subset(obj, existing):
            verdict = "unchanged"
        else:
            try:
                await ctx.client.apply(obj)
            except errors.Invalid as e:
                raise FileInvalid(m.source, str(e)) from None
            verdict = "created" if existing is None else "configured"
        ctx.print(f"{printers.singular(str(kind), obj)}/{name} {verdict}")

    return await _for_each_manifest(ctx, act)


async def cmd_create(ctx: Ctx) -> int:
    a = ctx.args
    if a.filename:
        if a.what:
            raise CliError("give either -f FILE or a resource type to create, not both")

        async def act(m: Manifest, obj: Obj) -> None:
            try:
                created = await ctx.client.create(obj)
            except errors.Invalid as e:
                raise FileInvalid(m.source, str(e)) from None
            ctx.print(f"{printers.singular(obj['kind'], obj)}/{name_of(created)} created")

        return await _for_each_manifest(ctx, act)
    if not a.what:
        raise CliError("must specify one of -f or a resource type (deployment, configmap)")
    kind = resolve_kind(a.what)
    if not a.name:
        raise CliError(f"a name is required: skiff create {a.what} NAME")
    if kind == "Deployment":
        if not a.image:
            raise CliError('required flag(s) "image" not set')
        obj = deployment_manifest(a.name, a.image, ctx.namespace, replicas=a.replicas or 1, port=a.port)
    elif kind == "ConfigMap":
        data = dict(kv(x, "--from-literal") for x in a.from_literal or [])
        obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": a.name, "namespace": ctx.namespace},
            "data": data,
        }
    else:
        raise CliError(f"skiff create {a.what} NAME is not supported; use skiff create -f FILE")
    validate(obj)
    await ctx.client.create(obj)
    ctx.print(f"{printers.singular(kind, obj)}/{a.name} created")
    return 0


def container_name(image: str) -> str:
    base = image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]
    return base.lower().replace("_", "-").replace(".", "-") or "container"


def container_spec(name: str, image: str, port: int | None, env: list[str] | None = None) -> Obj:
    c: Obj = {"name": name, "image": image}
    if port:
        c["ports"] = [{"containerPort": int(port)}]
    if env:
        c["env"] = [{"name": k, "value": v} for k, v in (kv(e, "--env") for e in env)]
    return c


def deployment_manifest(
    name: str,
    image: str,
    namespace: str,
    *,
    replicas: int = 1,
    port: int | None = None,
    labels: Mapping[str, str] | None = None,
    container: Obj | None = None,
) -> Obj:
    labels = dict(labels or {"app": name})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [container or container_spec(container_name(image), image, port)]},
            },
        },
    }


async def _delete(ctx: Ctx, kind: str, namespace: str, name: str) -> bool:
    try:
        await ctx.client.delete(kind, namespace, name)
    except errors.NotFound:
        if ctx.args.ignore_not_found:
            return False
        raise errors.NotFound(f'{printers.plural(kind)} "{name}" not found') from None
    ctx.print(f'{printers.singular(kind)} "{name}" deleted')
    return True


async def cmd_delete(ctx: Ctx) -> int:
    a = ctx.args
    rc = 0
    if a.filename:
        if a.resources:
            raise CliError("give either -f FILE or resources to delete, not both")

        async def act(m: Manifest, obj: Obj) -> None:
            await _delete(ctx, obj["kind"], namespace_of(obj), name_of(obj))

        return await _for_each_manifest(ctx, act)
    targets = parse_targets(a.resources)
    for kind, names in targets:
        ns = ctx.namespace if KINDS[kind].namespaced else ""
        if not names:
            if not (a.selector or a.all):
                raise CliError("resource(s) were provided, but no name was specified (use --all or -l)")
            objs, _ = await ctx.client.list(kind, "" if ctx.all_namespaces else ns, a.selector or "")
            if not objs:
                ctx.warn("No resources found")
            for o in objs:
                await _delete(ctx, kind, namespace_of(o), name_of(o))
            continue
        for name in names:
            try:
                await _delete(ctx, kind, ns, name)
            except errors.NotFound as e:
                ctx.warn(f"Error from server (NotFound): {e}")
                rc = 1
    return rc


def validate_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--validate",
        default=True,
        type=lambda v: v.lower() not in ("false", "0", "no"),
        help="check manifests against the schema before sending (the server always does); --validate=false",
    )


def register(sub: Subcommands) -> None:
    p = sub.add("apply", "Apply a configuration from files or stdin", cmd_apply)
    p.add_argument("-f", "--filename", action="append", required=True, help="file, directory or - (stdin)")
    validate_flag(p)

    p = sub.add("create", "Create a resource from a file or from arguments", cmd_create)
    p.add_argument("what", nargs="?", metavar="TYPE", help="deployment or configmap")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("-f", "--filename", action="append")
    p.add_argument("--image")
    p.add_argument("--replicas", type=int)
    p.add_argument("--port", type=int)
    p.add_argument("--from-literal", action="append")
    validate_flag(p)

    p = sub.add("delete", "Delete resources by file, type and name, or selector", cmd_delete)
    p.add_argument("resources", nargs="*", metavar="TYPE[/NAME] [NAME...]")
    p.add_argument("-f", "--filename", action="append")
    p.add_argument("-l", "--selector")
    p.add_argument("--all", action="store_true")
    p.add_argument("--ignore-not-found", action="store_true")
    all_namespaces_flag(p)
