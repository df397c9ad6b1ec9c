"""`skiff get` (a table, or -o wide|yaml|json|name; -w watches) and `skiff describe`."""

from __future__ import annotations

import argparse

from orchestrator import errors
from orchestrator.cli import describe as desc
from orchestrator.cli import printers
from orchestrator.cli.common import CliError, Ctx, Obj, get_object, ns_for, parse_targets, read_at
from orchestrator.cli.parser import Subcommands, UsageError, all_namespaces_flag
from orchestrator.client import LIST_PAGE
from orchestrator.model import KINDS, name_of, namespace_of


def _print_objects(ctx: Ctx, kind: str, objs: list[Obj], opts: printers.TableOptions) -> None:
    if objs:
        ctx.print(printers.table(kind, objs, ctx.now(), opts))


def _table_opts(ctx: Ctx, with_kind: bool = False) -> printers.TableOptions:
    a = ctx.args
    return printers.TableOptions(
        wide=a.output == "wide",
        all_namespaces=ctx.all_namespaces,
        show_labels=a.show_labels,
        no_headers=a.no_headers,
        with_kind=with_kind,
        lb_address=ctx.config.lb_http_address,
    )


async def cmd_get(ctx: Ctx) -> int:
    a = ctx.args
    targets = parse_targets(a.resources)
    if a.output not in (None, "wide", "yaml", "json", "name"):
        raise CliError(
            f'unable to match a printer suitable for the output format "{a.output}", allowed formats are: json,name,wide,yaml'
        )
    rc = 0
    fetched: list[tuple[str, list[Obj]]] = []
    single = len(targets) == 1 and len(targets[0][1]) == 1
    for kind, names in targets:
        objs: list[Obj] = []
        if names:
            for name in names:
                try:
                    objs.append(await get_object(ctx, kind, name))
                except errors.NotFound as e:
                    ctx.warn(f"Error from server (NotFound): {e}")
                    rc = 1
        else:
            async for page in ctx.client.list_pages(
                kind,
                ns_for(ctx, kind),
                a.selector or "",
                a.field_selector or "",
                limit=a.chunk_size,
                resource_version=read_at(ctx),
            ):
                objs += page
        fetched.append((kind, objs))
    everything = [o for _, objs in fetched for o in objs]
    if a.output == "yaml":
        if everything or not single:
            ctx.print(printers.to_yaml(everything, single))
    elif a.output == "json":
        if everything or not single:
            ctx.print(printers.to_json(everything, single))
    elif a.output == "name":
        for o in everything:
            ctx.print(printers.object_name(o))
    else:
        with_kind = len(fetched) > 1
        first = True
        for kind, objs in fetched:
            if not objs:
                continue
            if not first:
                ctx.print()
            first = False
            _print_objects(ctx, kind, objs, _table_opts(ctx, with_kind))
    if not everything and rc == 0 and not a.watch:
        where = (
            ""
            if ctx.all_namespaces or not any(KINDS[k].namespaced for k, _ in targets)
            else f" in {ctx.namespace} namespace"
        )
        ctx.warn(f"No resources found{where}.")
    if a.watch:
        if len(targets) != 1:
            raise CliError("you may only specify a single resource type with --watch")
        kind, names = targets[0]
        opts = _table_opts(ctx)
        rows = [printers.table_row(kind, o, ctx.now(), opts) for o in everything]
        widths = [len(h) for h in printers.table_headers(kind, opts)]
        for r in rows:
            widths = [max(w, len(cell)) for w, cell in zip(widths, r, strict=False)]
        await _watch(ctx, kind, names, header=not everything, widths=widths)
    return rc


def _padded(cells: list[str], widths: list[int]) -> str:
    """A watch row aligned with the table printed before it (cells wider than their column just push)."""
    out = [c.ljust(widths[i]) if i < len(widths) and i < len(cells) - 1 else c for i, c in enumerate(cells)]
    return "   ".join(out).rstrip()


async def _watch(ctx: Ctx, kind: str, names: list[str], header: bool, widths: list[int]) -> None:
    """Print every change of `kind` (after the list just printed) until interrupted."""
    a = ctx.args
    fields = a.field_selector or ""
    if len(names) == 1:
        fields = ",".join(filter(None, [fields, f"metadata.name={names[0]}"]))
    _, rv = await ctx.client.list(kind, ns_for(ctx, kind), a.selector or "", fields)
    opts = _table_opts(ctx)
    async for ev in ctx.client.watch(kind, ns_for(ctx, kind), a.selector or "", fields, resource_version=rv):
        if ev.obj is None or ev.type == "BOOKMARK":
            continue
        if names and name_of(ev.obj) not in names:
            continue
        if a.output == "yaml":
            ctx.print("---\n" + printers.to_yaml([ev.obj], True))
        elif a.output == "json":
            ctx.print(printers.to_json([ev.obj], True))
        elif a.output == "name":
            ctx.print(printers.object_name(ev.obj))
        else:
            cells = printers.table_row(kind, ev.obj, ctx.now(), opts)
            widths = [max(w, len(c)) for w, c in zip(widths, cells, strict=False)]
            if header and not a.no_headers:
                ctx.print(_padded(printers.table_headers(kind, opts), widths))
            header = False
            ctx.print(_padded(cells, widths))


async def _events(ctx: Ctx, namespace: str) -> list[Obj]:
    try:
        items, _ = await ctx.client.list("Event", namespace)
    except errors.PermissionDenied:
        return []
    return items


async def describe_one(ctx: Ctx, obj: Obj) -> str:
    kind = obj["kind"]
    now = ctx.now()
    ns = namespace_of(obj)
    events = await _events(ctx, ns)
    if kind == "Pod":
        return desc.describe_pod(obj, events, now)
    if kind == "Node":
        pods, _ = await ctx.client.list("Pod", "", "", f"spec.nodeName={name_of(obj)}")
        pods = [p for p in pods if (p.get("spec") or {}).get("nodeName") == name_of(obj)]
        return desc.describe_node(obj, pods, await _events(ctx, ""), now)
    if kind == "Deployment":
        rss, _ = await ctx.client.list("ReplicaSet", ns)
        return desc.describe_deployment(obj, rss, events, now)
    if kind == "Service":
        try:
            ep: Obj | None = await ctx.client.get("Endpoints", ns, name_of(obj))
        except errors.NotFound:
            ep = None
        return desc.describe_service(obj, ep, events, now)
    return desc.describe_generic(obj, events, now)


async def cmd_describe(ctx: Ctx) -> int:
    a = ctx.args
    targets = parse_targets(a.resources)
    texts: list[str] = []
    rc = 0
    for kind, names in targets:
        if names:
            objs = []
            for name in names:
                try:
                    objs.append(await get_object(ctx, kind, name))
                except errors.NotFound as e:
                    ctx.warn(f"Error from server (NotFound): {e}")
                    rc = 1
        else:
            objs, _ = await ctx.client.list(kind, ns_for(ctx, kind), a.selector or "")
            objs = printers.sort_objects(kind, objs)  # type: ignore[assignment]
        for o in objs:
            texts.append(await describe_one(ctx, o))
    if texts:
        ctx.print("\n\n".join(texts))
    elif rc == 0:
        ctx.warn(f"No resources found in {ctx.namespace} namespace.")
    return rc


def _require_a_type(args: argparse.Namespace) -> None:
    if not args.resources:
        raise UsageError("you must specify the type of resource to get, e.g. 'skiff get pods'")
    if args.chunk_size < 0:
        raise UsageError(f"--chunk-size: {args.chunk_size} must not be negative (0 = one list)")


def register(sub: Subcommands) -> None:
    p = sub.add("get", "Display one or many resources", cmd_get)
    p.add_argument("resources", nargs="*", metavar="TYPE[/NAME] [NAME...]")
    p.add_argument("-o", "--output", choices=["wide", "yaml", "json", "name"])
    p.add_argument("-l", "--selector", help="label selector, e.g. app=demo,tier!=db")
    p.add_argument("--field-selector", help="field selector, e.g. spec.nodeName=worker-1")
    p.add_argument("-w", "--watch", action="store_true", help="after listing, watch for changes")
    p.add_argument(
        "--resource-version",
        choices=["", "0"],
        default="",
        help='"0": read this master\'s replica at once, possibly stale (default: a linearizable read)',
    )
    p.add_argument(
        "--chunk-size",
        type=int,
        default=LIST_PAGE,
        help=f"list in pages of this many items, as kubectl does (default {LIST_PAGE}; 0 = one list)",
    )
    p.add_argument("--show-labels", action="store_true")
    p.add_argument("--no-headers", action="store_true")
    all_namespaces_flag(p)
    p.set_defaults(check=_require_a_type)

    p = sub.add("describe", "Show details of a resource", cmd_describe)
    p.add_argument("resources", nargs="+", metavar="TYPE[/NAME] [NAME...]")
    p.add_argument("-l", "--selector")
    all_namespaces_flag(p)
