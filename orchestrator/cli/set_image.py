"""`skiff set image TYPE/NAME CONTAINER=IMAGE...`: new images in a pod template (or a bare pod)."""

from __future__ import annotations

from orchestrator.cli import printers
from orchestrator.cli.common import CliError, Ctx, Obj, kv, one_target, update_with_retry
from orchestrator.cli.parser import Subcommands


async def cmd_set_image(ctx: Ctx) -> int:
    a = ctx.args
    words = [w for w in a.args if "=" not in w]
    pairs = dict(kv(w, "CONTAINER=IMAGE") for w in a.args if "=" in w)
    if not pairs:
        raise CliError("at least one image update is required: CONTAINER=IMAGE")
    kind, name = one_target(words, "set image")
    if kind not in ("Deployment", "ReplicaSet", "Pod"):
        raise CliError(f"cannot set the image of a {kind}")

    def mutate(obj: Obj) -> Obj | None:
        pod_spec = obj["spec"] if kind == "Pod" else obj["spec"]["template"]["spec"]
        names = [c["name"] for c in pod_spec.get("containers") or []]
        for cname in pairs:
            if cname != "*" and cname not in names:
                raise CliError(f'unable to find container named "{cname}"')
        changed = False
        for c in pod_spec["containers"]:
            image = pairs.get(c["name"], pairs.get("*"))
            if image and c.get("image") != image:
                c["image"] = image
                changed = True
        return obj if changed else None

    await update_with_retry(ctx, kind, name, mutate)
    ctx.print(f"{printers.singular(kind)}/{name} image updated")
    return 0


def register(sub: Subcommands) -> None:
    features = sub.group("set", "Set specific features on objects", dest="set_what", metavar="image")
    p = features.add(
        "image",
        "Update the image of a pod template",
        cmd_set_image,
        description="skiff set image deployment/NAME CONTAINER=IMAGE",
    )
    p.add_argument("args", nargs="+", metavar="TYPE/NAME CONTAINER=IMAGE")
