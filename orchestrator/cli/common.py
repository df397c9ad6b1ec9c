"""What every `skiff` verb shares: the Ctx a verb runs with, the CLI's own errors, resource arguments,
reading and updating one object, durations, and the one line any error is printed as.

A verb is an async function of a Ctx that prints and returns an exit code. It talks to the cluster only
through ApiClient; errors propagate as orchestrator.errors / CliError and main prints them as one line.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from orchestrator import errors
from orchestrator.cli import printers
from orchestrator.cli.config import ClientConfig
from orchestrator.client import ApiClient
from orchestrator.model import KINDS, resolve_kind

Obj = dict[str, Any]


class CliError(Exception):
    """A client-side error; its message is printed as `error: <message>`."""


class FileInvalid(Exception):
    """A manifest the schema rejects: `error: error validating "<file>": <message>`."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(message)
        self.source = source


@dataclass
class Ctx:
    """What a verb runs with: its parsed arguments, the client config and an ApiClient, the namespace,
    where to print, and the clock ages are computed against."""

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
        """One line on stderr (a name from the user is escaped and cut, as in every error line)."""
        print(one_line(text), file=self.err, flush=True)


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
        return await ctx.client.get(kind, ns, name, resource_version=read_at(ctx))
    except errors.NotFound:
        raise errors.NotFound(f'{printers.plural(kind)} "{name}" not found') from None


def read_at(ctx: Ctx) -> str:
    """The resourceVersion a read asks for: "" (linearizable) unless `--resource-version 0` was given."""
    return str(getattr(ctx.args, "resource_version", "") or "")


def kv(text: str, flag: str) -> tuple[str, str]:
    """'KEY=VALUE' -> (KEY, VALUE); CliError naming `flag` otherwise."""
    if "=" not in text:
        raise CliError(f"invalid {flag} {text!r}: expected KEY=VALUE")
    k, v = text.split("=", 1)
    return k, v


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


_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
MAX_DURATION = 7 * 24 * 3600.0


def parse_duration(text: str | float | int) -> float:
    """'30s', '2m', '1h', '500ms', '10' -> seconds: ASCII digits only, at most a week (so "nan",
    "inf", "-1" or "٣" are refused rather than hanging or misleading a wait)."""
    m = _DURATION.fullmatch(str(text).strip())
    seconds = float(m.group(1)) * _UNITS[m.group(2)] if m else -1.0
    if not 0 <= seconds <= MAX_DURATION:
        raise CliError(f"invalid duration {str(text)[:40]!r}: use e.g. 30s, 2m, 500ms (at most 168h)")
    return seconds


MAX_ERROR = 500  # characters of an error line (a message quoting a huge input is cut)


def one_line(text: str) -> str:
    """One printable line: whitespace folded, control characters and lone surrogates escaped (a
    name from the user could hold them), cut at MAX_ERROR."""
    line = " ".join(str(text).split())
    if not line.isprintable():
        line = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in line)
    if len(line) > MAX_ERROR:
        line = line[: MAX_ERROR - 3] + "..."
    return line


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
    msg = one_line(str(e))
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
