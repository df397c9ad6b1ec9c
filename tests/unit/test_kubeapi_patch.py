"""PATCH bodies as kubectl sends them (kubectl-compat note §4.6, §6.2), applied to stored objects:
strategic merge patch by merge key and directive, JSON merge patch, JSON patch, server-side apply,
the media-type dispatch, and that no input is ever changed."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.kubeapi import patch as p

Obj = dict[str, Any]
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
SMP = p.STRATEGIC_MERGE_PATCH


def web(*containers: Obj) -> Obj:
    """A Deployment as `kubectl apply -f deployment.yaml` created it."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"app": "web"},
            "annotations": {LAST_APPLIED: '{"kind":"Deployment"}\n'},
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": list(containers) or [WEB]},
            },
        },
        "status": {"replicas": 1},
    }


WEB = {"name": "web", "image": "demo:v1", "ports": [{"containerPort": 5005, "protocol": "TCP"}]}
SIDECAR = {"name": "sidecar", "image": "side:1"}


def changed(obj: Obj, path: str, value: Any) -> Obj:
    """A copy of `obj` with the dotted `path` set to `value` (or removed when value is ...)."""
    out = copy.deepcopy(obj)
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return out


def pod_spec(patch: Obj) -> Obj:
    """A strategic merge patch of a Deployment's pod spec."""
    return {"spec": {"template": {"spec": patch}}}


CONTAINERS = "spec.template.spec.containers"

# (id, stored object, strategic merge patch, expected object)
STRATEGIC_CASES: list[tuple[str, Obj, Obj, Obj]] = [
    (
        "apply-changed-image-keeps-ports",  # §4.6: the body kubectl apply sends
        web(),
        {
            "metadata": {"annotations": {LAST_APPLIED: '{"v":2}\n'}},
            "spec": {
                "replicas": 3,
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "web"}],
                        "containers": [{"image": "demo:v2", "name": "web"}],
                    }
                },
            },
        },
        changed(
            changed(changed(web(), "metadata.annotations", {LAST_APPLIED: '{"v":2}\n'}), "spec.replicas", 3),
            CONTAINERS,
            [{**WEB, "image": "demo:v2"}],
        ),
    ),
    (
        "apply-removed-field-is-null-in-keyed-item",  # §6.2, P16
        web(),
        pod_spec(
            {"$setElementOrder/containers": [{"name": "web"}], "containers": [{"name": "web", "ports": None}]}
        ),
        changed(web(), CONTAINERS, [{"name": "web", "image": "demo:v1"}]),
    ),
    (
        "apply-container-added-after-the-others",
        web(),
        pod_spec(
            {"$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}], "containers": [SIDECAR]}
        ),
        changed(web(), CONTAINERS, [WEB, SIDECAR]),
    ),
    (
        "apply-container-removed-with-patch-delete",
        web(WEB, SIDECAR),
        pod_spec(
            {
                "$setElementOrder/containers": [{"name": "web"}],
                "containers": [{"$patch": "delete", "name": "sidecar"}],
            }
        ),
        web(WEB),
    ),
    (
        "set-image-changes-one-container-in-place",  # kubectl set image web sidecar=side:2
        web(WEB, SIDECAR),
        pod_spec(
            {
                "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                "containers": [{"image": "side:2", "name": "sidecar"}],
            }
        ),
        web(WEB, {**SIDECAR, "image": "side:2"}),
    ),
    (
        "hand-written-patch-keeps-stored-order",
        web(WEB, SIDECAR),
        pod_spec({"containers": [{"name": "web", "image": "demo:v3"}]}),
        web({**WEB, "image": "demo:v3"}, SIDECAR),
    ),
    (
        # Kubernetes puts a new item before the stored-only ones when no $setElementOrder says otherwise.
        "new-item-without-element-order-goes-first",
        web(),
        pod_spec({"containers": [SIDECAR]}),
        web(SIDECAR, WEB),
    ),
    (
        "set-element-order-alone-reorders",
        web(WEB, SIDECAR),
        pod_spec({"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}]}),
        web(SIDECAR, WEB),
    ),
    (
        # Kubernetes' own "add map and delete map from merging list" case, on containers.
        "add-and-delete-keep-kubernetes-order-around-server-only-item",
        web({"name": "c1"}, {"name": "c2", "image": "b"}, {"name": "c4", "image": "c"}),
        pod_spec(
            {
                "$setElementOrder/containers": [{"name": "c2"}, {"name": "c3"}],
                "containers": [{"name": "c3"}, {"name": "c1", "$patch": "delete"}],
            }
        ),
        web({"name": "c2", "image": "b"}, {"name": "c4", "image": "c"}, {"name": "c3"}),
    ),
    (
        "rollout-restart-annotates-the-template",
        web(),
        {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-20T10:00:00Z"}}
                }
            }
        },
        changed(
            web(),
            "spec.template.metadata",
            {
                "labels": {"app": "web"},
                "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-20T10:00:00Z"},
            },
        ),
    ),
    (
        "label-added-and-removed-with-null",
        web(),
        {"metadata": {"labels": {"tier": "front", "app": None}}},
        changed(web(), "metadata.labels", {"tier": "front"}),
    ),
    (
        "cordon-sets-unschedulable",
        {"kind": "Node", "metadata": {"name": "w1"}, "spec": {"podCIDR": "10.0.0.0/24"}},
        {"spec": {"unschedulable": True}},
        {
            "kind": "Node",
            "metadata": {"name": "w1"},
            "spec": {"podCIDR": "10.0.0.0/24", "unschedulable": True},
        },
    ),
    (
        "container-ports-merge-by-container-port",
        web(),
        pod_spec({"containers": [{"name": "web", "ports": [{"containerPort": 5005, "name": "http"}]}]}),
        changed(
            web(),
            CONTAINERS,
            [{**WEB, "ports": [{"containerPort": 5005, "protocol": "TCP", "name": "http"}]}],
        ),
    ),
    (
        "env-merges-by-name",
        web({"name": "web", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}),
        pod_spec(
            {
                "containers": [
                    {"name": "web", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]}
                ]
            }
        ),
        web(
            {
                "name": "web",
                "env": [
                    {"name": "A", "value": "1"},
                    {"name": "B", "value": "3"},
                    {"name": "C", "value": "4"},
                ],
            }
        ),
    ),
    (
        "env-entry-deleted-by-name",
        web({"name": "web", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}),
        pod_spec({"containers": [{"name": "web", "env": [{"$patch": "delete", "name": "A"}]}]}),
        web({"name": "web", "env": [{"name": "B", "value": "2"}]}),
    ),
    (
        "volume-mounts-merge-by-mount-path",
        web({"name": "web", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}),
        pod_spec(
            {"containers": [{"name": "web", "volumeMounts": [{"mountPath": "/data", "readOnly": True}]}]}
        ),
        web({"name": "web", "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}]}),
    ),
    (
        "volume-item-retains-only-listed-keys",  # volumes are merge,retainKeys: emptyDir -> configMap
        changed(web(), "spec.template.spec.volumes", [{"name": "cfg", "emptyDir": {}}]),
        pod_spec(
            {"volumes": [{"$retainKeys": ["configMap", "name"], "name": "cfg", "configMap": {"name": "c"}}]}
        ),
        changed(web(), "spec.template.spec.volumes", [{"name": "cfg", "configMap": {"name": "c"}}]),
    ),
    (
        "strategy-retain-keys-drops-rolling-update",  # Deployment strategy is retainKeys
        web(),
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}},
        changed(web(), "spec.strategy", {"type": "Recreate"}),
    ),
    (
        "tolerations-have-no-merge-key-so-replace",
        changed(web(), "spec.template.spec.tolerations", [{"key": "a", "operator": "Exists"}]),
        pod_spec({"tolerations": [{"key": "b", "operator": "Exists"}]}),
        changed(web(), "spec.template.spec.tolerations", [{"key": "b", "operator": "Exists"}]),
    ),
    (
        "node-taints-replace",
        {"kind": "Node", "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}},
        {"spec": {"taints": [{"key": "b", "effect": "NoExecute"}]}},
        {"kind": "Node", "spec": {"taints": [{"key": "b", "effect": "NoExecute"}]}},
    ),
    (
        "ingress-rules-replace",
        {"kind": "Ingress", "spec": {"rules": [{"host": "a"}, {"host": "b"}]}},
        {"spec": {"rules": [{"host": "c"}]}},
        {"kind": "Ingress", "spec": {"rules": [{"host": "c"}]}},
    ),
    (
        "args-replace",
        web({"name": "web", "args": ["-a", "-b"]}),
        pod_spec({"containers": [{"name": "web", "args": ["-c"]}]}),
        web({"name": "web", "args": ["-c"]}),
    ),
    (
        "finalizers-merge-as-a-set",
        {"metadata": {"finalizers": ["a", "b"]}},
        {"metadata": {"finalizers": ["b", "c"]}},
        {"metadata": {"finalizers": ["a", "b", "c"]}},
    ),
    (
        "delete-from-primitive-list",
        {"metadata": {"finalizers": ["a", "b", "c"]}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "x"]}},
        {"metadata": {"finalizers": ["a", "c"]}},
    ),
    (
        "delete-from-absent-primitive-list-adds-nothing",
        {"metadata": {}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}},
        {"metadata": {}},
    ),
    (
        "owner-references-merge-by-uid",
        {"metadata": {"ownerReferences": [{"uid": "u1", "name": "a"}, {"uid": "u2", "name": "b"}]}},
        {"metadata": {"ownerReferences": [{"uid": "u2", "controller": True}]}},
        {
            "metadata": {
                "ownerReferences": [
                    {"uid": "u1", "name": "a"},
                    {"uid": "u2", "name": "b", "controller": True},
                ]
            }
        },
    ),
    (
        "status-conditions-merge-by-type",
        {
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "False"},
                    {"type": "Progressing", "status": "True"},
                ]
            }
        },
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        {
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}, {"type": "Progressing", "status": "True"}]
            }
        },
    ),
    (
        "patch-replace-in-a-list-replaces-the-list",
        web(WEB, SIDECAR),
        pod_spec({"containers": [{"$patch": "replace"}, {"name": "solo", "image": "s", "env": None}]}),
        web({"name": "solo", "image": "s"}),
    ),
    (
        "patch-replace-in-a-map-replaces-the-map",
        changed(web(), "spec.template.spec.nodeSelector", {"disk": "ssd", "zone": "a"}),
        pod_spec({"nodeSelector": {"$patch": "replace", "zone": "b"}}),
        changed(web(), "spec.template.spec.nodeSelector", {"zone": "b"}),
    ),
    (
        "patch-delete-in-a-map-empties-it",  # Kubernetes leaves {} rather than removing the key
        web(),
        {"metadata": {"annotations": {"$patch": "delete"}}},
        changed(web(), "metadata.annotations", {}),
    ),
    (
        "nulls-and-directives-in-a-new-subtree-are-resolved",
        {"spec": {}},
        {
            "spec": {
                "template": {"metadata": {"labels": {"a": "1", "b": None}}, "spec": {"containers": [SIDECAR]}}
            }
        },
        {"spec": {"template": {"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [SIDECAR]}}}},
    ),
    (
        "null-for-an-absent-field-is-ignored",
        {"spec": {"replicas": 1}},
        {"spec": {"paused": None}},
        {"spec": {"replicas": 1}},
    ),
]

SERVICE = {
    "kind": "Service",
    "metadata": {"name": "demo"},
    "spec": {
        "type": "NodePort",
        "clusterIP": "127.1.0.7",
        "ports": [
            {"port": 80, "targetPort": 5005, "protocol": "TCP", "nodePort": 30080},
            {"port": 443, "targetPort": 5443, "protocol": "TCP", "nodePort": 30443},
        ],
    },
}

STRATEGIC_CASES += [
    (
        "service-ports-merge-by-port",
        SERVICE,
        {"spec": {"ports": [{"port": 80, "targetPort": 8080}]}},
        changed(
            SERVICE,
            "spec.ports",
            [
                {"port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30080},
                {"port": 443, "targetPort": 5443, "protocol": "TCP", "nodePort": 30443},
            ],
        ),
    ),
    (
        "service-port-deleted-by-port",
        SERVICE,
        {"spec": {"$setElementOrder/ports": [{"port": 443}], "ports": [{"$patch": "delete", "port": 80}]}},
        changed(
            SERVICE, "spec.ports", [{"port": 443, "targetPort": 5443, "protocol": "TCP", "nodePort": 30443}]
        ),
    ),
    (
        "endpoints-subset-ports-replace",
        {"kind": "Endpoints", "subsets": [{"ports": [{"port": 1}]}]},
        {"subsets": [{"ports": [{"port": 2}]}]},
        {"kind": "Endpoints", "subsets": [{"ports": [{"port": 2}]}]},
    ),
]


@pytest.mark.parametrize(
    ("current", "body", "expected"), [c[1:] for c in STRATEGIC_CASES], ids=[c[0] for c in STRATEGIC_CASES]
)
def test_strategic_merge_patch(current: Obj, body: Obj, expected: Obj) -> None:
    assert p.apply(SMP, current, json.dumps(body).encode()) == expected


# (id, stored object, strategic merge patch, the one-line message it raises)
STRATEGIC_ERRORS: list[tuple[str, Obj, Any, str]] = [
    (
        "patch-not-an-object",
        web(),
        [{"op": "add"}],
        "a strategic merge patch must be a JSON object, not a list",
    ),
    (
        "list-where-a-map-is-stored",
        web(),
        {"spec": {"template": []}},
        "spec.template: the patch has a list where",
    ),
    (
        "map-where-a-list-is-stored",
        web(),
        pod_spec({"containers": {"name": "web"}}),
        "spec.template.spec.containers: the patch has a map where",
    ),
    (
        "item-without-merge-key",
        web(),
        pod_spec({"containers": [{"image": "x"}]}),
        "spec.template.spec.containers[0]: the item has no merge key 'name'",
    ),
    (
        "delete-without-merge-key",
        web(),
        pod_spec({"containers": [{"$patch": "delete"}]}),
        "spec.template.spec.containers[0]: '$patch: delete' needs the merge key 'name'",
    ),
    (
        "stored-item-without-merge-key",
        web({"image": "nameless"}),
        pod_spec({"containers": [SIDECAR]}),
        "spec.template.spec.containers[0]: the stored item has no merge key 'name'",
    ),
    (
        "scalar-in-a-keyed-list",
        web(),
        pod_spec({"containers": ["web"]}),
        "spec.template.spec.containers[0]: expected an object merged by 'name', got a string",
    ),
    ("unknown-directive", web(), {"spec": {"$frobnicate": 1}}, "spec: unknown directive '$frobnicate'"),
    (
        "unknown-map-directive",
        web(),
        {"spec": {"$patch": "merge"}},
        "spec: unknown map directive '$patch: merge'",
    ),
    (
        "unknown-list-directive",
        web(),
        pod_spec({"containers": [{"$patch": "merge", "name": "web"}]}),
        "spec.template.spec.containers[0]: unknown list directive '$patch: merge'",
    ),
    (
        "element-order-disagrees-with-patch-list",
        web(WEB, SIDECAR),
        pod_spec(
            {
                "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                "containers": [SIDECAR, {"name": "web", "image": "v9"}],
            }
        ),
        "spec.template.spec.containers: the patch list does not follow the order of its $setElementOrder",
    ),
    (
        "element-order-not-a-list",
        web(),
        pod_spec({"$setElementOrder/containers": {"name": "web"}}),
        "spec.template.spec.containers: $setElementOrder must be a list",
    ),
    (
        "element-order-item-without-merge-key",
        web(),
        pod_spec({"$setElementOrder/containers": ["web"]}),
        "every $setElementOrder item needs the merge key 'name'",
    ),
    (
        "element-order-naming-no-field",
        web(),
        {"spec": {"$setElementOrder/": []}},
        "spec: directive '$setElementOrder/' names no field",
    ),
    (
        "retain-keys-missing-a-patched-field",
        web(),
        {
            "spec": {
                "strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {"maxSurge": 1}}
            }
        },
        "spec.strategy: the patch sets 'rollingUpdate', which $retainKeys does not list",
    ),
    (
        "retain-keys-not-a-list",
        web(),
        {"spec": {"$retainKeys": "type"}},
        "spec: $retainKeys must be a list of field names",
    ),
    (
        "delete-from-primitive-list-not-a-list",
        {"metadata": {"finalizers": ["a"]}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}},
        "metadata.finalizers: $deleteFromPrimitiveList must be a list",
    ),
    (
        "object-in-a-set-list",
        {"metadata": {"finalizers": ["a"]}},
        {"metadata": {"finalizers": [{"a": 1}]}},
        "metadata.finalizers[0]: expected a scalar, got an object",
    ),
]


@pytest.mark.parametrize(
    ("current", "body", "message"), [c[1:] for c in STRATEGIC_ERRORS], ids=[c[0] for c in STRATEGIC_ERRORS]
)
def test_strategic_merge_patch_errors_name_the_path(current: Obj, body: Any, message: str) -> None:
    with pytest.raises(p.PatchError, match=re.escape(message)) as e:
        p.apply(SMP, current, body)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------------------
# JSON merge patch


# (id, stored object, merge patch, expected object)
MERGE_CASES: list[tuple[str, Obj, Obj, Obj]] = [
    (
        "null-deletes-nested-key",
        {"a": 1, "b": {"c": 2, "d": 3}},
        {"b": {"c": None, "e": 4}},
        {"a": 1, "b": {"d": 3, "e": 4}},
    ),
    (
        "scale-sets-replicas",
        {"spec": {"replicas": 1}, "status": {"replicas": 1}},
        {"spec": {"replicas": 10}},
        {"spec": {"replicas": 10}, "status": {"replicas": 1}},
    ),
    ("lists-replace-whole", web(WEB, SIDECAR), pod_spec({"containers": [SIDECAR]}), web(SIDECAR)),
    (
        "label-add-and-remove",
        web(),
        {"metadata": {"labels": {"tier": "front", "app": None}}},
        changed(web(), "metadata.labels", {"tier": "front"}),
    ),
    ("scalar-replaces-map", {"a": {"b": 1}}, {"a": "x"}, {"a": "x"}),
    ("new-map-drops-its-nulls", {}, {"a": {"b": None, "c": 1}}, {"a": {"c": 1}}),
]


@pytest.mark.parametrize(
    ("current", "body", "expected"), [c[1:] for c in MERGE_CASES], ids=[c[0] for c in MERGE_CASES]
)
def test_json_merge_patch(current: Obj, body: Obj, expected: Obj) -> None:
    assert p.apply(p.MERGE_PATCH, current, json.dumps(body)) == expected


def test_merge_patch_must_be_an_object() -> None:
    with pytest.raises(p.PatchError, match="a merge patch must be a JSON object, not a list"):
        p.apply(p.MERGE_PATCH, web(), b"[1]")


# ---------------------------------------------------------------------------------------------------
# JSON patch

DOC: Obj = {
    "metadata": {"name": "web", "labels": {"app": "web", "a/b": "slash", "t~n": "tilde"}},
    "spec": {"replicas": 1, "list": [1, 2, 3]},
}

# (id, operations, expected object)
JSON_PATCH_CASES: list[tuple[str, list[Obj], Obj]] = [
    (
        "add-member",
        [{"op": "add", "path": "/metadata/labels/tier", "value": "front"}],
        changed(DOC, "metadata.labels", {**DOC["metadata"]["labels"], "tier": "front"}),
    ),
    (
        "add-replaces-existing-member",
        [{"op": "add", "path": "/spec/replicas", "value": 5}],
        changed(DOC, "spec.replicas", 5),
    ),
    (
        "add-inserts-at-index",
        [{"op": "add", "path": "/spec/list/1", "value": 9}],
        changed(DOC, "spec.list", [1, 9, 2, 3]),
    ),
    (
        "add-at-length-appends",
        [{"op": "add", "path": "/spec/list/3", "value": 9}],
        changed(DOC, "spec.list", [1, 2, 3, 9]),
    ),
    (
        "add-dash-appends",
        [{"op": "add", "path": "/spec/list/-", "value": 9}],
        changed(DOC, "spec.list", [1, 2, 3, 9]),
    ),
    ("remove-member", [{"op": "remove", "path": "/spec/replicas"}], changed(DOC, "spec.replicas", ...)),
    ("remove-list-item", [{"op": "remove", "path": "/spec/list/0"}], changed(DOC, "spec.list", [2, 3])),
    (
        "remove-escaped-slash",
        [{"op": "remove", "path": "/metadata/labels/a~1b"}],
        changed(DOC, "metadata.labels", {"app": "web", "t~n": "tilde"}),
    ),
    (
        "remove-escaped-tilde",
        [{"op": "remove", "path": "/metadata/labels/t~0n"}],
        changed(DOC, "metadata.labels", {"app": "web", "a/b": "slash"}),
    ),
    (
        "replace-member",
        [{"op": "replace", "path": "/spec/replicas", "value": 3}],
        changed(DOC, "spec.replicas", 3),
    ),
    (
        "replace-list-item",
        [{"op": "replace", "path": "/spec/list/2", "value": 7}],
        changed(DOC, "spec.list", [1, 2, 7]),
    ),
    (
        "replace-with-null",
        [{"op": "replace", "path": "/spec/replicas", "value": None}],
        changed(DOC, "spec.replicas", None),
    ),
    ("replace-root", [{"op": "replace", "path": "", "value": {"kind": "X"}}], {"kind": "X"}),
    (
        "move-member",
        [{"op": "move", "from": "/metadata/labels/app", "path": "/metadata/app"}],
        changed(changed(DOC, "metadata.labels", {"a/b": "slash", "t~n": "tilde"}), "metadata.app", "web"),
    ),
    (
        "move-within-a-list",
        [{"op": "move", "from": "/spec/list/0", "path": "/spec/list/-"}],
        changed(DOC, "spec.list", [2, 3, 1]),
    ),
    (
        "copy-member",
        [{"op": "copy", "from": "/spec/list", "path": "/spec/copy"}],
        changed(DOC, "spec.copy", [1, 2, 3]),
    ),
    (
        "test-then-replace",
        [
            {"op": "test", "path": "/spec/replicas", "value": 1.0},
            {"op": "replace", "path": "/spec/replicas", "value": 2},
        ],
        changed(DOC, "spec.replicas", 2),
    ),
    ("test-whole-list", [{"op": "test", "path": "/spec/list", "value": [1, 2, 3]}], DOC),
    ("no-operations", [], DOC),
]


@pytest.mark.parametrize(
    ("ops", "expected"), [c[1:] for c in JSON_PATCH_CASES], ids=[c[0] for c in JSON_PATCH_CASES]
)
def test_json_patch(ops: list[Obj], expected: Obj) -> None:
    assert p.apply(p.JSON_PATCH, DOC, json.dumps(ops)) == expected


def test_json_patch_copy_is_independent_of_its_source() -> None:
    out = p.json_patch(
        DOC,
        [
            {"op": "copy", "from": "/spec/list", "path": "/spec/copy"},
            {"op": "add", "path": "/spec/copy/-", "value": 4},
        ],
    )
    assert out["spec"]["list"] == [1, 2, 3] and out["spec"]["copy"] == [1, 2, 3, 4]


# (id, operations, the one-line message)
JSON_PATCH_ERRORS: list[tuple[str, Any, str]] = [
    (
        "not-a-list",
        {"op": "add", "path": "/a", "value": 1},
        "a JSON patch must be a list of operations, not an object",
    ),
    ("operation-not-an-object", ["add"], "json patch operation 0: expected an object, got a string"),
    ("unknown-op", [{"op": "frob", "path": "/a"}], "json patch operation 0: unknown op 'frob'"),
    ("path-missing", [{"op": "remove"}], "json patch operation 0 (remove): 'path' must be a string"),
    (
        "value-missing",
        [{"op": "add", "path": "/spec/x"}],
        "json patch operation 0 (add /spec/x): missing 'value'",
    ),
    (
        "from-missing",
        [{"op": "copy", "path": "/spec/x"}],
        "json patch operation 0 (copy /spec/x): 'from' must be a string",
    ),
    (
        "second-op-fails-on-missing-member",
        [{"op": "add", "path": "/spec/x", "value": 1}, {"op": "remove", "path": "/metadata/nope"}],
        "json patch operation 1 (remove /metadata/nope): nothing at /metadata/nope",
    ),
    (
        "replace-missing",
        [{"op": "replace", "path": "/spec/nope", "value": 1}],
        "json patch operation 0 (replace /spec/nope): nothing at /spec/nope",
    ),
    (
        "add-under-missing-parent",
        [{"op": "add", "path": "/spec/nope/x", "value": 1}],
        "(add /spec/nope/x): nothing at /spec/nope",
    ),
    (
        "add-into-a-scalar",
        [{"op": "add", "path": "/spec/replicas/x", "value": 1}],
        "(add /spec/replicas/x): /spec/replicas holds a number",
    ),
    (
        "index-past-the-end",
        [{"op": "add", "path": "/spec/list/4", "value": 1}],
        "(add /spec/list/4): '4' is not an index of a list of 3",
    ),
    ("index-with-leading-zero", [{"op": "add", "path": "/spec/list/01", "value": 1}], "'01' is not an index"),
    (
        "remove-dash",
        [{"op": "remove", "path": "/spec/list/-"}],
        "(remove /spec/list/-): nothing at /spec/list/-",
    ),
    ("remove-past-the-end", [{"op": "remove", "path": "/spec/list/3"}], "nothing at /spec/list/3"),
    ("pointer-without-slash", [{"op": "remove", "path": "spec"}], "'spec' is not a JSON pointer"),
    ("bad-escape", [{"op": "remove", "path": "/metadata/labels/t~2n"}], "has a '~' not followed by 0 or 1"),
    (
        "test-fails",
        [{"op": "test", "path": "/spec/replicas", "value": 2}],
        "json patch operation 0 (test /spec/replicas): test failed: the value is 1, not 2",
    ),
    ("test-true-is-not-1", [{"op": "test", "path": "/spec/replicas", "value": True}], "test failed"),
    ("test-string-is-not-number", [{"op": "test", "path": "/spec/replicas", "value": "1"}], "test failed"),
    ("test-missing-path", [{"op": "test", "path": "/spec/nope", "value": 1}], "nothing at /spec/nope"),
    (
        "move-into-own-child",
        [{"op": "move", "from": "/spec", "path": "/spec/inner"}],
        "cannot move /spec into its own child",
    ),
    ("remove-root", [{"op": "remove", "path": ""}], "cannot remove the whole object"),
    (
        "result-not-an-object",
        [{"op": "replace", "path": "", "value": [1]}],
        "the JSON patch leaves a list, not an object",
    ),
]


@pytest.mark.parametrize(
    ("ops", "message"), [c[1:] for c in JSON_PATCH_ERRORS], ids=[c[0] for c in JSON_PATCH_ERRORS]
)
def test_json_patch_errors_name_the_operation(ops: Any, message: str) -> None:
    before = copy.deepcopy(DOC)
    with pytest.raises(p.PatchError, match=re.escape(message)) as e:
        p.apply(p.JSON_PATCH, DOC, ops)
    assert "\n" not in str(e.value)
    assert DOC == before  # all or nothing: even the operations before the failing one left no trace


# ---------------------------------------------------------------------------------------------------
# Server-side apply (no field ownership)


def test_server_side_apply_merges_the_intended_object() -> None:
    intended = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "demo:v2"}]}}},
    }
    out = p.apply(p.APPLY_PATCH, web(), json.dumps(intended))
    assert out == changed(changed(web(), "spec.replicas", 2), CONTAINERS, [{**WEB, "image": "demo:v2"}])


def test_server_side_apply_of_an_absent_object_is_the_object() -> None:
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  creationTimestamp: 2026-01-02T03:04:05Z\ndata:\n  enabled: 'yes'\n"
    assert p.apply(p.APPLY_PATCH, {}, body) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "creationTimestamp": "2026-01-02T03:04:05Z"},
        "data": {"enabled": "yes"},
    }


# (id, body, message)
APPLY_ERRORS: list[tuple[str, bytes, str]] = [
    ("yaml-not-an-object", b"- a\n- b\n", "an apply patch must be an object, not a list"),
    ("invalid-yaml", b"a: [1\n", "the patch body is neither JSON nor YAML: "),
    ("list-key", b"? [a]\n: b\n", "the patch body is neither JSON nor YAML: "),
    ("yaml-infinity", b"a: .inf\n", '".inf" is not a finite number, which JSON requires'),
    ("yaml-binary", b"a: !!binary aGk=\n", 'the YAML tag "!!binary" is not supported'),
    ("duplicate-key", b"a: 1\na: 2\n", 'line 2: key "a" already set in map'),
]


def test_scalar_yaml_keys_become_strings_as_kubernetes_converts_them() -> None:
    assert p.apply(p.APPLY_PATCH, {}, b"1: a\ndata:\n  on: x\n") == {"1": "a", "data": {"true": "x"}}


@pytest.mark.parametrize(("body", "message"), [c[1:] for c in APPLY_ERRORS], ids=[c[0] for c in APPLY_ERRORS])
def test_server_side_apply_errors(body: bytes, message: str) -> None:
    with pytest.raises(p.PatchError, match=re.escape(message)) as e:
        p.apply(p.APPLY_PATCH, {}, body)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------------------
# Dispatch on the media type, and parsing


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/apply-patch+cbor", "application/yaml", "text/plain", ""],
    ids=["json", "apply-cbor", "yaml", "text", "empty"],
)
def test_unsupported_media_type(content_type: str) -> None:
    with pytest.raises(p.UnsupportedPatch, match="unsupported patch media type"):
        p.apply(content_type, web(), b"not even looked at")


def test_unsupported_patch_is_a_patch_error_is_a_value_error() -> None:
    with pytest.raises(p.PatchError):
        p.apply("application/json", {}, b"{}")
    with pytest.raises(ValueError):
        p.apply(p.JSON_PATCH, {}, b"{}")


@pytest.mark.parametrize(
    "content_type",
    [
        "application/merge-patch+json; charset=utf-8",
        "Application/Merge-Patch+JSON",
        " application/merge-patch+json ;q=1",
    ],
    ids=["charset", "case", "spaces"],
)
def test_media_type_parameters_and_case_are_ignored(content_type: str) -> None:
    assert p.apply(content_type, {"a": 1}, b'{"b": 2}') == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    "body",
    [b'{"spec": {"replicas": 4}}', '{"spec": {"replicas": 4}}', {"spec": {"replicas": 4}}],
    ids=["bytes", "str", "parsed"],
)
def test_body_may_be_raw_or_parsed(body: bytes | str | Obj) -> None:
    assert p.apply(SMP, {"spec": {"replicas": 1}}, body) == {"spec": {"replicas": 4}}


# (id, content type, body, message)
PARSE_ERRORS: list[tuple[str, str, bytes, str]] = [
    ("invalid-json", SMP, b"{spec: 1}", "the patch body is not valid JSON: "),
    ("yaml-is-not-json", p.MERGE_PATCH, b"spec: 1\n", "the patch body is not valid JSON: "),
    ("nan", p.JSON_PATCH, b'[{"op": "add", "path": "/a", "value": NaN}]', "NaN is not valid JSON"),
    ("not-utf8", SMP, b'{"a": "\xff"}', "the patch body is not valid UTF-8: invalid byte 0xff at offset 7"),
    ("empty-body", SMP, b"", "the patch body is not valid JSON: "),
]


@pytest.mark.parametrize(
    ("content_type", "body", "message"), [c[1:] for c in PARSE_ERRORS], ids=[c[0] for c in PARSE_ERRORS]
)
def test_malformed_bodies(content_type: str, body: bytes, message: str) -> None:
    with pytest.raises(p.PatchError, match=re.escape(message)) as e:
        p.apply(content_type, {}, body)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------------------
# The merge-key table


@pytest.mark.parametrize(
    ("holder", "field", "key"),
    [
        ("spec", "containers", "name"),
        ("containers", "ports", "containerPort"),
        ("initContainers", "ports", "containerPort"),
        ("spec", "ports", "port"),
        ("subsets", "ports", None),
        ("containers", "env", "name"),
        ("containers", "volumeMounts", "mountPath"),
        ("spec", "volumes", "name"),
        ("spec", "imagePullSecrets", "name"),
        ("spec", "hostAliases", "ip"),
        ("metadata", "ownerReferences", "uid"),
        ("status", "conditions", "type"),
        ("status", "addresses", "type"),
        ("subsets", "addresses", None),
        ("metadata", "finalizers", ""),
        ("spec", "finalizers", None),
        ("spec", "tolerations", None),
        ("spec", "taints", None),
        ("spec", "rules", None),
        ("containers", "args", None),
    ],
    ids=lambda v: str(v),
)
def test_merge_key_table(holder: str, field: str, key: str | None) -> None:
    assert p.merge_key(holder, field) == key


# ---------------------------------------------------------------------------------------------------
# Inputs are never changed, and results share nothing with them


# (id, content type, body)
EVERY_KIND: list[tuple[str, str, Any]] = [
    ("merge", p.MERGE_PATCH, {"metadata": {"labels": {"x": "1"}}, "spec": {"replicas": 2}}),
    ("strategic", SMP, STRATEGIC_CASES[0][2]),
    ("json-patch", p.JSON_PATCH, [{"op": "add", "path": "/metadata/labels/x", "value": {"deep": [1]}}]),
    ("apply", p.APPLY_PATCH, {"metadata": {"labels": {"x": "1"}}}),
]


@pytest.mark.parametrize(
    ("content_type", "body"), [c[1:] for c in EVERY_KIND], ids=[c[0] for c in EVERY_KIND]
)
def test_inputs_are_not_changed_and_results_are_independent(content_type: str, body: Any) -> None:
    current, body_before = web(), copy.deepcopy(body)
    out = p.apply(content_type, current, body)
    assert current == web() and body == body_before
    _scribble(out)
    assert current == web() and body == body_before


def _scribble(value: Any) -> None:
    """Change every map and list inside `value` in place."""
    if isinstance(value, dict):
        for v in list(value.values()):
            _scribble(v)
        value["scribbled"] = True
    elif isinstance(value, list):
        for v in value:
            _scribble(v)
        value.append("scribbled")


# ---------------------------------------------------------------------------------------------------
# Property: without lists, a strategic merge patch is a JSON merge patch

KEYS = st.sampled_from(["a", "b", "c", "spec", "metadata"])
SCALARS = st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=2)
DOCS = st.recursive(SCALARS, lambda inner: st.dictionaries(KEYS, inner, max_size=4), max_leaves=12)


# No deadline or speed check: the machine is shared, and a slow draw is not a wrong answer.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEYS, DOCS, max_size=4), st.dictionaries(KEYS, DOCS, max_size=4))
def test_strategic_equals_merge_patch_without_lists(current: Obj, patch: Obj) -> None:
    current_before, patch_before = copy.deepcopy(current), copy.deepcopy(patch)
    assert p.strategic_merge_patch(current, patch) == p.json_merge_patch(current, patch)
    assert current == current_before and patch == patch_before
