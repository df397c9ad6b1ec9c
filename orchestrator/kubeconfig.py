"""kubeconfig files: the clientcmd v1 `Config` that kubectl and the Kubernetes clients read.

A config is a plain dict in the v1 shape:

    apiVersion: v1
    kind: Config
    clusters: [{name, cluster: {server, certificate-authority-data}}]
    users: [{name, user: {token}}]
    contexts: [{name, context: {cluster, user, namespace?}}]
    current-context: <context name>
    preferences: {}

`entry`, `merge`, `remove` and `path_for_write` are pure: they never mutate their arguments and never
touch the disk (`path_for_write` is handed its file-existence test). `load` and `save` are the I/O.
Merging and removing follow kind's handling of its clusters: same-named entries are replaced in
place, everything else (other clusters, their order, keys we do not know) is kept, and removing a
cluster clears current-context only when it pointed at the removed context.
"""

from __future__ import annotations

import base64
import copy
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

Config = dict[str, Any]

API_VERSION, KIND = "v1", "Config"
# (list key, the key holding each entry's body)
SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))
ENV = "KUBECONFIG"


def empty() -> Config:
    """A config with no clusters, users or contexts (what kubectl sees for a missing file)."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "clusters": [],
        "users": [],
        "contexts": [],
        "current-context": "",
        "preferences": {},
    }


def entry(name: str, server: str, ca_pem: bytes, token: str, namespace: str | None = None) -> Config:
    """A complete config for one cluster: a cluster, a user and a context all called `name`, current.

    The CA is embedded as certificate-authority-data (base64 of the PEM); the user authenticates with
    the bearer `token`; `namespace`, if given, becomes the context's default namespace.
    """
    context: dict[str, str] = {"cluster": name, "user": name}
    if namespace is not None:
        context["namespace"] = namespace
    config = empty()
    config["clusters"] = [
        {
            "name": name,
            "cluster": {"server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()},
        }
    ]
    config["users"] = [{"name": name, "user": {"token": token}}]
    config["contexts"] = [{"name": name, "context": context}]
    config["current-context"] = name
    return config


def merge(existing: Config | None, new: Config, *, make_current: bool = True) -> Config:
    """`existing` with every cluster, user and context of `new` added or replacing its namesake.

    A replaced entry keeps its position and later duplicates of its name are dropped (clientcmd
    refuses a file with two entries of one name); a new entry is appended. Other entries, their order
    and unknown keys are kept. With `make_current`, current-context becomes `new`'s (when it names
    one). A missing `existing` (None) is an empty config. Raises ValueError for a malformed config.
    """
    result = copy.deepcopy(existing) if existing else empty()
    _check(result, "existing")
    _check(new, "new")
    result.setdefault("apiVersion", API_VERSION)
    result.setdefault("kind", KIND)
    for section, _ in SECTIONS:
        merged = list(result.get(section) or [])
        for item in new.get(section) or []:
            merged = _put(merged, copy.deepcopy(item))
        result[section] = merged
    if make_current and new.get("current-context"):
        result["current-context"] = new["current-context"]
    result.setdefault("current-context", "")
    result.setdefault("preferences", {})
    return result


def remove(
    existing: Config,
    name: str,
    *,
    cluster: str | None = None,
    user: str | None = None,
    context: str | None = None,
) -> Config:
    """`existing` without the cluster, user and context called `cluster`, `user` and `context`.

    Each of the three names defaults to `name`. Entries of other names are kept in order; a name that
    is absent is no error (removing twice is removing once). current-context is cleared ("", as kind
    and kubectl write it) only if it named the removed context. Raises ValueError for a malformed config.
    """
    result = copy.deepcopy(existing)
    _check(result, "existing")
    doomed = {
        "clusters": cluster if cluster is not None else name,
        "users": user if user is not None else name,
        "contexts": context if context is not None else name,
    }
    for section, gone in doomed.items():
        if section in result:
            result[section] = [item for item in result[section] or [] if item["name"] != gone]
    if result.get("current-context") == doomed["contexts"]:
        result["current-context"] = ""
    return result


def path_for_write(
    environ: Mapping[str, str],
    home: Path,
    *,
    explicit: str | os.PathLike[str] | None = None,
    exists: Callable[[Path], bool] = Path.exists,
) -> Path:
    """The file kubectl writes a new cluster, user or context into (clientcmd's `GetDefaultFilename`).

    An explicit --kubeconfig path wins. Otherwise $KUBECONFIG is a list split on os.pathsep (":"
    here), empty items and repeats dropped: a single file is used whether or not it exists; of
    several, the first that `exists` wins, and when none does, the last. Without $KUBECONFIG it is
    `home`/.kube/config. Pure but for `exists`.
    """
    if explicit is not None and str(explicit):
        return Path(explicit)
    files = list(dict.fromkeys(item for item in environ.get(ENV, "").split(os.pathsep) if item))
    if not files:
        return Path(home) / ".kube" / "config"
    if len(files) == 1:
        return Path(files[0])
    for file in files:
        if exists(Path(file)):
            return Path(file)
    return Path(files[-1])


def load(path: Path) -> Config:
    """The config in `path`; a missing or empty file is `empty()`. Raises ValueError if it is no mapping."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return empty()
    data = yaml.safe_load(text)
    if data is None:
        return empty()
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a kubeconfig must be a YAML mapping, not {type(data).__name__}")
    return data


def save(path: Path, config: Config) -> None:
    """Write `config` to `path` as YAML, atomically and with mode 0600 (it holds tokens).

    The YAML is rendered first, then written to a temporary file (0600 from its creation) in the same
    directory, flushed and renamed over `path`: readers see the old file or the new one, and a failure
    leaves the old file and no temporary behind. A symlinked `path` keeps its link; the file it points
    to is replaced. A missing parent directory (~/.kube) is created with mode 0700.
    """
    text = dump(config)
    target = Path(os.path.realpath(path))
    if not target.parent.exists():
        target.parent.mkdir(mode=0o700, parents=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, 0o600)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def dump(config: Config) -> str:
    """`config` as YAML that Go's YAML 1.1 reader (kubectl) reads back as the same strings."""
    return yaml.dump(config, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


# Plain scalars that kubectl's YAML 1.1 reader (go-yaml v2) takes for a bool or null. PyYAML quotes
# most of them itself but not "y" and "n", so a context called "y" would break kubectl.
_GO_NON_STRINGS = frozenset(
    "y Y yes Yes YES n N no No NO true True TRUE false False FALSE on On ON off Off OFF null Null NULL ~".split()
)
# Go also reads more as numbers than PyYAML does ("1e3" is a float there); quoting never changes a
# string's meaning, so every string that starts like a number is quoted.
_NUMBER_START = frozenset("0123456789+-.")


class _Dumper(yaml.SafeDumper):
    """A SafeDumper that also quotes strings Go would read as something else (see `dump`)."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if value in _GO_NON_STRINGS or value[:1] in _NUMBER_START:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    return dumper.represent_str(value)


_Dumper.add_representer(str, _represent_str)


def _put(items: list[Any], item: Any) -> list[Any]:
    """`items` with `item` in place of its first namesake (later ones dropped), or appended."""
    out: list[Any] = []
    placed = False
    for old in items:
        if old["name"] == item["name"]:
            if not placed:
                out.append(item)
                placed = True
        else:
            out.append(old)
    return out if placed else [*out, item]


def _check(config: Any, which: str) -> None:
    if not isinstance(config, dict):
        raise ValueError(f"{which} kubeconfig must be a mapping, not {type(config).__name__}")
    for section, body in SECTIONS:
        items = config.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            raise ValueError(f"{which} kubeconfig: {section} must be a list")
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise ValueError(f"{which} kubeconfig: {section}[{i}] needs a string name")
            if not isinstance(item.get(body, {}), dict):
                raise ValueError(f"{which} kubeconfig: {section}[{i}].{body} must be a mapping")
