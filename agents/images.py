"""The image catalog: an image name resolves to a program (command, args, default env) on this machine.

Skiff runs processes, not filesystem images: `images.json` maps each image name it knows to the
program a container of that image runs. Resolution follows Kubernetes' rules for a pod's overrides:

- neither `command` nor `args`: the image's command and args;
- `command` only: it replaces the entrypoint and the image's args are dropped;
- `args` only: the image's command with these args;
- both: the pod's command and args.

`$(VAR)` in command and args expands to the container's env var VAR (`$$(VAR)` is a literal), as in
Kubernetes. A program named `python`/`python3` runs the agent's own interpreter.

Everything here is pure except `load_catalog`, which reads the file.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AGENTS_DIR = Path(__file__).resolve().parent
DEFAULT_CATALOG = AGENTS_DIR / "images.json"


class ImageNotFound(LookupError):
    """The image is not in the catalog: the container waits with reason ErrImagePull."""


@dataclass(frozen=True)
class Image:
    name: str
    command: tuple[str, ...]
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Catalog:
    images: Mapping[str, Image]  # every name and alias -> its image

    def names(self) -> list[str]:
        return sorted({i.name for i in self.images.values()})


def parse_catalog(data: Mapping[str, Any]) -> Catalog:
    images: dict[str, Image] = {}
    for name, entry in (data.get("images") or {}).items():
        image = Image(
            name=name,
            command=tuple(entry.get("command") or ()),
            args=tuple(entry.get("args") or ()),
            env=dict(entry.get("env") or {}),
        )
        for n in (name, *(entry.get("aliases") or ())):
            images[n] = image
    return Catalog(images)


def load_catalog(path: str | os.PathLike[str] | None = None) -> Catalog:
    with open(path or DEFAULT_CATALOG, encoding="utf-8") as f:
        return parse_catalog(json.load(f))


def normalize_image_name(image: str) -> str:
    """'docker.io/library/busybox:1.36' -> 'busybox'; 'jweissig/x@sha256:..' -> 'jweissig/x'."""
    name = image.strip()
    name = name.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    if name.startswith("library/"):
        name = name[len("library/") :]
    return name


def lookup(catalog: Catalog, image: str) -> Image:
    name = normalize_image_name(image)
    found = catalog.images.get(name)
    if found is None:
        raise ImageNotFound(
            f'Failed to pull image "{image}": not in the image catalog (known: {", ".join(catalog.names())})'
        )
    return found


_VAR_RE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known vars expand, unknown ones stay as written, $$ is a literal $."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_RE.sub(sub, text)


def _placeholders(word: str) -> str:
    return word.replace("{python}", sys.executable).replace("{agents}", str(AGENTS_DIR))


@dataclass(frozen=True)
class Program:
    argv: tuple[str, ...]
    env: dict[str, str]


def resolve(
    catalog: Catalog,
    container: Mapping[str, Any],
    base_env: Mapping[str, str] | None = None,
) -> Program:
    """The program a container runs: argv and env (catalog env < base env < the container's env).

    `base_env` is what the agent provides (PORT, POD_NAME...). Raises ImageNotFound.
    """
    image = lookup(catalog, container.get("image", ""))
    command: Sequence[str] = container.get("command") or ()
    args: Sequence[str] | None = container.get("args")
    if command:
        argv = [*command, *(args or ())]
    else:
        argv = [*image.command, *(args if args else image.args)]
    env = dict(image.env)
    env.update(base_env or {})
    for var in container.get("env") or ():
        env[var["name"]] = expand(str(var.get("value", "")), env)
    argv = [expand(_placeholders(w), env) for w in argv]
    if not argv:
        raise ImageNotFound(f'image "{container.get("image")}" has no command and the container gives none')
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return Program(tuple(argv), env)
