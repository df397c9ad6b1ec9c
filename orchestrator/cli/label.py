"""`skiff label|annotate TYPE/NAME KEY=VAL... KEY-...`: a resource's labels or annotations."""

from __future__ import annotations

from orchestrator.cli import printers
from orchestrator.cli.common import CliError, Ctx, get_object, one_target
from orchestrator.cli.parser import Subcommands
from orchestrator.model import KINDS


async def cmd_label(ctx: Ctx) -> int:
    a = ctx.args
    field_name = "labels" if a.verb == "label" else "annotations"
    words = [w for w in a.args if "=" not in w and not w.endswith("-")]
    changes = [w for w in a.args if "=" in w or w.endswith("-")]
    if not changes:
        raise CliError(f"at least one {field_name[:-1]} update is required")
    kind, name = one_target(words, a.verb)
    ns = ctx.namespace if KINDS[kind].namespaced else ""
    obj = await get_object(ctx, kind, name, ns)
    current = (obj.get("metadata") or {}).get(field_name) or {}
    patch: dict[str, str | None] = {}
    for c in changes:
        if c.endswith("-") and "=" not in c:
            patch[c[:-1]] = None
            continue
        k, v = c.split("=", 1)
        if k in current and current[k] != v and not a.overwrite:
            raise CliError(f"'{k}' already has a value ({current[k]}), and --overwrite is false")
        patch[k] = v
    await ctx.client.patch(kind, ns, name, {"metadata": {field_name: patch}})
    ctx.print(f"{printers.singular(kind)}/{name} {'labeled' if a.verb == 'label' else 'annotated'}")
    return 0


def register(sub: Subcommands) -> None:
    for verb, text in (
        ("label", "Update the labels on a resource"),
        ("annotate", "Update the annotations on a resource"),
    ):
        p = sub.add(verb, text, cmd_label)
        p.add_argument("args", nargs="+", metavar="TYPE/NAME KEY=VAL|KEY-")
        p.add_argument("--overwrite", action="store_true")
