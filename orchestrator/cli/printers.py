"""kubectl-style output: the text of the tables per kind (their columns and cells come from
orchestrator.tables), `-o name|yaml|json`, resource names. Pure: `now` is an argument."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from orchestrator import tables
from orchestrator.model import KINDS, labels_of, name_of, namespace_of, parse_time

Obj = dict[str, Any]

# The API group kubectl shows for each kind ("deployment.apps/demo"); "" for the core group.
DEFAULT_GROUP = {"Deployment": "apps", "ReplicaSet": "apps", "Ingress": "networking.k8s.io"}


def group_of(kind: str, obj: Mapping[str, Any] | None = None) -> str:
    api_version = (obj or {}).get("apiVersion", "")
    if "/" in api_version:
        return api_version.split("/", 1)[0]
    return DEFAULT_GROUP.get(kind, "")


def singular(kind: str, obj: Mapping[str, Any] | None = None) -> str:
    """'deployment.apps', 'pod', 'ingress.networking.k8s.io' (the `-o name` / apply prefix)."""
    group = group_of(kind, obj)
    return f"{kind.lower()}.{group}" if group else kind.lower()


def plural(kind: str, obj: Mapping[str, Any] | None = None) -> str:
    """'deployments.apps', 'pods', 'endpoints' (kubectl's NotFound message names)."""
    base = KINDS[kind].names[0] if kind in KINDS else kind.lower() + "s"
    group = group_of(kind, obj)
    return f"{base}.{group}" if group else base


def object_name(obj: Mapping[str, Any]) -> str:
    """`-o name`: 'deployment.apps/demo'."""
    return f"{singular(obj.get('kind', ''), obj)}/{name_of(obj)}"


# ---------------------------------------------------------------- tables


@dataclass(frozen=True)
class TableOptions:
    wide: bool = False
    all_namespaces: bool = False
    show_labels: bool = False
    no_headers: bool = False
    with_kind: bool = False  # NAME as 'pod/x' (get all, several kinds)
    lb_address: str = ""  # the balancer's http address (ingress ADDRESS)


def format_table(headers: Sequence[str] | None, rows: Iterable[Sequence[str]]) -> str:
    """Columns padded to their widest cell plus three spaces (kubectl's tabwriter); no trailing spaces."""
    all_rows = ([list(headers)] if headers else []) + [list(r) for r in rows]
    if not all_rows:
        return ""
    ncols = max(len(r) for r in all_rows)
    widths = [max((len(r[i]) for r in all_rows if i < len(r)), default=0) for i in range(ncols)]
    lines = []
    for r in all_rows:
        cells = [c.ljust(widths[i]) if i < len(r) - 1 else c for i, c in enumerate(r)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


def _headers(kind: str, columns: Sequence[Mapping[str, Any]], opts: TableOptions) -> list[str]:
    headers = [str(c["name"]).upper() for c in columns]
    if opts.all_namespaces and KINDS[kind].namespaced:
        headers = ["NAMESPACE", *headers]
    if opts.show_labels:
        headers = [*headers, "LABELS"]
    return headers


def _cells(
    kind: str, columns: Sequence[Mapping[str, Any]], row: Mapping[str, Any], opts: TableOptions
) -> list[str]:
    """A Table row as text; with_kind names the object 'kind/name' in its name column."""
    obj = row["object"]
    cells = [
        object_name({**obj, "kind": kind}) if opts.with_kind and c["format"] == "name" else str(cell)
        for c, cell in zip(columns, row["cells"], strict=True)
    ]
    if opts.all_namespaces and KINDS[kind].namespaced:
        cells = [namespace_of(obj), *cells]
    if opts.show_labels:
        cells = [*cells, tables.format_labels(labels_of(obj))]
    return cells


def _server_table(kind: str, objs: Iterable[Mapping[str, Any]], now: float, opts: TableOptions) -> Obj:
    return tables.table(kind, objs, now, wide=opts.wide, lb_address=opts.lb_address)


def table_headers(kind: str, opts: TableOptions) -> list[str]:
    """The header cells of `table` (a watch prints its rows one at a time, under these)."""
    return _headers(kind, [c.definition() for c in tables.columns(kind, opts.wide)], opts)


def table_row(kind: str, obj: Mapping[str, Any], now: float, opts: TableOptions) -> list[str]:
    """The cells of one row of `table`, unpadded."""
    t = _server_table(kind, [obj], now, opts)
    return _cells(kind, t["columnDefinitions"], t["rows"][0], opts)


def sort_objects(kind: str, objs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if kind == "Event":
        return sorted(objs, key=lambda e: (parse_time(tables.event_time(e)), name_of(e)))
    return sorted(objs, key=lambda o: (namespace_of(o), name_of(o)))


def table(
    kind: str, objs: Iterable[Mapping[str, Any]], now: float, opts: TableOptions = TableOptions()
) -> str:
    """The text table of `objs` (sorted): the Table of orchestrator.tables, its default columns or all
    of them with -o wide, plus NAMESPACE (-A) and LABELS (--show-labels)."""
    t = _server_table(kind, sort_objects(kind, objs), now, opts)
    rows = [_cells(kind, t["columnDefinitions"], r, opts) for r in t["rows"]]
    headers = None if opts.no_headers else _headers(kind, t["columnDefinitions"], opts)
    return format_table(headers, rows)


# ---------------------------------------------------------------- -o yaml / json / name


def as_list(objs: Sequence[Mapping[str, Any]]) -> Obj:
    return {"apiVersion": "v1", "kind": "List", "items": list(objs), "metadata": {"resourceVersion": ""}}


def to_json(objs: Sequence[Mapping[str, Any]], single: bool) -> str:
    data = objs[0] if single and len(objs) == 1 else as_list(objs)
    return json.dumps(data, indent=4)


def to_yaml(objs: Sequence[Mapping[str, Any]], single: bool) -> str:
    data = objs[0] if single and len(objs) == 1 else as_list(objs)
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=True).rstrip("\n")
