"""Request bodies: decoding and Kubernetes' fieldValidation modes."""

from __future__ import annotations

import pytest

from orchestrator.kubeapi import bodies


def deployment(**spec: object) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "demo"}]},
            },
            **spec,
        },
    }


@pytest.mark.parametrize(
    ("media", "body", "value"),
    [
        ("application/json", b'{"a": 1}', {"a": 1}),
        ("", b"[1, 2]", [1, 2]),
        ("application/yaml", b"a: 1\nb: [x]\n", {"a": 1, "b": ["x"]}),
        ("application/apply-patch+yaml", b'{"a": 1}', {"a": 1}),
    ],
    ids=["json", "no-type", "yaml", "apply-json"],
)
def test_decode(media: str, body: bytes, value: object) -> None:
    assert bodies.decode(media, body) == value


@pytest.mark.parametrize(
    ("media", "body", "error"),
    [
        ("application/json", b"{", bodies.BodyError),
        ("application/json", b"\xff", bodies.BodyError),
        ("application/yaml", b"a: [", bodies.BodyError),
        ("application/vnd.kubernetes.protobuf", b"nope", bodies.BodyError),
        ("text/html", b"<p>", bodies.UnsupportedBody),
    ],
    ids=["truncated-json", "not-utf8", "bad-yaml", "bad-protobuf", "html"],
)
def test_decode_refuses(media: str, body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        bodies.decode(media, body)


def test_decode_object_wants_an_object() -> None:
    with pytest.raises(bodies.BodyError, match="must be an object"):
        bodies.decode_object("application/json", b"[1]")


def test_strict_keeps_unknown_fields_for_validation_to_refuse() -> None:
    d = deployment(replica=3)
    assert bodies.drop_unknown_fields(d, "Strict") == (d, [])


def test_warn_drops_unknown_fields_with_a_warning_each() -> None:
    d = deployment(replica=3)
    d["spec"]["template"]["spec"]["containers"][0]["bogus"] = True
    out, warnings = bodies.drop_unknown_fields(d, "Warn")
    assert "replica" not in out["spec"]
    assert "bogus" not in out["spec"]["template"]["spec"]["containers"][0]
    assert sorted(warnings) == [
        'unknown field "spec.replica"',
        'unknown field "spec.template.spec.containers[0].bogus"',
    ]
    assert d["spec"]["replica"] == 3  # the input is untouched


def test_ignore_drops_silently() -> None:
    out, warnings = bodies.drop_unknown_fields(deployment(replica=3), "Ignore")
    assert "replica" not in out["spec"] and warnings == []


def test_a_wrong_type_is_left_for_validation() -> None:
    out, warnings = bodies.drop_unknown_fields(deployment(replicas="three"), "Warn")
    assert out["spec"]["replicas"] == "three" and warnings == []
