"""The bodies of Kubernetes PATCH requests, applied to a stored object.

kubectl and the client libraries send four kinds of patch, named by the request's Content-Type:

- `application/merge-patch+json` (RFC 7386): maps merge, `null` deletes, anything else replaces.
  `kubectl scale`, `label` and `annotate` send it.
- `application/strategic-merge-patch+json`: Kubernetes' strategic merge patch, as client-side
  `kubectl apply`, `edit`, `set image`, `rollout restart` and `cordon` send it. It is a merge patch
  in which lists of objects merge item by item on a per-field merge key (containers by `name`, a
  container's ports by `containerPort`, ...), plus the `$`-directives below.
- `application/json-patch+json` (RFC 6902): a list of add/remove/replace/move/copy/test operations.
- `application/apply-patch+yaml`: server-side apply, without field ownership (see `apply_patch`).

`apply(content_type, current, body)` is the one entry point. Every function here is pure: it never
mutates its arguments, and the object it returns shares no mutable part with them, so the caller may
stamp it (resourceVersion, generation) freely. Errors raise `PatchError`, a `ValueError` whose
one-line message names the path, fit for a Status message (a 4xx answer); an unsupported
Content-Type raises its subclass `UnsupportedPatch` (415).

Strategic merge patch follows k8s.io/apimachinery `strategicpatch` as the API server applies it:

- a list's strategy comes from the `patchStrategy`/`patchMergeKey` tags of k8s.io/api, kept here as
  a table keyed by field name (`MERGE_KEYS`), with the few names whose meaning depends on where
  they appear keyed by the field holding them (`MERGE_KEYS_IN`, `SET_LISTS_IN`), whatever the
  object's kind. Any other list is replaced whole (tolerations, taints, args, ingress rules);
- a keyed list merges each patch item into the stored item with the same key, appends the others,
  and keeps Kubernetes' order: items named in the patch follow the patch's order, items only
  stored keep their stored order, and the two interleave by stored position (a new item goes
  before the stored-only items not yet placed, so send `$setElementOrder` to append);
- `{"$patch": "delete", <key>: v}` in a keyed list removes the items with that key;
  `{"$patch": "replace"}` in a list makes the rest of the patch list the whole list;
- `"$patch": "replace"` in a map replaces the map; `"$patch": "delete"` makes it empty (Kubernetes
  leaves an empty map, not a missing key);
- `$setElementOrder/<field>` orders the merged list: the items it names in its order, the others in
  their stored places; the patch list must name its items in the same relative order;
- `$deleteFromPrimitiveList/<field>` removes those values from a list of scalars;
- `$retainKeys` drops the stored fields it does not list, then merges; every field the patch sets
  must be in it;
- a patch item without its list's merge key, a stored item without one, any other `$`-key, a map
  patched with a list or a list with a map, all raise `PatchError`.

Where Kubernetes stores a patch value for an absent field verbatim, this merges it into an empty
map or list instead, so nested `null`s and directives are resolved and a directive is never stored.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

from orchestrator import decoding
from orchestrator.store.state import merge_patch

Obj = dict[str, Any]
Path = tuple[str, ...]  # field names, with "[key=value]" segments for list items

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (MERGE_PATCH, STRATEGIC_MERGE_PATCH, JSON_PATCH, APPLY_PATCH)


class PatchError(ValueError):
    """The patch cannot apply to the object; the one-line message names where and why."""


class UnsupportedPatch(PatchError):
    """The request's Content-Type is not a patch type served here (the server answers 415)."""


# ---------------------------------------------------------------------------------------------------
# Which lists merge, and by what (the patchMergeKey tags of k8s.io/api core, apps and meta v1).

# Lists of objects that merge by this key wherever the field name appears.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "imagePullSecrets": "name",
    "schedulingGates": "name",
    "resourceClaims": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "hostAliases": "ip",
    "podIPs": "ip",
    "hostIPs": "ip",
    "topologySpreadConstraints": "topologyKey",
    "conditions": "type",
    "ownerReferences": "uid",
}

# Names that mean different lists in different places, keyed by (the field holding the list's map,
# the list's field); "" is the object's root. Ports merge by containerPort in a container and by port
# in a ServiceSpec (the only spec with ports); Endpoints, NetworkPolicy and status ports are replaced.
MERGE_KEYS_IN: dict[tuple[str, str], str] = {
    ("containers", "ports"): "containerPort",
    ("initContainers", "ports"): "containerPort",
    ("ephemeralContainers", "ports"): "containerPort",
    ("spec", "ports"): "port",
    ("status", "addresses"): "type",  # NodeStatus; an Endpoints subset's addresses are replaced
    ("", "secrets"): "name",  # ServiceAccount
}

# Lists of scalars that merge as ordered sets (patchStrategy merge without a key).
SET_LISTS_IN: frozenset[tuple[str, str]] = frozenset({("metadata", "finalizers"), ("spec", "podCIDRs")})

_SET = ""  # the "merge key" of a list merged as a set of scalars

_PATCH = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder/"
_DELETE_FROM = "$deleteFromPrimitiveList/"


def merge_key(holder: str, field: str) -> str | None:
    """How the list `field` of a map held by the field `holder` merges: the merge key of a list of
    objects, "" for a list of scalars merged as a set, None for a list replaced whole."""
    if (holder, field) in SET_LISTS_IN:
        return _SET
    return MERGE_KEYS_IN.get((holder, field), MERGE_KEYS.get(field))


# ---------------------------------------------------------------------------------------------------
# The entry point.


def apply(content_type: str, current: Obj, body: bytes | str | Obj | list[Any]) -> Obj:
    """`current` patched by `body` as its media type says (parameters such as `; charset=utf-8` are
    ignored). `body` is the raw request body, which this parses (JSON; JSON or YAML for an apply
    patch), or an already parsed value. Raises UnsupportedPatch for another media type (before
    looking at the body) and PatchError for a body that is malformed or does not apply. For a
    server-side apply of an absent object, pass `{}` as `current`."""
    media = content_type.split(";", 1)[0].strip().lower()
    patcher = _PATCHERS.get(media)
    if patcher is None:
        raise UnsupportedPatch(
            f"unsupported patch media type {media!r}; expected one of {', '.join(PATCH_TYPES)}"
        )
    return patcher(current, _parse(body, yaml_allowed=media == APPLY_PATCH))


def json_merge_patch(current: Obj, patch: Any) -> Obj:
    """RFC 7386: `current` with the JSON object `patch` merged in (the store's merge_patch)."""
    if not isinstance(patch, dict):
        raise PatchError(f"a merge patch must be a JSON object, not {_kind(patch)}")
    return copy.deepcopy(merge_patch(current, patch))


def strategic_merge_patch(current: Obj, patch: Any) -> Obj:
    """Kubernetes' strategic merge patch of `current` by the JSON object `patch` (module docstring)."""
    if not isinstance(patch, dict):
        raise PatchError(f"a strategic merge patch must be a JSON object, not {_kind(patch)}")
    return copy.deepcopy(_merge_map(current, patch, ()))


def apply_patch(current: Obj, intended: Any) -> Obj:
    """Server-side apply without field ownership: `intended` (the full object the client wants) merged
    into `current` as a strategic merge patch, so fields it leaves out are kept, keyed list items it
    leaves out stay, and nothing is ever reported as a conflict. Enough for `kubectl apply
    --server-side`; not a replacement for managed fields."""
    if not isinstance(intended, dict):
        raise PatchError(f"an apply patch must be an object, not {_kind(intended)}")
    return strategic_merge_patch(current, intended)


def json_patch(current: Obj, operations: Any) -> Obj:
    """RFC 6902: `current` after each operation in turn; all or nothing. A failing operation raises
    PatchError naming its index, op and path; so does a `test` whose value differs."""
    if not isinstance(operations, list):
        raise PatchError(f"a JSON patch must be a list of operations, not {_kind(operations)}")
    doc: Any = copy.deepcopy(current)
    for index, operation in enumerate(operations):
        doc = _json_patch_step(doc, operation, index)
    if not isinstance(doc, dict):
        raise PatchError(f"the JSON patch leaves {_kind(doc)}, not an object")
    return doc


_PATCHERS: dict[str, Callable[[Obj, Any], Obj]] = {
    MERGE_PATCH: json_merge_patch,
    STRATEGIC_MERGE_PATCH: strategic_merge_patch,
    JSON_PATCH: json_patch,
    APPLY_PATCH: apply_patch,
}


# ---------------------------------------------------------------------------------------------------
# Strategic merge patch. These helpers may share unchanged parts of their inputs in what they
# return; strategic_merge_patch copies the result once.


def _merge_map(stored: Obj, patch: Obj, path: Path) -> Obj:
    """The stored map merged with the patch map at `path`."""
    if _PATCH in patch:
        return _map_directive(patch, path)
    out = dict(stored)
    if _RETAIN_KEYS in patch:
        out = _retain_keys(out, patch, path)
    ordered: set[str] = set()
    for key, order in patch.items():
        if key.startswith(_SET_ORDER):
            field = _directive_field(key, _SET_ORDER, path)
            list_key = merge_key(_holder(path), field)
            if list_key is None:
                continue  # a list replaced whole has no order to set
            merged = _ordered_list(out.get(field), patch.get(field, _ABSENT), order, list_key, (*path, field))
            if merged is not None:
                out[field] = merged
            ordered.add(field)
    for key, value in patch.items():
        if key.startswith("$"):
            _check_directive(key, path)
        elif key in ordered:
            pass
        elif value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_value(out.get(key), value, (*path, key))
    for key, values in patch.items():
        if key.startswith(_DELETE_FROM):
            field = _directive_field(key, _DELETE_FROM, path)
            if out.get(field) is not None:
                out[field] = _without(out[field], values, (*path, field))
    return out


def _merge_value(stored: Any, patch: Any, path: Path) -> Any:
    """The stored value merged with a non-null patch value: maps and lists merge, scalars replace."""
    if isinstance(patch, dict):
        if isinstance(stored, list):
            raise PatchError(f"{_where(path)}: the patch has a map where the object has a list")
        return _merge_map(stored if isinstance(stored, dict) else {}, patch, path)
    if isinstance(patch, list):
        if isinstance(stored, dict):
            raise PatchError(f"{_where(path)}: the patch has a list where the object has a map")
        return _merge_list(stored if isinstance(stored, list) else [], patch, path)
    return patch


def _merge_list(stored: list[Any], patch: list[Any], path: Path) -> list[Any]:
    """The stored list at `path` merged with the patch list by the list's strategy."""
    key = merge_key(_holder(path[:-1]), path[-1])
    if key is None:
        return patch
    if key == _SET:
        return _merge_set(stored, patch, path)
    return _merge_keyed(stored, patch, key, path)


def _merge_keyed(stored: list[Any], patch: list[Any], key: str, path: Path) -> list[Any]:
    """A list of objects merged item by item on `key`, in Kubernetes' order."""
    merged, named = _merge_items(stored, patch, key, path)
    if named is None:
        return merged
    return _kubernetes_order(merged, named, _stored_ids(stored, key, path), lambda m: m[key])


def _merge_items(
    stored: list[Any], patch: list[Any], key: str, path: Path
) -> tuple[list[Any], list[Any] | None]:
    """The stored items without those a `$patch: delete` item names, each merged with the patch item
    of the same key, then the new items, in that order; and the keys the patch names, or None when a
    `$patch: replace` item makes the rest of the patch list the whole list."""
    _stored_ids(stored, key, path)
    kept, items, replace = list(stored), [], False
    for i, item in enumerate(patch):
        if not isinstance(item, dict):
            raise PatchError(f"{_where(path)}[{i}]: expected an object merged by {key!r}, got {_kind(item)}")
        if _PATCH not in item:
            if key not in item:
                raise PatchError(f"{_where(path)}[{i}]: the item has no merge key {key!r}")
            items.append(item)
        elif item[_PATCH] == "delete":
            if key not in item:
                raise PatchError(f"{_where(path)}[{i}]: '$patch: delete' needs the merge key {key!r}")
            kept = [s for s in kept if not _json_equal(s[key], item[key])]
        elif item[_PATCH] == "replace":
            replace = True
        else:
            raise PatchError(f"{_where(path)}[{i}]: unknown list directive '$patch: {item[_PATCH]}'")
    if replace:
        return [_merge_map({}, item, _item_path(path, key, item[key])) for item in items], None
    merged = kept
    for item in items:
        at = _position([m[key] for m in merged], item[key])
        sub = _item_path(path, key, item[key])
        if at is None:
            merged.append(_merge_map({}, item, sub))
        else:
            merged[at] = _merge_map(merged[at], item, sub)
    return merged, [item[key] for item in items]


def _merge_set(stored: list[Any], patch: list[Any], path: Path) -> list[Any]:
    """A list of scalars merged as a set: the union, without duplicates, in Kubernetes' order."""
    for i, value in enumerate(patch):
        if isinstance(value, dict | list):
            raise PatchError(f"{_where(path)}[{i}]: expected a scalar, got {_kind(value)}")
    merged: list[Any] = []
    for value in [*stored, *patch]:
        if _position(merged, value) is None:
            merged.append(value)
    return _kubernetes_order(merged, patch, stored, lambda v: v)


def _kubernetes_order(
    merged: list[Any], named: list[Any], stored: list[Any], identity: Callable[[Any], Any]
) -> list[Any]:
    """`merged` ordered as Kubernetes orders a merged list: the items `named` (by identity) in that
    order, the others in their `stored` order, the two interleaved by stored position; where an
    item is not stored, the named one goes first."""

    def rank(ids: list[Any]) -> Callable[[Any], int]:
        def key(item: Any) -> int:
            at = _position(ids, identity(item))
            return len(ids) if at is None else at

        return key

    in_patch = sorted((m for m in merged if _position(named, identity(m)) is not None), key=rank(named))
    server_only = [m for m in merged if _position(named, identity(m)) is None]
    server_only.sort(key=rank(stored))
    out: list[Any] = []
    while server_only and in_patch:
        left, right = _position(stored, identity(server_only[0])), _position(stored, identity(in_patch[0]))
        take = server_only if left is not None and right is not None and left < right else in_patch
        out.append(take.pop(0))
    return out + server_only + in_patch


def _ordered_list(stored: Any, patch: Any, order: Any, key: str, path: Path) -> list[Any] | None:
    """The list at `path` merged with `patch` (or _ABSENT) and ordered by its `$setElementOrder`;
    None when the field is neither stored nor patched."""
    where = _where(path)
    if not isinstance(order, list):
        raise PatchError(f"{where}: $setElementOrder must be a list, not {_kind(order)}")
    if stored is not None and not isinstance(stored, list):
        raise PatchError(f"{where}: $setElementOrder for a field that holds {_kind(stored)}")
    if patch is not _ABSENT and not isinstance(patch, list):
        raise PatchError(f"{where}: $setElementOrder needs a list patch, not {_kind(patch)}")
    stored = stored or []
    if key == _SET:
        names, identity, stored_ids = order, (lambda v: v), stored
    elif all(isinstance(o, dict) and key in o for o in order):
        names, identity, stored_ids = (
            [o[key] for o in order],
            (lambda m: m[key]),
            _stored_ids(stored, key, path),
        )
    else:
        raise PatchError(f"{where}: every $setElementOrder item needs the merge key {key!r}")
    reference = stored_ids
    if patch is _ABSENT:
        if not stored:
            return None
        merged = stored
    elif key == _SET:
        merged = _merge_set(stored, patch, path)
    else:
        unordered, named = _merge_items(stored, patch, key, path)
        merged = unordered if named is None else _kubernetes_order(unordered, named, stored_ids, identity)
        if named is not None:
            # Kubernetes deletes and appends in the stored list's own array, so the stored order it
            # compares against here is the unordered merge cut to the stored list's length.
            reference = [m[key] for m in unordered][: len(stored)]
    if patch is not _ABSENT:
        _check_order(patch, names, key, where)
    return _kubernetes_order(merged, names, reference, identity)


def _check_order(patch: list[Any], names: list[Any], key: str, where: str) -> None:
    """Raise unless the patch list names its items in the relative order of `names` (Kubernetes
    skips the check when either is empty; `$patch` items are not counted)."""
    if not names:
        return
    patched = [item if key == _SET else item[key] for item in patch if key == _SET or _PATCH not in item]
    remaining = iter(names)
    if not all(any(_json_equal(p, n) for n in remaining) for p in patched):
        raise PatchError(f"{where}: the patch list does not follow the order of its $setElementOrder")


def _map_directive(patch: Obj, path: Path) -> Obj:
    directive = patch[_PATCH]
    if directive == "replace":
        return _merge_map({}, {k: v for k, v in patch.items() if k != _PATCH}, path)
    if directive == "delete":
        return {}
    raise PatchError(f"{_where(path)}: unknown map directive '$patch: {directive}'")


def _retain_keys(stored: Obj, patch: Obj, path: Path) -> Obj:
    """The stored map without the fields `$retainKeys` does not list."""
    keep = patch[_RETAIN_KEYS]
    if not isinstance(keep, list) or not all(isinstance(k, str) for k in keep):
        raise PatchError(f"{_where(path)}: $retainKeys must be a list of field names")
    for key, value in patch.items():
        if value is not None and not key.startswith("$") and key not in keep:
            raise PatchError(f"{_where(path)}: the patch sets {key!r}, which $retainKeys does not list")
    return {k: v for k, v in stored.items() if k in keep}


def _without(stored: Any, values: Any, path: Path) -> list[Any]:
    """A stored list without the values of a `$deleteFromPrimitiveList`."""
    if not isinstance(values, list):
        raise PatchError(f"{_where(path)}: $deleteFromPrimitiveList must be a list, not {_kind(values)}")
    if not isinstance(stored, list):
        raise PatchError(f"{_where(path)}: $deleteFromPrimitiveList for a field that holds {_kind(stored)}")
    return [v for v in stored if _position(values, v) is None]


def _check_directive(key: str, path: Path) -> None:
    if key == _RETAIN_KEYS:
        return
    for prefix in (_SET_ORDER, _DELETE_FROM):
        if key.startswith(prefix):
            _directive_field(key, prefix, path)
            return
    raise PatchError(f"{_where(path)}: unknown directive {key!r}")


def _directive_field(key: str, prefix: str, path: Path) -> str:
    field = key[len(prefix) :]
    if not field:
        raise PatchError(f"{_where(path)}: directive {key!r} names no field")
    return field


def _stored_ids(stored: list[Any], key: str, path: Path) -> list[Any]:
    """The merge keys of a stored keyed list; raises if an item has none."""
    for i, item in enumerate(stored):
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"{_where(path)}[{i}]: the stored item has no merge key {key!r}")
    return [item[key] for item in stored]


class _Absent:
    """Marks a field the patch does not mention (distinct from an explicit null)."""


_ABSENT: Any = _Absent()


def _holder(path: Path) -> str:
    """The field holding the map at `path`: its last field name, "" at the root."""
    fields = [segment for segment in path if not segment.startswith("[")]
    return fields[-1] if fields else ""


def _item_path(path: Path, key: str, value: Any) -> Path:
    shown = value if isinstance(value, str) else json.dumps(value)
    return (*path, f"[{key}={shown}]")


def _where(path: Path) -> str:
    """A path for messages: spec.template.spec.containers[name=web].ports."""
    text = ""
    for segment in path:
        text += segment if segment.startswith("[") or not text else f".{segment}"
    return text or "(root)"


# ---------------------------------------------------------------------------------------------------
# JSON patch (RFC 6902) and JSON pointers (RFC 6901). The document is a private copy, changed in
# place; a root add or replace returns the new document.

_INDEX = re.compile(r"0|[1-9][0-9]*")


def _json_patch_step(doc: Any, operation: Any, index: int) -> Any:
    if not isinstance(operation, dict):
        raise PatchError(f"json patch operation {index}: expected an object, got {_kind(operation)}")
    op, path = operation.get("op"), operation.get("path")
    if op not in ("add", "remove", "replace", "move", "copy", "test"):
        raise PatchError(f"json patch operation {index}: unknown op {op!r}")
    if not isinstance(path, str):
        raise PatchError(f"json patch operation {index} ({op}): 'path' must be a string")
    label = f"json patch operation {index} ({op} {path})"
    tokens = _pointer(path, label)
    if op in ("add", "replace", "test") and "value" not in operation:
        raise PatchError(f"{label}: missing 'value'")
    value = copy.deepcopy(operation.get("value"))
    if op in ("move", "copy"):
        source = operation.get("from")
        if not isinstance(source, str):
            raise PatchError(f"{label}: 'from' must be a string")
        from_tokens = _pointer(source, label)
        value = copy.deepcopy(_resolve(doc, from_tokens, label))
        if op == "move":
            if tokens[: len(from_tokens)] == from_tokens and len(tokens) > len(from_tokens):
                raise PatchError(f"{label}: cannot move {source} into its own child")
            doc = _remove(doc, from_tokens, label)
        return _add(doc, tokens, value, label)
    if op == "add":
        return _add(doc, tokens, value, label)
    if op == "remove":
        return _remove(doc, tokens, label)
    if op == "replace":
        _resolve(doc, tokens, label)
        if not tokens:
            return value
        parent = _resolve(doc, tokens[:-1], label)
        parent[tokens[-1] if isinstance(parent, dict) else int(tokens[-1])] = value
        return doc
    actual = _resolve(doc, tokens, label)
    if not _json_equal(actual, value):
        raise PatchError(f"{label}: test failed: the value is {_short(actual)}, not {_short(value)}")
    return doc


def _pointer(text: str, label: str) -> list[str]:
    """The reference tokens of a JSON pointer, unescaped (~1 is /, ~0 is ~)."""
    if text == "":
        return []
    if not text.startswith("/"):
        raise PatchError(f"{label}: {text!r} is not a JSON pointer (it must start with '/')")
    tokens = text[1:].split("/")
    if any(re.search(r"~(?![01])", token) for token in tokens):
        raise PatchError(f"{label}: {text!r} has a '~' not followed by 0 or 1")
    return [token.replace("~1", "/").replace("~0", "~") for token in tokens]


def _resolve(doc: Any, tokens: list[str], label: str) -> Any:
    """The value the tokens point to; raises if there is none."""
    for depth, token in enumerate(tokens):
        if isinstance(doc, dict) and token in doc:
            doc = doc[token]
        elif isinstance(doc, list) and _INDEX.fullmatch(token) and int(token) < len(doc):
            doc = doc[int(token)]
        else:
            raise PatchError(f"{label}: nothing at {_pointer_text(tokens[: depth + 1])}")
    return doc


def _add(doc: Any, tokens: list[str], value: Any, label: str) -> Any:
    if not tokens:
        return value
    parent, last = _resolve(doc, tokens[:-1], label), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif _INDEX.fullmatch(last) and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise PatchError(f"{label}: {last!r} is not an index of a list of {len(parent)} (or '-')")
    else:
        raise PatchError(f"{label}: {_pointer_text(tokens[:-1]) or 'the root'} holds {_kind(parent)}")
    return doc


def _remove(doc: Any, tokens: list[str], label: str) -> Any:
    if not tokens:
        raise PatchError(f"{label}: cannot remove the whole object")
    parent, last = _resolve(doc, tokens[:-1], label), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and _INDEX.fullmatch(last) and int(last) < len(parent):
        del parent[int(last)]
    else:
        raise PatchError(f"{label}: nothing at {_pointer_text(tokens)}")
    return doc


def _pointer_text(tokens: list[str]) -> str:
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)


# ---------------------------------------------------------------------------------------------------
# Shared helpers.


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value (1 == 1.0), but true is not 1; objects by members."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _position(values: list[Any], value: Any) -> int | None:
    """The index of the first value JSON-equal to `value`, or None."""
    return next((i for i, v in enumerate(values) if _json_equal(v, value)), None)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return "a string" if isinstance(value, str) else "a number"


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------------------------------
# Parsing request bodies.


def _parse(body: bytes | str | Obj | list[Any], *, yaml_allowed: bool) -> Any:
    """The patch document in `body`: JSON, or (for an apply patch) JSON or YAML, decoded bytes first
    (orchestrator.decoding: UTF-8, size, depth, duplicate keys, YAML aliases); a parsed value passes
    through."""
    if isinstance(body, dict | list):
        return body
    try:
        return decoding.load_json(body, what="the patch body")
    except decoding.DecodeError as e:
        if not yaml_allowed or e.too_large or "not valid JSON" not in str(e):
            raise PatchError(str(e)) from None
    try:
        return decoding.load_yaml(body, what="the patch body")
    except decoding.DecodeError as e:
        raise PatchError(f"the patch body is neither JSON nor YAML: {e}") from None
