"""The resource model: plain-data helpers over Kubernetes-shaped objects (dicts of their JSON form).

Objects are stored, sent and reconciled as dicts in Kubernetes' JSON shape. The protobuf messages in
`protos/` are the schema: `validate` parses a dict with `ParseDict` so an unknown or mistyped field is
rejected with its path named, then checks what the schema cannot say (required names, ports in range).

Everything here is pure: no clock, no I/O. Callers pass time in.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from orchestrator import validation
from skiffpb import resources_pb2 as pb

Obj = dict[str, Any]


class ValidationError(ValueError):
    """A manifest that does not fit the schema; the message names the field."""


@dataclass(frozen=True)
class KindInfo:
    kind: str
    api_versions: tuple[str, ...]
    message: type[Message]
    namespaced: bool
    names: tuple[str, ...]  # plural first, then singular and short names, as kubectl accepts them


KINDS: dict[str, KindInfo] = {
    k.kind: k
    for k in [
        KindInfo("Pod", ("v1",), pb.Pod, True, ("pods", "pod", "po")),
        KindInfo(
            "Deployment",
            ("apps/v1", "extensions/v1beta1", "apps/v1beta1", "apps/v1beta2"),
            pb.Deployment,
            True,
            ("deployments", "deployment", "deploy"),
        ),
        KindInfo(
            "ReplicaSet",
            ("apps/v1", "extensions/v1beta1", "apps/v1beta2"),
            pb.ReplicaSet,
            True,
            ("replicasets", "replicaset", "rs"),
        ),
        KindInfo("Service", ("v1",), pb.Service, True, ("services", "service", "svc")),
        KindInfo("Endpoints", ("v1",), pb.Endpoints, True, ("endpoints", "ep")),
        KindInfo(
            "Ingress",
            ("networking.k8s.io/v1", "extensions/v1beta1", "networking.k8s.io/v1beta1"),
            pb.Ingress,
            True,
            ("ingresses", "ingress", "ing"),
        ),
        KindInfo("ConfigMap", ("v1",), pb.ConfigMap, True, ("configmaps", "configmap", "cm")),
        KindInfo("Node", ("v1",), pb.Node, False, ("nodes", "node", "no")),
        KindInfo("Namespace", ("v1",), pb.Namespace, False, ("namespaces", "namespace", "ns")),
        KindInfo("Event", ("v1",), pb.Event, True, ("events", "event", "ev")),
    ]
}

_KIND_BY_NAME: dict[str, str] = {}
for _info in KINDS.values():
    _KIND_BY_NAME[_info.kind.lower()] = _info.kind
    for _n in _info.names:
        _KIND_BY_NAME[_n] = _info.kind


def resolve_kind(name: str) -> str:
    """'po', 'pods', 'Pod', 'deployment.apps' -> the Kind; ValidationError for an unknown one."""
    base = name.split(".", 1)[0].lower()
    kind = _KIND_BY_NAME.get(base)
    if kind is None:
        raise ValidationError(f'the server doesn\'t have a resource type "{name}"')
    return kind


DEFAULT_NAMESPACE = "default"


def valid_name(name: str) -> bool:
    """A DNS subdomain name, as Kubernetes requires of object names."""
    try:
        validation.dns1123_subdomain(name, "name")
    except validation.FieldError:
        return False
    return True


_LONG_QUOTE = re.compile(r'"([^"]{64})[^"]+"')


def _one_line(text: str) -> str:
    """A schema error as one line; a quoted name longer than 64 characters (input) is cut short."""
    return _LONG_QUOTE.sub(r'"\1..."', " ".join(text.split("Available Fields")[0].split()).rstrip("."))


def _without_nulls(value: Any) -> Any:
    """A deep copy of decoded JSON without the fields set to null: Kubernetes decodes an optional
    field's null as the field left out, so defaulting fills it in (`"rollingUpdate": null` gets 25%)."""
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_without_nulls(v) for v in value]
    return value


def validate(obj: Mapping[str, Any]) -> Obj:
    """Check `obj` against the schema of its kind; return a normalised copy (kind's apiVersion, namespace).

    Raises ValidationError naming the first offending field.
    """
    if not isinstance(obj, Mapping):
        raise ValidationError("object must be a mapping with apiVersion, kind and metadata")
    kind = obj.get("kind")
    if not kind or not isinstance(kind, str):
        raise ValidationError("kind: required field is missing")
    info = KINDS.get(kind)
    if info is None:
        raise ValidationError(f'kind: no kind "{kind}" is known (known: {", ".join(sorted(KINDS))})')
    api_version = obj.get("apiVersion")
    if api_version not in info.api_versions:
        raise ValidationError(
            f'apiVersion: no kind "{kind}" is registered for version "{api_version}" '
            f"(use {info.api_versions[0]})"
        )
    try:
        json_format.ParseDict(dict(obj), info.message())  # ParseDict takes a dict; a shallow copy is enough
    except json_format.ParseError as e:
        raise ValidationError(_one_line(str(e))) from None
    except (TypeError, ValueError) as e:
        raise ValidationError(_one_line(str(e))) from None
    out = _without_nulls(obj)
    try:
        validation.validate_object(out)
    except validation.FieldError as e:
        raise ValidationError(str(e)) from None
    meta = out.setdefault("metadata", {})
    if info.namespaced:
        meta["namespace"] = meta.get("namespace") or DEFAULT_NAMESPACE
    else:
        meta.pop("namespace", None)
    return out


# ---------------------------------------------------------------- identity


def namespace_of(obj: Mapping[str, Any]) -> str:
    return obj.get("metadata", {}).get("namespace", "")


def name_of(obj: Mapping[str, Any]) -> str:
    return obj.get("metadata", {}).get("name", "")


def key_of(kind: str, namespace: str, name: str) -> str:
    """The store key: 'Pod/default/web-1', 'Node//worker-1'."""
    return f"{kind}/{namespace}/{name}"


def obj_key(obj: Mapping[str, Any]) -> str:
    return key_of(obj["kind"], namespace_of(obj), name_of(obj))


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def controller_of(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owner_ref(owner: Mapping[str, Any]) -> dict[str, Any]:
    info = KINDS[owner["kind"]]
    return {
        "apiVersion": owner.get("apiVersion", info.api_versions[0]),
        "kind": owner["kind"],
        "name": name_of(owner),
        "uid": owner["metadata"].get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


# ---------------------------------------------------------------- selectors


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return has and value == self.values[0]
        if self.op == "!=":
            return not has or value != self.values[0]
        if self.op == "in":
            return has and value in self.values
        if self.op == "notin":
            return not has or value not in self.values
        if self.op == "exists":
            return has
        return not has


_SET_RE = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def parse_selector(text: str) -> tuple[Requirement, ...]:
    """kubectl's label selector syntax -> requirements (all must hold). ValidationError when malformed."""
    reqs: list[Requirement] = []
    parts: list[str] = []
    depth, cur = 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    for raw in parts:
        part = raw.strip()
        if not part:
            raise ValidationError(f"invalid selector {text!r}: empty requirement")
        m = _SET_RE.match(part)
        if m:
            values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            reqs.append(Requirement(m.group(1), m.group(2), values))
        elif "!=" in part:
            k, v = part.split("!=", 1)
            reqs.append(Requirement(_label_key(k, text), "!=", (v.strip(),)))
        elif "==" in part or "=" in part:
            k, v = part.split("==", 1) if "==" in part else part.split("=", 1)
            reqs.append(Requirement(_label_key(k, text), "=", (v.strip(),)))
        elif part.startswith("!"):
            reqs.append(Requirement(_label_key(part[1:], text), "!"))
        else:
            reqs.append(Requirement(_label_key(part, text), "exists"))
    return tuple(reqs)


def _label_key(k: str, text: str) -> str:
    k = k.strip()
    if not k or not re.match(r"^[\w./-]+$", k):
        raise ValidationError(f"invalid selector {text!r}: bad key {k!r}")
    return k


def requirements_match(reqs: Iterable[Requirement], labels: Mapping[str, str]) -> bool:
    return all(r.matches(labels) for r in reqs)


def selector_matches(match_labels: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """A Service selector or matchLabels: every pair present. An empty selector matches nothing."""
    return bool(match_labels) and all(labels.get(k) == v for k, v in match_labels.items())


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels + matchExpressions). Empty or missing matches nothing."""
    if not selector:
        return False
    ml = selector.get("matchLabels") or {}
    exprs = selector.get("matchExpressions") or []
    if not ml and not exprs:
        return False
    if any(labels.get(k) != v for k, v in ml.items()):
        return False
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    return all(
        Requirement(e["key"], ops.get(e.get("operator", ""), "exists"), tuple(e.get("values") or ())).matches(
            labels
        )
        for e in exprs
    )


def parse_field_selector(text: str) -> tuple[tuple[str, str, str], ...]:
    """'spec.nodeName=w1,status.phase!=Running' -> ((path, op, value), ...)."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "!=" in part:
            k, v = part.split("!=", 1)
            out.append((k.strip(), "!=", v.strip()))
        elif "=" in part:
            k, v = part.split("==", 1) if "==" in part else part.split("=", 1)
            out.append((k.strip(), "=", v.strip()))
        else:
            raise ValidationError(f"invalid field selector {part!r}: expected field=value")
    return tuple(out)


def field_value(obj: Mapping[str, Any], path: str) -> str:
    cur: Any = obj
    for p in path.split("."):
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(p)
    return "" if cur is None else str(cur)


def fields_match(fields: Iterable[tuple[str, str, str]], obj: Mapping[str, Any]) -> bool:
    for path, op, value in fields:
        if (field_value(obj, path) == value) != (op == "="):
            return False
    return True


# ---------------------------------------------------------------- quantities

_BIN = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DEC = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


def parse_cpu(q: Any) -> int:
    """A cpu quantity -> millicores: 1 -> 1000, '500m' -> 500, '0.25' -> 250."""
    s = str(q).strip()
    if s.endswith("m"):
        return int(float(s[:-1]))
    return int(round(float(s) * 1000))


def parse_bytes(q: Any) -> int:
    """A memory quantity -> bytes: '64Mi', '1G', 1000000, '1e6'."""
    s = str(q).strip()
    for suffixes in (_BIN, _DEC):
        for suf, mult in suffixes.items():
            if s.endswith(suf):
                return int(float(s[: -len(suf)]) * mult)
    return int(float(s))


def format_cpu(millis: int) -> str:
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def format_bytes(n: int) -> str:
    for suf in ("Gi", "Mi", "Ki"):
        if n % _BIN[suf] == 0 and n >= _BIN[suf]:
            return f"{n // _BIN[suf]}{suf}"
    return str(n)


def pod_requests(pod: Mapping[str, Any]) -> tuple[int, int]:
    """(millicores, bytes) the pod requests: the sum over its containers (limits when requests are unset)."""
    cpu = mem = 0
    for c in pod.get("spec", {}).get("containers") or []:
        res = c.get("resources") or {}
        req = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        if "cpu" in req:
            cpu += parse_cpu(req["cpu"])
        if "memory" in req:
            mem += parse_bytes(req["memory"])
    return cpu, mem


# ---------------------------------------------------------------- int-or-string


def resolve_int_or_percent(value: Any, total: int, round_up: bool) -> int:
    """maxSurge / maxUnavailable: 2 -> 2; '25%' of 10 -> 3 (up) or 2 (down)."""
    if value is None:
        value = "25%"
    if isinstance(value, str) and value.endswith("%"):
        pct = int(value[:-1])
        return -(-pct * total // 100) if round_up else pct * total // 100
    return int(value)


# ---------------------------------------------------------------- time


def rfc3339(t: float) -> str:
    """Seconds since the epoch -> '2026-11-28T04:41:02Z' (Kubernetes' timestamp form)."""
    second = math.floor(t)
    if t - second < 0.999:  # else fromtimestamp may round the microseconds up to the next second
        return _rfc3339_second(second)
    return _dt.datetime.fromtimestamp(t, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.lru_cache(maxsize=1024)
def _rfc3339_second(second: int) -> str:
    """Cached: a store applies thousands of commands a second, each stamped with one of a few
    seconds (a tenth of a journal replay's time went to formatting them)."""
    return _dt.datetime.fromtimestamp(second, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(s: str) -> float:
    """An RFC 3339 timestamp -> seconds since the epoch; 0.0 for ''."""
    if not s:
        return 0.0
    return _dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def age(created: str, now: float) -> str:
    """kubectl's AGE column: 5s, 3m2s, 4h, 2d."""
    if not created:
        return "<unknown>"
    secs = max(0, int(now - parse_time(created)))
    if secs < 120:
        return f"{secs}s"
    if secs < 600:
        return f"{secs // 60}m{secs % 60}s" if secs % 60 else f"{secs // 60}m"
    if secs < 3 * 3600:
        return f"{secs // 60}m"
    if secs < 48 * 3600:
        return f"{secs // 3600}h"
    return f"{secs // 86400}d"


# ---------------------------------------------------------------- pods


def pod_is_ready(pod: Mapping[str, Any]) -> bool:
    for c in pod.get("status", {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def pod_is_terminating(pod: Mapping[str, Any]) -> bool:
    return bool(pod.get("metadata", {}).get("deletionTimestamp"))


def pod_is_active(pod: Mapping[str, Any]) -> bool:
    """Counts toward a workload's replicas: not finished and not being deleted."""
    phase = pod.get("status", {}).get("phase", "Pending")
    return phase not in ("Succeeded", "Failed") and not pod_is_terminating(pod)


def template_hash(template: Mapping[str, Any]) -> str:
    """A stable short hash of a pod template (the pod-template-hash label)."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(data).hexdigest()
    # kubectl's hashes are alphanumeric without vowels, so they never spell words.
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    n = int(digest[:16], 16)
    out = ""
    for _ in range(10):
        n, r = divmod(n, len(alphabet))
        out += alphabet[r]
    return out


def container_port(pod: Mapping[str, Any], target: Any) -> tuple[str, int] | None:
    """A Service targetPort (number or port name) -> (hostIP, hostPort) of the pod's mapping, or None."""
    for m in pod.get("status", {}).get("portMappings") or []:
        if (isinstance(target, str) and not target.isdigit() and m.get("name") == target) or (
            str(m.get("containerPort")) == str(target)
        ):
            return m.get("hostIP") or pod["status"].get("hostIP", ""), int(m["hostPort"])
    return None


# ---------------------------------------------------------------- defaults


def _default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    for c in spec.get("containers") or []:
        for p in c.get("ports") or []:
            p.setdefault("protocol", "TCP")


def apply_defaults(obj: Obj, *, copy: bool = True) -> Obj:
    """Kubernetes' defaulting for the fields Skiff reads; returns a new dict (with copy=False, `obj`
    itself, defaulted in place: for the fresh copy that `validate` returns)."""
    out = json.loads(json.dumps(obj)) if copy else obj
    kind = out.get("kind")
    spec = out.get("spec")
    if kind == "Pod" and spec is not None:
        _default_pod_spec(spec)
    elif kind in ("Deployment", "ReplicaSet") and spec is not None:
        spec.setdefault("replicas", 1)
        template = spec.setdefault("template", {})
        labels = (template.get("metadata") or {}).get("labels") or {}
        if not spec.get("selector") and labels:
            spec["selector"] = {"matchLabels": dict(labels)}
        _default_pod_spec(template.setdefault("spec", {}))
        if kind == "Deployment":
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
            strategy = spec.setdefault("strategy", {})
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                ru = strategy.setdefault("rollingUpdate", {})
                ru.setdefault("maxSurge", "25%")
                ru.setdefault("maxUnavailable", "25%")
    elif kind == "Namespace":
        out.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        out["status"] = {"phase": "Active"}
    elif kind == "Service" and spec is not None:
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
    return out
