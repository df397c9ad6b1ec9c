"""The verbs of the `skiff` CLI: each is an async function of (Ctx) that prints and returns an exit code.

They talk to the cluster only through ApiClient; errors propagate as orchestrator.errors / CliError and
are turned into one line by main.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from orchestrator import errors
from orchestrator.cli import describe as desc
from orchestrator.cli import printers
from orchestrator.cli.config import ClientConfig
from orchestrator.cli.manifests import Manifest, load_manifests
from orchestrator.client import ApiClient
from orchestrator.model import (
    KINDS,
    ValidationError,
    controller_of,
    label_selector_matches,
    labels_of,
    name_of,
    namespace_of,
    pod_is_ready,
    resolve_kind,
    rfc3339,
    validate,
)

Obj = dict[str, Any]
VERSION = "0.1.0"


class CliError(Exception):
    """A client-side error; its message is printed as `error: <message>`."""


class FileInvalid(Exception):
    """A manifest the schema rejects: `error: error validating "<file>": <message>`."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(message)
        self.source = source


@dataclass
class Ctx:
    args: argparse.Namespace
    config: ClientConfig
    client: ApiClient
    namespace: str
    all_namespaces: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    now: Callable[[], float] = time.time

    def print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def warn(self, text: str) -> None:
        print(text, file=self.err, flush=True)


# ---------------------------------------------------------------- resource arguments


def parse_targets(words: list[str]) -> list[tuple[str, list[str]]]:
    """kubectl's resource arguments -> [(Kind, [names])]; [] names = all of that kind.

    'pods' | 'pods a b' | 'pod/a deploy/b' | 'pods,svc' | 'all'.
    """
    if not words:
        raise CliError("you must specify the type of resource to get")
    if all("/" in w for w in words):
        out: dict[str, list[str]] = {}
        for w in words:
            kind_word, name = w.split("/", 1)
            if not name:
                raise CliError(f"arguments in resource/name form must have a single resource and name: {w!r}")
            out.setdefault(resolve_kind(kind_word), []).append(name)
        return list(out.items())
    if any("/" in w for w in words):
        raise CliError(
            "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form"
        )
    first, names = words[0], words[1:]
    kinds: list[str] = []
    for part in first.split(","):
        if part == "all":
            kinds += ["Pod", "Service", "Deployment", "ReplicaSet"]
        elif part:
            kinds.append(resolve_kind(part))
    if names and len(kinds) > 1:
        raise CliError("names cannot be given with several resource types; use TYPE/NAME")
    return [(k, list(names)) for k in dict.fromkeys(kinds)]


def one_target(words: list[str], verb: str) -> tuple[str, str]:
    """'deployment/x' or 'deployment x' -> (Kind, name)."""
    if len(words) == 1 and "/" in words[0]:
        kind_word, name = words[0].split("/", 1)
    elif len(words) == 2:
        kind_word, name = words
    else:
        raise CliError(f"{verb} needs TYPE NAME or TYPE/NAME")
    return resolve_kind(kind_word), name


def ns_for(ctx: Ctx, kind: str) -> str:
    if not KINDS[kind].namespaced:
        return ""
    return "" if ctx.all_namespaces else ctx.namespace


async def get_object(ctx: Ctx, kind: str, name: str, namespace: str | None = None) -> Obj:
    ns = ns_for(ctx, kind) if namespace is None else namespace
    if KINDS[kind].namespaced and not ns:
        ns = ctx.namespace
    try:
        return await ctx.client.get(kind, ns, name)
    except errors.NotFound:
        raise errors.NotFound(f'{printers.plural(kind)} "{name}" not found') from None


# ---------------------------------------------------------------- get


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
            objs, _ = await ctx.client.list(kind, ns_for(ctx, kind), a.selector or "", a.field_selector or "")
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


# ---------------------------------------------------------------- describe


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


# ---------------------------------------------------------------- apply / create / delete


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
        kind = obj["kind"]
        name = obj["metadata"].get("name", "")
        try:
            existing: Obj | None = await ctx.client.get(kind, namespace_of(obj), name)
        except errors.NotFound:
            existing = None
        if existing is not None and is_subset(obj, existing):
            verdict = "unchanged"
        else:
            try:
                await ctx.client.apply(obj)
            except errors.Invalid as e:
                raise FileInvalid(m.source, str(e)) from None
            verdict = "created" if existing is None else "configured"
        ctx.print(f"{printers.singular(kind, obj)}/{name} {verdict}")

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
        data = dict(_kv(x, "--from-literal") for x in a.from_literal or [])
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


def _kv(text: str, flag: str) -> tuple[str, str]:
    if "=" not in text:
        raise CliError(f"invalid {flag} {text!r}: expected KEY=VALUE")
    k, v = text.split("=", 1)
    return k, v


def container_name(image: str) -> str:
    base = image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]
    return base.lower().replace("_", "-").replace(".", "-") or "container"


def container_spec(name: str, image: str, port: int | None, env: list[str] | None = None) -> Obj:
    c: Obj = {"name": name, "image": image}
    if port:
        c["ports"] = [{"containerPort": int(port)}]
    if env:
        c["env"] = [{"name": k, "value": v} for k, v in (_kv(e, "--env") for e in env)]
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


# ---------------------------------------------------------------- run / scale / expose / set image


def _labels_arg(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    return dict(_kv(p.strip(), "--labels") for p in text.split(",") if p.strip())


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


async def update_with_retry(
    ctx: Ctx, kind: str, name: str, mutate: Callable[[Obj], Obj | None]
) -> Obj | None:
    """Read, mutate a copy, Update compare-and-set on its resourceVersion; retry a few times on Conflict.
    `mutate` returns None when there is nothing to change."""
    for attempt in range(5):
        current = await get_object(ctx, kind, name, ctx.namespace)
        changed = mutate(copy.deepcopy(current))
        if changed is None:
            return None
        try:
            return await ctx.client.update(changed)
        except errors.Conflict:
            if attempt == 4:
                raise
    return None


async def cmd_set_image(ctx: Ctx) -> int:
    a = ctx.args
    words = [w for w in a.args if "=" not in w]
    pairs = dict(_kv(w, "CONTAINER=IMAGE") for w in a.args if "=" in w)
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


# ---------------------------------------------------------------- rollout


async def _owned_replicasets(ctx: Ctx, dep: Obj) -> list[Obj]:
    rss, _ = await ctx.client.list("ReplicaSet", namespace_of(dep))
    uid = dep["metadata"].get("uid")
    out = []
    for rs in rss:
        ref = controller_of(rs)
        if ref and ref.get("kind") == "Deployment" and ref.get("name") == name_of(dep):
            if not uid or not ref.get("uid") or ref["uid"] == uid:
                out.append(rs)
        elif ref is None and label_selector_matches(dep["spec"].get("selector"), labels_of(rs)):
            out.append(rs)
    return out


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
    rss = sorted(await _owned_replicasets(ctx, dep), key=desc.revision_of)
    if a.action == "history":
        if a.revision:
            rs = next((r for r in rss if desc.revision_of(r) == a.revision), None)
            if rs is None:
                raise CliError(f"unable to find the specified revision {a.revision}")
            ctx.print(f"deployment.apps/{name} with revision #{a.revision}")
            ctx.print(printers.to_yaml([rs["spec"]["template"]], True))
            return 0
        ctx.print(f"deployment.apps/{name}")
        rows = [
            [
                str(desc.revision_of(r)),
                (r["metadata"].get("annotations") or {}).get("kubernetes.io/change-cause", "<none>"),
            ]
            for r in rss
        ]
        ctx.print(printers.format_table(["REVISION", "CHANGE-CAUSE"], rows))
        return 0
    # undo
    current = desc.newest_replicaset(dep, rss)
    if a.to_revision:
        target = next((r for r in rss if desc.revision_of(r) == a.to_revision), None)
        if target is None:
            raise CliError(f"unable to find specified revision {a.to_revision} in history")
    else:
        older = [r for r in rss if r is not current and desc.revision_of(r) < desc.revision_of(current or {})]
        if not older:
            raise CliError(f'no rollout history found for deployment "{name}"')
        target = older[-1]
    template = copy.deepcopy(target["spec"]["template"])
    (template.get("metadata") or {}).get("labels", {}).pop("pod-template-hash", None)

    def mutate(obj: Obj) -> Obj | None:
        if desc._template_without_hash(obj["spec"]["template"]) == template:
            return None
        obj["spec"]["template"] = template
        return obj

    result = await update_with_retry(ctx, "Deployment", name, mutate)
    if result is None:
        ctx.print(
            f"deployment.apps/{name} skipped rollback (current template already matches revision {desc.revision_of(target)})"
        )
    else:
        ctx.print(f"deployment.apps/{name} rolled back")
    return 0


# ---------------------------------------------------------------- logs


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


# ---------------------------------------------------------------- nodes


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


# ---------------------------------------------------------------- label / annotate


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


# ---------------------------------------------------------------- version / cluster


async def cmd_version(ctx: Ctx) -> int:
    ctx.print(f"Client Version: skiff/{VERSION} (python {sys.version.split()[0]})")
    st = await ctx.client.status(ctx.client.current_master)
    ctx.print(f"Server Version: skiff master {st.name} at {st.address} ({st.role}, term {st.term})")
    return 0


async def master_statuses(ctx: Ctx) -> list[tuple[str, Any]]:
    """(address, MasterStatus or the error) for every configured master, asked concurrently."""

    async def one(addr: str) -> tuple[str, Any]:
        try:
            return addr, await ctx.client.status(addr, timeout=2.0)
        except errors.SkiffError as e:
            return addr, e

    return list(await asyncio.gather(*(one(m) for m in ctx.config.masters)))


async def lb_health(address: str, port: int, timeout: float = 2.0) -> str:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        async with grpc.aio.insecure_channel(f"{address}:{port}") as ch:
            reply = await health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout
            )
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    except grpc.aio.AioRpcError as e:
        return f"unreachable ({e.code().name})"


def status_rows(results: list[tuple[str, Any]]) -> list[list[str]]:
    rows = []
    for addr, st in results:
        if isinstance(st, Exception):
            if isinstance(st, errors.Unauthenticated | errors.PermissionDenied):
                rows.append(["?", addr, f"error: {type(st).__name__}", "", "", "", "", "", "", "false"])
            else:
                rows.append(["?", addr, "unreachable", "-", "-", "-", "-", "-", "-", "false"])
            continue
        lease = f"{st.lease_holder}/{st.lease_term}" if st.lease_holder else "<none>"
        rows.append(
            [
                st.name,
                st.address or addr,
                st.role,
                str(st.term),
                str(st.commit_index),
                str(st.applied_index),
                str(st.revision),
                st.state_digest[:12] or "-",
                lease,
                str(st.healthy).lower(),
            ]
        )
    return rows


async def cmd_cluster_status(ctx: Ctx) -> int:
    results = await master_statuses(ctx)
    headers = [
        "NAME",
        "ADDRESS",
        "ROLE",
        "TERM",
        "COMMIT",
        "APPLIED",
        "REVISION",
        "DIGEST",
        "LEASE",
        "HEALTHY",
    ]
    ctx.print(printers.format_table(headers, status_rows(results)))
    lb = ctx.config.lb
    if lb and lb.get("address"):
        health = (
            await lb_health(lb["address"], int(lb["healthPort"])) if lb.get("healthPort") else "<unknown>"
        )
        ctx.print()
        ctx.print(
            printers.format_table(
                ["BALANCER", "ADDRESS", "HTTP", "METRICS", "HEALTH"],
                [
                    [
                        "lb",
                        str(lb["address"]),
                        str(lb.get("httpPort", "-")),
                        str(lb.get("metricsPort", "-")),
                        health,
                    ]
                ],
            )
        )
    ok = [st for _, st in results if not isinstance(st, Exception)]
    if not ok:
        errs = "; ".join(f"{a}: {e}" for a, e in results)
        raise errors.Unavailable(f"no master answered ({', '.join(ctx.config.masters)}): {errs}")
    return 0


async def cmd_cluster_info(ctx: Ctx) -> int:
    results = await master_statuses(ctx)
    ok = [st for _, st in results if not isinstance(st, Exception)]
    if not ok:
        raise errors.Unavailable(f"no master answered ({', '.join(ctx.config.masters)}): unreachable")
    leader = next((st.leader for st in ok if st.leader), "") or "<none>"
    ctx.print(f"Skiff control plane is running at {', '.join(ctx.config.masters)} (raft leader: {leader})")
    if ctx.config.lb_http_address:
        ctx.print(f"Load balancer (NodePorts, Ingress) is running at http://{ctx.config.lb_http_address}")
    return 0


# ---------------------------------------------------------------- errors


def parse_duration(text: str | float | int) -> float:
    """'30s', '2m', '1h', '500ms', '10' -> seconds."""
    s = str(text).strip()
    for suffix, mult in (("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)):
        if s.endswith(suffix) and s[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(s[: -len(suffix)]) * mult
    try:
        return float(s)
    except ValueError:
        raise CliError(f"invalid duration {text!r}: use e.g. 30s, 2m") from None


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


_NO_FIELD = re.compile(r'no field named "([^"]+)" at "([^"]+)"')


def explain_invalid(msg: str) -> str:
    """Protobuf's 'Message type "X" has no field named "foo" at "Deployment.spec"' -> kubectl's words:
    'unknown field "foo" at spec (no field named "foo" in DeploymentSpec)'; other messages unchanged."""
    m = _NO_FIELD.search(msg)
    if not m:
        return msg
    field_name, where = m.group(1), m.group(2)
    path = where.split(".", 1)[1] if "." in where else where
    typ = re.search(r'Message type "(?:[\w]+\.)*(\w+)"', msg)
    detail = f' (no field named "{field_name}" in {typ.group(1)})' if typ else ""
    return f'unknown field "{field_name}" at {path}{detail}'


def format_error(e: BaseException, config: ClientConfig | None = None) -> str:
    """Any error -> the one line kubectl would print for it."""
    msg = _one_line(str(e))
    if isinstance(e, FileInvalid):
        return f'error: error validating "{e.source}": {explain_invalid(msg)}'
    if isinstance(e, errors.Unavailable):
        masters = ", ".join(config.masters) if config else ""
        prefix = "no master answered ("
        if msg.startswith(prefix) and "): " in msg:
            masters, detail = msg[len(prefix) :].split("): ", 1)
        else:
            detail = msg
        return f"error: cannot reach any master ({masters}): {detail}"
    if isinstance(e, errors.Unauthenticated):
        return f"error: you must be logged in to the server (Unauthenticated): {msg}"
    labels = {
        errors.NotFound: "NotFound",
        errors.AlreadyExists: "AlreadyExists",
        errors.Conflict: "Conflict",
        errors.PermissionDenied: "Forbidden",
        errors.Invalid: "Invalid",
        errors.TooOld: "Expired",
        errors.Precondition: "BadRequest",
    }
    for cls, label in labels.items():
        if isinstance(e, cls):
            return f"Error from server ({label}): {msg}"
    if isinstance(e, errors.SkiffError):
        return f"Error from server ({getattr(e, 'code', 'Unknown')}): {msg}"
    return f"error: {msg}"


__all__ = ["CliError", "Ctx", "FileInvalid", "format_error", "json"]
