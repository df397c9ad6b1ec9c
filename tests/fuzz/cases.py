"""What the fuzz run sends: hypothesis strategies for hostile objects, bytes, calls, manifests and flags.

Every strategy starts from something valid (a template object, a real verb) and breaks it, so most
cases reach the validation that matters instead of dying at the first JSON brace.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml
from hypothesis import strategies as st

Obj = dict[str, Any]

TEMPLATES: dict[str, Obj] = {
    "ConfigMap": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "f"}, "data": {"k": "v"}},
    "Deployment": {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "f", "labels": {"app": "f"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "f"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "f"}},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "demo",
                            "ports": [{"containerPort": 8080, "name": "http"}],
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                        }
                    ]
                },
            },
        },
    },
    "Service": {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "f"},
        "spec": {"type": "NodePort", "selector": {"app": "f"}, "ports": [{"port": 80, "targetPort": "http"}]},
    },
    "Ingress": {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "f"},
        "spec": {
            "rules": [
                {
                    "host": "f.example",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "f", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ]
        },
    },
    "Pod": {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "f"},
        "spec": {"containers": [{"name": "c", "image": "demo"}], "restartPolicy": "Always"},
    },
    "Namespace": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "f"}},
}

# Strings a careless or hostile user writes where names, labels, ports and revisions go.
NASTY = [
    "", " ", "Bad NS", "../etc", "UPPER", "a" * 300, "demo\n", "\ud800", "x\x00y", "٣", " 5", "-1", "abc",
    "0", "null", "*", "%", "100%", "101%", "1e999", "nan", "-", "a/b/c", "a" * 64, "é", "\u202e", "--x",
    "x" * 70_000, "1.5", "0x10", "true",
]  # fmt: skip
TEXT = st.one_of(st.text(max_size=24), st.sampled_from(NASTY))
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSONISH = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=10,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _set(obj: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    holder = obj
    for part in path[:-1]:
        holder = holder[part]
    if delete and isinstance(holder, dict):
        holder.pop(path[-1], None)
    elif delete:
        del holder[path[-1]]
    else:
        holder[path[-1]] = value
    return obj


@st.composite
def broken_object(draw: st.DrawFn) -> Any:
    """A template with one to three of its fields replaced, deleted or added (the root may go too)."""
    obj: Any = copy.deepcopy(TEMPLATES[draw(st.sampled_from(sorted(TEMPLATES)))])
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(obj)
        path = draw(st.sampled_from(paths))
        if draw(st.booleans()) and isinstance(_get(obj, path), dict):
            path = (*path, draw(TEXT))  # a new field
        delete = bool(path) and draw(st.integers(0, 4)) == 0
        obj = _set(obj, path, draw(JSONISH), delete)
    return obj


def _get(obj: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        obj = obj[part]
    return obj


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=True).encode()  # \ud800 travels as an escape, as a client sends it


@st.composite
def hostile_bytes(draw: st.DrawFn) -> bytes:
    """Bodies that are not what they claim: binary, broken UTF-8, cut, deep, doubled keys, huge."""
    base = dumps(draw(broken_object()))
    kind = draw(st.integers(0, 7))
    if kind == 0:
        return draw(st.binary(max_size=300))
    if kind == 1:  # a byte that is not UTF-8, somewhere
        at = draw(st.integers(0, len(base)))
        return base[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"])) + base[at:]
    if kind == 2:
        return base[: draw(st.integers(0, len(base)))]
    if kind == 3:
        depth = draw(st.sampled_from([99, 101, 1000, 100_000]))
        return b"[" * depth + b"]" * draw(st.sampled_from([0, depth]))
    if kind == 4:
        return base.replace(b'"metadata"', b'"kind": "Pod", "metadata"', 1)  # a duplicate key
    if kind == 5:
        return b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"k": "'
    if kind == 6:
        size = draw(st.sampled_from([3 * 1024 * 1024 - 200, 3 * 1024 * 1024 + 10, 4 * 1024 * 1024]))
        return (
            b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"k": "'
            + (b"x" * size)
            + b'"}}'
        )
    return base


KIND_NAMES = [
    "ConfigMap",
    "configmaps",
    "deploy",
    "Pod",
    "svc",
    "ingress",
    "Node",
    "ns",
    "",
    "Nope",
    "pods.x",
]
CALL = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["Create", "Apply", "Update", "Patch", "Delete", "Get", "List", "Watch"]),
        "kind": st.one_of(st.sampled_from(KIND_NAMES), TEXT),
        "namespace": st.one_of(st.just("default"), TEXT),
        "name": st.one_of(st.just("f"), TEXT),
        "rid": st.one_of(st.just(""), TEXT),
        "status": st.booleans(),
        "revision": st.one_of(
            st.just(""), st.sampled_from(["0", "1", "999999999", " 5", "٣", "-1", "x"]), TEXT
        ),
        "selector": st.one_of(
            st.just(""), st.sampled_from(["app=f", "app in (a,b)", "!x", "a=", "=b", "a!=b,"]), TEXT
        ),
    }
)

CONTENT_TYPES = [
    "application/json",
    "application/yaml",
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "text/plain",
    "",
    "application/vnd.kubernetes.protobuf",
]
REST = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["POST", "PUT", "PATCH", "DELETE", "GET"]),
        "path": st.one_of(
            st.sampled_from(
                [
                    "/api/v1/namespaces/default/configmaps",
                    "/api/v1/namespaces/default/configmaps/f",
                    "/apis/apps/v1/namespaces/default/deployments",
                    "/apis/apps/v1/namespaces/default/deployments/f/scale",
                    "/apis/apps/v1/namespaces/default/deployments/f/status",
                    "/api/v1/namespaces/default/services",
                    "/apis/networking.k8s.io/v1/namespaces/default/ingresses",
                    "/api/v1/namespaces",
                    "/api/v1/namespaces/default/pods/f/log",
                    "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=999999999",
                ]
            ),
            TEXT.map(lambda t: "/api/v1/namespaces/" + t.replace("?", "")[:80] + "/configmaps"),
        ),
        "content_type": st.sampled_from(CONTENT_TYPES),
        "body": st.one_of(hostile_bytes(), broken_object().map(dumps)),
    }
)

HOSTILE_YAML = [
    "a: &x [*x]\n",
    "a: " + "{b: " * 5000 + "1" + "}" * 5000 + "\n",
    "a: &a [x,x,x,x,x,x,x,x,x]\n"
    + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)),
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\nkind: Pod\n",
    "\tkind: ConfigMap\n",
    "\ufeffapiVersion: v1\nkind: ConfigMap\nmetadata: {name: bom}\n",
    "kind: !!python/object/apply:os.system ['true']\n",
    "---\n---\n",
    "- a\n- b\n",
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n",
]


@st.composite
def manifest(draw: st.DrawFn) -> str:
    """A YAML (or JSON) manifest: a broken object, dumped, maybe cut; or a hostile YAML document."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.sampled_from(HOSTILE_YAML))
    obj = draw(broken_object())
    text = yaml.safe_dump(obj, allow_unicode=False) if draw(st.booleans()) else json.dumps(obj)
    if draw(st.integers(0, 5)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text


VERBS = [
    ["get"], ["get", "pods"], ["get", "deploy"], ["describe", "deploy"], ["scale"], ["scale", "deployment/f"],
    ["create", "deployment"], ["create", "configmap"], ["delete"], ["delete", "configmap"], ["expose"],
    ["expose", "deployment", "f"], ["run"], ["set", "image"], ["rollout", "history"], ["rollout", "undo"],
    ["label"], ["label", "configmap", "f"], ["logs"], ["cluster", "status"], ["version"], ["apply"],
    ["cordon"], ["drain"], ["nope"],
]  # fmt: skip
FLAGS = [
    "--replicas", "--image", "--port", "--target-port", "--type", "-n", "--namespace", "-l", "--selector",
    "--field-selector", "-o", "--output", "--request-timeout", "--from-literal", "--to-revision", "--timeout",
    "-A", "--all-namespaces", "--validate", "--overwrite", "--tail", "-c", "--since", "--bogus", "--", "-",
    "--force", "--grace-period",
]  # fmt: skip
ARGV = st.tuples(
    st.sampled_from(VERBS),
    st.lists(st.one_of(st.sampled_from(FLAGS), TEXT.filter(lambda t: "\x00" not in t)), max_size=6),
).map(lambda t: [*t[0], *t[1]])
