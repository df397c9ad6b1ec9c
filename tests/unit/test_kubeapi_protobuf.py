"""orchestrator.kubeapi.protobuf: hand-built Kubernetes protobuf bodies -> kubectl's JSON; garbage -> ProtobufError.

The bodies are written the way gogo (Kubernetes' protobuf generator) writes them: every non-pointer
field explicitly, even when empty, so the tests also pin which zero values the decoder drops.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.kubeapi.protobuf import (
    KINDS,
    MAGIC,
    MAX_DEPTH,
    SCHEMAS,
    Kind,
    ProtobufError,
    decode,
    is_protobuf,
)

# --- a tiny test-only encoder -------------------------------------------------------------------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int32/int64 travel as 10-byte two's complement
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def num(number: int, value: int) -> bytes:
    return key(number, 0) + varint(value)


def raw(number: int, payload: bytes) -> bytes:
    return key(number, 2) + varint(len(payload)) + payload


def text(number: int, value: str) -> bytes:
    return raw(number, value.encode())


def msg(number: int, *parts: bytes) -> bytes:
    return raw(number, b"".join(parts))


def entry(number: int, name: str, value: bytes) -> bytes:
    """One proto2 map entry {key=1, value=2}; `value` is an already encoded field 2."""
    return msg(number, text(1, name), value)


def labels(number: int, pairs: dict[str, str]) -> bytes:
    return b"".join(entry(number, k, text(2, v)) for k, v in pairs.items())


def envelope(api_version: str, kind: str, *object_parts: bytes, encoding: str = "") -> bytes:
    """MAGIC + runtime.Unknown{typeMeta, raw, contentEncoding, contentType}."""
    type_meta = msg(1, text(1, api_version), text(2, kind))
    return MAGIC + type_meta + msg(2, *object_parts) + text(3, encoding) + text(4, "")


def object_meta(name: str, label_pairs: dict[str, str] | None = None, *, created: int | None = None) -> bytes:
    """ObjectMeta as gogo writes it: empty strings, generation 0 and a zero creationTimestamp included."""
    timestamp = msg(8, num(1, created)) if created is not None else msg(8)
    empties = b"".join(text(n, "") for n in (2, 3, 4, 5, 6))
    return msg(1, text(1, name), empties, num(7, 0), timestamp, labels(11, label_pairs or {}))


def int_or_string(number: int, value: int | str) -> bytes:
    if isinstance(value, int):
        return msg(number, num(1, 0), num(2, value), text(3, ""))
    return msg(number, num(1, 1), num(2, 0), text(3, value))


def container_port(port: int) -> bytes:
    return msg(6, text(1, ""), num(2, 0), num(3, port), text(4, "TCP"), text(5, ""))


# --- fixtures -----------------------------------------------------------------------------------------

DEPLOYMENT = envelope(
    "apps/v1",
    "Deployment",
    object_meta("demo", {"app": "demo"}, created=1_700_000_000),
    msg(
        2,  # DeploymentSpec
        num(1, 3),
        msg(2, labels(1, {"app": "demo"})),
        msg(
            3,  # PodTemplateSpec
            object_meta("", {"app": "demo"}),
            msg(
                2,  # PodSpec
                msg(
                    2,  # Container
                    text(1, "demo"),
                    text(2, "jweissig/alpine-k8s-pod-lb-demo"),
                    text(5, ""),
                    container_port(5005),
                    msg(7, text(1, "MODE"), text(2, "demo")),
                    msg(
                        7,
                        text(1, "FROM_CM"),
                        text(2, ""),
                        msg(3, msg(3, msg(1, text(1, "cm")), text(2, "k"))),
                    ),
                    msg(
                        8,
                        entry(1, "cpu", msg(2, text(1, "500m"))),
                        entry(2, "memory", msg(2, text(1, "64Mi"))),
                    ),
                    msg(
                        11, msg(1, msg(2, text(1, "/healthz"), int_or_string(2, 5005))), num(2, 0), num(4, 5)
                    ),
                    text(13, ""),
                    num(16, 0),
                ),
                text(3, "Always"),
                num(11, 0),
            ),
        ),
        msg(4, text(1, "RollingUpdate"), msg(2, int_or_string(1, 1), int_or_string(2, "25%"))),
        num(5, 0),
        num(7, 0),
    ),
    msg(3, num(1, 0), num(2, 0), num(3, 0)),
)
DEPLOYMENT_JSON = {
    "kind": "Deployment",
    "apiVersion": "apps/v1",
    "metadata": {"name": "demo", "creationTimestamp": "2023-11-14T22:13:20Z", "labels": {"app": "demo"}},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "demo"}},
        "template": {
            "metadata": {"creationTimestamp": None, "labels": {"app": "demo"}},
            "spec": {
                "containers": [
                    {
                        "name": "demo",
                        "image": "jweissig/alpine-k8s-pod-lb-demo",
                        "ports": [{"containerPort": 5005, "protocol": "TCP"}],
                        "env": [
                            {"name": "MODE", "value": "demo"},
                            {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
                        ],
                        "resources": {"limits": {"cpu": "500m"}, "requests": {"memory": "64Mi"}},
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 5005}, "periodSeconds": 5},
                    }
                ],
                "restartPolicy": "Always",
            },
        },
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"}},
    },
    "status": {},
}

ZERO_REPLICAS = envelope(
    "apps/v1",
    "Deployment",
    object_meta("idle"),
    msg(2, num(1, 0), num(6, 0), msg(3, object_meta(""), msg(2)), msg(4, text(1, ""))),
    msg(3, num(2, 0)),
)
ZERO_REPLICAS_JSON = {
    "kind": "Deployment",
    "apiVersion": "apps/v1",
    "metadata": {"name": "idle", "creationTimestamp": None},
    # replicas and revisionHistoryLimit are *int32 in Go: present on the wire means set, so 0 stays.
    "spec": {
        "replicas": 0,
        "revisionHistoryLimit": 0,
        "template": {"metadata": {"creationTimestamp": None}, "spec": {}},
        "strategy": {},
    },
    "status": {},  # status.replicas is a plain int32 with omitempty
}


def service(target: int | str, node_port: int) -> bytes:
    # appProtocol(6) is a *string in Go: gogo leaves it out unless set.
    port = msg(1, text(1, ""), text(2, "TCP"), num(3, 80), int_or_string(4, target), num(5, node_port))
    spec = msg(
        2,
        port,
        labels(2, {"app": "web"}),
        text(3, ""),
        text(4, "NodePort"),
        text(7, ""),
        num(12, 0),
        num(13, 0),
    )
    return envelope("v1", "Service", object_meta("web", {"app": "web"}), spec, msg(3, msg(1)))


def service_json(port: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {"name": "web", "creationTimestamp": None, "labels": {"app": "web"}},
        "spec": {"ports": [port], "selector": {"app": "web"}, "type": "NodePort"},
        "status": {"loadBalancer": {}},
    }


CONFIGMAP = envelope(
    "v1",
    "ConfigMap",
    object_meta("c"),
    entry(2, "a", text(2, "1")),
    entry(2, "b", text(2, "two")),
    entry(3, "bin", raw(2, b"\x00\xff")),
)
CONFIGMAP_JSON = {
    "kind": "ConfigMap",
    "apiVersion": "v1",
    "metadata": {"name": "c", "creationTimestamp": None},
    "data": {"a": "1", "b": "two"},
    "binaryData": {"bin": "AP8="},
}

NAMESPACE = envelope(
    "v1", "Namespace", object_meta("team-a"), msg(2, text(1, "kubernetes")), msg(3, text(1, ""))
)
NAMESPACE_JSON = {
    "kind": "Namespace",
    "apiVersion": "v1",
    "metadata": {"name": "team-a", "creationTimestamp": None},
    "spec": {"finalizers": ["kubernetes"]},
    "status": {},
}

# kubectl create ingress web --class=nginx --rule="example.com/app*=web:80,tls=example-tls"
INGRESS = envelope(
    "networking.k8s.io/v1",
    "Ingress",
    object_meta("web"),
    msg(
        2,
        msg(2, text(1, "example.com"), text(2, "example-tls")),
        msg(
            3,  # IngressRule, whose IngressRuleValue(2) is embedded in Go
            text(1, "example.com"),
            msg(
                2,
                msg(
                    1,
                    msg(
                        1,
                        text(1, "/app"),
                        msg(2, msg(4, text(1, "web"), msg(2, text(1, ""), num(2, 80)))),
                        text(3, "Prefix"),
                    ),
                ),
            ),
        ),
        text(4, "nginx"),
    ),
    msg(3, msg(1)),
)
INGRESS_JSON = {
    "kind": "Ingress",
    "apiVersion": "networking.k8s.io/v1",
    "metadata": {"name": "web", "creationTimestamp": None},
    "spec": {
        "tls": [{"hosts": ["example.com"], "secretName": "example-tls"}],
        "rules": [
            {
                "host": "example.com",
                "http": {
                    "paths": [
                        {
                            "path": "/app",
                            "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            "pathType": "Prefix",
                        }
                    ]
                },
            }
        ],
        "ingressClassName": "nginx",
    },
    "status": {"loadBalancer": {}},
}

POD = envelope(
    "v1",
    "Pod",
    object_meta("demo-1"),
    msg(2, msg(2, text(1, "demo"), text(2, "demo:1"))),
    msg(
        3,
        text(1, "Failed"),
        msg(
            8,
            text(1, "demo"),
            msg(2, msg(3, num(1, -1), num(2, 0), text(3, "Error"), msg(5, num(1, 0)))),
            num(4, 0),
            num(5, 2),
        ),
    ),
)
POD_JSON = {
    "kind": "Pod",
    "apiVersion": "v1",
    "metadata": {"name": "demo-1", "creationTimestamp": None},
    "spec": {"containers": [{"name": "demo", "image": "demo:1"}]},
    "status": {
        "phase": "Failed",
        "containerStatuses": [
            {
                "name": "demo",
                "state": {
                    "terminated": {"exitCode": -1, "reason": "Error", "startedAt": "1970-01-01T00:00:00Z"}
                },
                "ready": False,  # no omitempty on ContainerStatus.ready
                "restartCount": 2,
            }
        ],
    },
}

EVENT = envelope(
    "v1",
    "Event",
    object_meta("demo.1"),
    msg(2, text(1, "Pod"), text(3, "demo-1")),
    text(3, "Started"),
    msg(6, num(1, -62_135_596_800)),  # Go's zero time, written as a non-empty Timestamp
    msg(10, num(1, 1_700_000_000), num(2, 123_456_789)),
    text(14, ""),
)
EVENT_JSON = {
    "kind": "Event",
    "apiVersion": "v1",
    "metadata": {"name": "demo.1", "creationTimestamp": None},
    "involvedObject": {"kind": "Pod", "name": "demo-1"},
    "reason": "Started",
    "firstTimestamp": None,
    "eventTime": "2023-11-14T22:13:20.123456Z",
    "reportingComponent": "",  # no omitempty
}

# Unknown field numbers of every skippable wire type, and a name written twice (the last one wins).
UNKNOWN_FIELDS = envelope(
    "v1",
    "Namespace",
    msg(
        1,
        text(1, "old"),
        num(99, 7),
        key(98, 1) + bytes(8),
        raw(97, b"\xff\xfe"),
        key(96, 5) + bytes(4),
        text(1, "team-b"),
    ),
    msg(50, text(1, "from a future API version")),
    num(51, 1),
)
UNKNOWN_FIELDS_JSON = {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "team-b"}}

DECODE_CASES = [
    ("deployment", DEPLOYMENT, DEPLOYMENT_JSON),
    ("deployment-zero-replicas-kept", ZERO_REPLICAS, ZERO_REPLICAS_JSON),
    (
        "service-int-target-port-and-node-port",
        service(8080, 30080),
        service_json({"protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080}),
    ),
    (
        "service-named-target-port",
        service("http", 0),
        service_json({"protocol": "TCP", "port": 80, "targetPort": "http"}),
    ),
    ("configmap-data-and-binary-data", CONFIGMAP, CONFIGMAP_JSON),
    ("namespace", NAMESPACE, NAMESPACE_JSON),
    ("ingress", INGRESS, INGRESS_JSON),
    ("pod-negative-int32-and-epoch-time", POD, POD_JSON),
    ("event-micro-time-and-zero-time", EVENT, EVENT_JSON),
    ("unknown-fields-skipped", UNKNOWN_FIELDS, UNKNOWN_FIELDS_JSON),
]


@pytest.mark.parametrize(("body", "want"), [c[1:] for c in DECODE_CASES], ids=[c[0] for c in DECODE_CASES])
def test_decode(body: bytes, want: dict[str, Any]) -> None:
    assert decode(body) == want


ERROR_CASES = [
    ("bad-magic-json-body", b'{"kind":"Deployment"}', "missing the k8s\\x00 magic"),
    ("empty-body", b"", "missing the k8s\\x00 magic"),
    ("magic-only-no-kind", MAGIC, "unsupported kind ''"),
    ("truncated-varint-in-envelope", MAGIC + b"\x0a\xff", "truncated varint"),
    (
        "truncated-varint-in-object",
        envelope("apps/v1", "Deployment", msg(2, key(1, 0) + b"\x80")),
        "truncated varint",
    ),
    ("varint-longer-than-10-bytes", MAGIC + b"\x08" + b"\xff" * 10 + b"\x01", "varint longer than 10 bytes"),
    ("length-past-the-end", MAGIC + b"\x12\x10abc", "field 2: length 16 runs past the end (3 bytes left)"),
    ("truncated-fixed32", envelope("v1", "Namespace", key(9, 5) + b"\x01\x02"), "truncated fixed32"),
    ("group-wire-type", envelope("v1", "Namespace", key(9, 3)), "unsupported wire type 3"),
    ("field-number-zero", envelope("v1", "Namespace", b"\x00\x01"), "invalid field number 0"),
    (
        "wrong-wire-type-for-known-field",
        envelope("v1", "Namespace", msg(1, num(1, 5))),
        "meta.v1.ObjectMeta.1: wire type 0, want 2",
    ),
    (
        "unsupported-kind",
        envelope("v1", "Secret", object_meta("s")),
        "unsupported kind 'Secret' in apiVersion 'v1'",
    ),
    (
        "wrong-group-for-kind",
        envelope("extensions/v1beta1", "Ingress", object_meta("i")),
        "unsupported kind 'Ingress'",
    ),
    (
        "int-or-string-bad-type",
        envelope("apps/v1", "Deployment", msg(2, msg(4, msg(2, msg(1, num(1, 2)))))),
        "IntOrString type 2",
    ),
    (
        "compressed-payload",
        envelope("v1", "Namespace", object_meta("n"), encoding="gzip"),
        "unsupported contentEncoding 'gzip'",
    ),
]


@pytest.mark.parametrize(("body", "message"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_decode_rejects(body: bytes, message: str) -> None:
    with pytest.raises(ProtobufError) as caught:
        decode(body)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


# DEPLOYMENT's deepest path: Deployment 1, spec 2, template 3, PodSpec 4, containers 5, env 6,
# valueFrom 7, configMapKeyRef 8, its embedded LocalObjectReference 9.
@pytest.mark.parametrize(
    ("max_depth", "ok"),
    [(MAX_DEPTH, True), (9, True), (8, False), (1, False)],
    ids=["default", "9-fits", "8-too-deep", "1"],
)
def test_nesting_limit(max_depth: int, ok: bool) -> None:
    if ok:
        assert decode(DEPLOYMENT, max_depth=max_depth) == DEPLOYMENT_JSON
    else:
        with pytest.raises(ProtobufError, match=f"nested deeper than {max_depth} levels"):
            decode(DEPLOYMENT, max_depth=max_depth)


VALID_BODIES = [c[1] for c in DECODE_CASES]


@pytest.mark.parametrize("body", VALID_BODIES, ids=[c[0] for c in DECODE_CASES])
def test_every_truncation_decodes_or_raises_protobuf_error(body: bytes) -> None:
    failures = 0
    for end in range(len(body)):
        try:
            assert isinstance(decode(body[:end]), dict)
        except ProtobufError:
            failures += 1
    assert failures > 0  # the cut inside the envelope's raw field can never parse


@given(st.binary(max_size=300))
def test_garbage_after_magic_raises_only_protobuf_error(tail: bytes) -> None:
    try:
        assert isinstance(decode(MAGIC + tail), dict)
    except ProtobufError:
        pass


@given(st.sampled_from(VALID_BODIES), st.data())
def test_corrupted_bytes_raise_only_protobuf_error(body: bytes, data: st.DataObject) -> None:
    index = data.draw(st.integers(len(MAGIC), len(body) - 1))
    corrupted = body[:index] + bytes([data.draw(st.integers(0, 255))]) + body[index + 1 :]
    try:
        assert isinstance(decode(corrupted), dict)
    except ProtobufError:
        pass


@pytest.mark.parametrize(
    ("content_type", "want"),
    [
        ("application/vnd.kubernetes.protobuf", True),
        ("application/vnd.kubernetes.protobuf; charset=utf-8", True),
        ("Application/VND.Kubernetes.Protobuf", True),
        ("application/json", False),
        ("application/vnd.kubernetes.protobuf+json", False),
        ("", False),
    ],
    ids=["plain", "with-parameter", "case-insensitive", "json", "other-suffix", "empty"],
)
def test_is_protobuf(content_type: str, want: bool) -> None:
    assert is_protobuf(content_type) is want


def test_every_schema_reference_resolves() -> None:
    problems = [
        f"{schema}.{number}"
        for schema, fields in SCHEMAS.items()
        for number, field in fields.items()
        if number <= 0
        or (field.kind is Kind.MESSAGE and field.message not in SCHEMAS)
        or (field.kind is Kind.MAP) != (field.value is not None)
        or (field.name is None and (field.kind is not Kind.MESSAGE or field.repeated))
    ]
    problems += [f"{kind} -> {schema}" for kind, schema in KINDS.items() if schema not in SCHEMAS]
    assert problems == []
