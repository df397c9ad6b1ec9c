"""Kubernetes Status objects for Skiff's errors: codes, reasons, messages and details as apimachinery's."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator import errors, model
from orchestrator.kubeapi import status
from orchestrator.store import state

CONFLICT_TAIL = "the object has been modified; please apply your changes to the latest version and try again"
DEPLOY = {"kind_plural": "deployments", "group": "apps", "name": "demo"}


def _deployment(**spec: Any) -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "demo"},
        "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": template, **spec},
    }


def _pod(**container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i", **container}]},
    }


def validation_message(obj: dict[str, Any]) -> str:
    with pytest.raises(model.ValidationError) as e:
        model.validate(obj)
    return str(e.value)


@pytest.mark.parametrize(
    ("error", "kwargs", "code", "reason", "message", "details"),
    [
        (
            errors.NotFound('deployments.apps "demo" not found'),
            DEPLOY,
            404,
            "NotFound",
            'deployments.apps "demo" not found',
            {"name": "demo", "group": "apps", "kind": "deployments"},
        ),
        (
            errors.NotFound(state.not_found("Ingress", "web")[2]),
            {"kind_plural": "ingresses", "group": "networking.k8s.io", "name": "web"},
            404,
            "NotFound",
            'ingresses.networking.k8s.io "web" not found',
            {"name": "web", "group": "networking.k8s.io", "kind": "ingresses"},
        ),
        (
            errors.NotFound('deployments "demo" not found'),  # the writer's unqualified form
            DEPLOY,
            404,
            "NotFound",
            'deployments.apps "demo" not found',
            {"name": "demo", "group": "apps", "kind": "deployments"},
        ),
        (
            errors.NotFound('pods "web-1" not found'),
            {"kind_plural": "pods", "group": None, "name": "web-1"},
            404,
            "NotFound",
            'pods "web-1" not found',
            {"name": "web-1", "kind": "pods"},
        ),
        (errors.NotFound("no such thing"), {}, 404, "NotFound", "no such thing", None),
        (errors.NotFound(), {}, 404, "NotFound", "the server could not find the requested resource", None),
        (
            errors.AlreadyExists('deployments.apps "demo" already exists'),
            DEPLOY,
            409,
            "AlreadyExists",
            'deployments.apps "demo" already exists',
            {"name": "demo", "group": "apps", "kind": "deployments"},
        ),
        (
            errors.AlreadyExists("could not generate a unique name"),
            {"kind_plural": "pods"},
            409,
            "AlreadyExists",
            "could not generate a unique name",
            {"kind": "pods"},
        ),
        (
            errors.Conflict(f'Operation cannot be fulfilled on deployments.apps "demo": {CONFLICT_TAIL}'),
            DEPLOY,
            409,
            "Conflict",
            f'Operation cannot be fulfilled on deployments.apps "demo": {CONFLICT_TAIL}',
            {"name": "demo", "group": "apps", "kind": "deployments"},
        ),
        (
            errors.Conflict(),
            DEPLOY,
            409,
            "Conflict",
            f'Operation cannot be fulfilled on deployments.apps "demo": {CONFLICT_TAIL}',
            {"name": "demo", "group": "apps", "kind": "deployments"},
        ),
        (
            errors.Precondition("UID in precondition: 1, UID in object meta: 2"),
            DEPLOY,
            409,
            "Conflict",
            'Operation cannot be fulfilled on deployments.apps "demo": UID in precondition: 1, UID in object meta: 2',
            {"name": "demo", "group": "apps", "kind": "deployments"},
        ),
        (
            errors.Fenced("leader lease ('m1', 3) is no longer held"),
            {},
            409,
            "Conflict",
            "leader lease ('m1', 3) is no longer held",
            None,
        ),
        (
            errors.Unavailable("write not committed in time (no quorum?); retry"),
            DEPLOY,
            503,
            "ServiceUnavailable",
            "write not committed in time (no quorum?); retry",
            None,
        ),
        (
            errors.RevisionAhead("Too large resource version: 99, current: 7"),
            {"kind_plural": "configmaps"},
            504,
            "Timeout",
            "Timeout: Too large resource version: 99, current: 7",
            {
                "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                "retryAfterSeconds": 1,
            },
        ),
        (
            errors.TooManyRequests("too many requests: 32 writes in flight and 64 queued; retry after 2s", 2),
            DEPLOY,
            429,
            "TooManyRequests",
            "too many requests: 32 writes in flight and 64 queued; retry after 2s",
            {"retryAfterSeconds": 2},
        ),
        (
            errors.TooLarge("the object is 3145999 bytes; the limit is 3145728 bytes (3 MiB)"),
            DEPLOY,
            413,
            "RequestEntityTooLarge",
            "Request entity too large: the object is 3145999 bytes; the limit is 3145728 bytes (3 MiB)",
            None,
        ),
        (
            errors.Unauthenticated("invalid bearer token"),
            {},
            401,
            "Unauthorized",
            "invalid bearer token",
            None,
        ),
        (errors.Unauthenticated(), {}, 401, "Unauthorized", "Unauthorized", None),
        (
            errors.PermissionDenied('role "viewer" may not write'),
            DEPLOY,
            403,
            "Forbidden",
            'deployments.apps "demo" is forbidden: role "viewer" may not write',
            {"name": "demo", "group": "apps", "kind": "deployments"},
        ),
        (
            errors.PermissionDenied('role "viewer" may not write'),
            {"kind_plural": "pods"},
            403,
            "Forbidden",
            'pods is forbidden: role "viewer" may not write',
            {"kind": "pods"},
        ),
        (
            errors.PermissionDenied('role "viewer" may not write'),
            {},
            403,
            "Forbidden",
            'forbidden: role "viewer" may not write',
            None,
        ),
        (
            errors.TooOld("too old resource version: 5 (the oldest available is 9)"),
            {"kind_plural": "pods"},
            410,
            "Expired",
            "too old resource version: 5 (the oldest available is 9)",
            None,
        ),
        (
            json.JSONDecodeError("Expecting value", "{", 1),
            {},
            400,
            "BadRequest",
            "the body of the request could not be decoded as JSON: Expecting value: line 1 column 2 (char 1)",
            None,
        ),
        (
            RuntimeError("boom"),
            {},
            500,
            "InternalError",
            "Internal error occurred: boom",
            {"causes": [{"message": "boom"}]},
        ),
        (
            errors.SkiffError("odd"),
            {},
            500,
            "InternalError",
            "Internal error occurred: odd",
            {"causes": [{"message": "odd"}]},
        ),
    ],
    ids=[
        "not-found-store-form-not-doubled",
        "not-found-state-helper",
        "not-found-qualified-from-request",
        "not-found-core",
        "not-found-without-resource",
        "not-found-empty",
        "already-exists",
        "already-exists-without-name",
        "conflict-store-form-not-doubled",
        "conflict-empty",
        "precondition-is-conflict",
        "fenced-is-conflict",
        "unavailable",
        "revision-ahead",
        "too-many-requests",
        "too-large",
        "unauthenticated",
        "unauthenticated-empty",
        "forbidden-named",
        "forbidden-collection",
        "forbidden-bare",
        "too-old-is-expired",
        "malformed-json",
        "other-exception",
        "base-skiff-error",
    ],
)
def test_status_for(
    error: Exception,
    kwargs: dict[str, Any],
    code: int,
    reason: str,
    message: str,
    details: dict[str, Any] | None,
) -> None:
    got_code, body = status.status_for(error, **kwargs)
    assert got_code == code == body["code"]
    assert (body["kind"], body["apiVersion"], body["metadata"], body["status"]) == (
        "Status",
        "v1",
        {},
        "Failure",
    )
    assert (body["reason"], body["message"]) == (reason, message)
    assert body.get("details") == details


@pytest.mark.parametrize(
    ("message", "cause"),
    [
        (
            validation_message(_deployment(replicas=-1)),
            {
                "reason": "FieldValueInvalid",
                "field": "spec.replicas",
                "message": "Invalid value: -1: must be greater than or equal to 0",
            },
        ),
        (
            validation_message({**_pod(), "metadata": {}}),
            {
                "reason": "FieldValueRequired",
                "field": "metadata.name",
                "message": "Required value: name or generateName is required",
            },
        ),
        (
            validation_message(
                {**_pod(), "spec": {"containers": [{"name": "c", "image": "i"}], "restartPolicy": "Q"}}
            ),
            {
                "reason": "FieldValueNotSupported",
                "field": "spec.restartPolicy",
                "message": 'Unsupported value: "Q": supported values: "Always", "OnFailure", "Never"',
            },
        ),
        (
            validation_message(
                {**_pod(), "spec": {"containers": [{"name": "c", "image": "i"}, {"name": "c", "image": "i"}]}}
            ),
            {
                "reason": "FieldValueDuplicate",
                "field": "spec.containers[1].name",
                "message": 'Duplicate value: "c"',
            },
        ),
        (
            validation_message(_pod(ports=[{"containerPort": 70000}])),
            {
                "reason": "FieldValueInvalid",
                "field": "spec.containers[0].ports[0].containerPort",
                "message": "Invalid value: 70000: must be between 1 and 65535, inclusive",
            },
        ),
        (
            validation_message(_pod(resources={"limits": {"cpu": "zz"}})),
            {
                "reason": "FieldValueInvalid",
                "field": "spec.containers[0].resources.limits[cpu]",
                "message": 'Invalid value: "zz": quantities must match the regular expression '
                "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            },
        ),
        (
            validation_message(_deployment(replica=3)),
            {"reason": "FieldValueInvalid", "field": "spec.replica", "message": 'unknown field "replica"'},
        ),
        (
            validation_message({**_pod(), "foo": 1}),
            {"reason": "FieldValueInvalid", "field": "foo", "message": 'unknown field "foo"'},
        ),
        (
            validation_message({**_pod(), "metadata": {"name": "p", "bar": 2}}),
            {"reason": "FieldValueInvalid", "field": "metadata.bar", "message": 'unknown field "bar"'},
        ),
        (
            validation_message(_deployment(replicas="abc")),
            {
                "reason": "FieldValueTypeInvalid",
                "field": "spec.replicas",
                "message": "invalid literal for int() with base 10: 'abc'",
            },
        ),
        (
            validation_message(_deployment(replicas=1.5)),
            {
                "reason": "FieldValueTypeInvalid",
                "field": "spec.replicas",
                "message": "Couldn't parse integer: 1.5",
            },
        ),
        (
            validation_message(_pod(env={"a": 1})),
            {
                "reason": "FieldValueTypeInvalid",
                "field": "spec.containers[0].env",
                "message": "repeated field env must be in [] which is {'a': 1}",
            },
        ),
        (
            validation_message(_pod(ports=[{"containerPort": "80x"}])),
            {
                "reason": "FieldValueTypeInvalid",
                "field": "spec.containers.ports.containerPort",
                "message": "invalid literal for int() with base 10: '80x'",
            },
        ),
        (
            validation_message({"apiVersion": "v2", "kind": "Pod", "metadata": {"name": "p"}}),
            {
                "reason": "FieldValueInvalid",
                "field": "apiVersion",
                "message": 'no kind "Pod" is registered for version "v2" (use v1)',
            },
        ),
        (
            validation_message(
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "Ingress",
                    "metadata": {"name": "i"},
                    "spec": {},
                }
            ),
            {
                "reason": "FieldValueRequired",
                "field": "spec",
                "message": "Required value: either `defaultBackend` or `rules` must be specified",
            },
        ),
        (
            "spec.nodeName: a bound pod cannot move to another node",
            {
                "reason": "FieldValueInvalid",
                "field": "spec.nodeName",
                "message": "a bound pod cannot move to another node",
            },
        ),
        ("object must be a JSON object", None),
        ("malformed patch command: KeyError('kind')", None),
        ("", None),
    ],
    ids=[
        "range",
        "required",
        "not-supported",
        "duplicate",
        "indexed-path",
        "quantity",
        "unknown-spec-field",
        "unknown-top-level-field",
        "unknown-metadata-field",
        "type-int",
        "type-float",
        "type-repeated-with-index",
        "type-nested-without-index",
        "api-version",
        "whole-spec",
        "store-message",
        "no-field",
        "no-field-with-colon",
        "empty",
    ],
)
def test_cause_of(message: str, cause: dict[str, str] | None) -> None:
    assert status.cause_of(message) == cause


def test_invalid_in_kubernetes_form() -> None:
    err = errors.Invalid(validation_message(_deployment(replicas=-1)))
    code, body = status.status_for(err, **DEPLOY)
    assert (code, body["reason"]) == (422, "Invalid")
    assert (
        body["message"]
        == 'Deployment.apps "demo" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0'
    )
    assert body["details"] == {
        "name": "demo",
        "group": "apps",
        "kind": "Deployment",  # NewInvalid names the Kind, kubectl prints 'The Deployment "demo" is invalid'
        "causes": [
            {
                "reason": "FieldValueInvalid",
                "message": "Invalid value: -1: must be greater than or equal to 0",
                "field": "spec.replicas",
            }
        ],
    }


@pytest.mark.parametrize(
    ("kwargs", "message", "details"),
    [
        (
            {"kind_plural": "pods", "name": "p"},
            'Pod "p" is invalid: metadata.name: required value',
            {"name": "p", "kind": "Pod"},
        ),
        ({"kind_plural": "pods"}, 'Pod "" is invalid: metadata.name: required value', {"kind": "Pod"}),
        ({}, "metadata.name: required value", {}),
        ({"kind_plural": "widgets", "name": "w"}, "metadata.name: required value", {"name": "w"}),
    ],
    ids=["core-kind", "without-name", "without-resource", "unknown-resource"],
)
def test_invalid_forms(kwargs: dict[str, Any], message: str, details: dict[str, Any]) -> None:
    code, body = status.status_for(model.ValidationError("metadata.name: required value"), **kwargs)
    assert code == 422
    assert body["message"] == message
    causes = [{"reason": "FieldValueRequired", "message": "required value", "field": "metadata.name"}]
    assert body["details"] == {**details, "causes": causes}


def test_invalid_without_a_field_is_a_bad_request() -> None:
    assert status.status_for(errors.Invalid("patch must be a JSON object"), **DEPLOY) == status.bad_request(
        "patch must be a JSON object"
    )


@pytest.mark.parametrize(
    ("answer", "code", "reason", "message", "details"),
    [
        (status.bad_request("no body"), 400, "BadRequest", "no body", None),
        (status.path_not_found(), 404, "NotFound", "the server could not find the requested resource", None),
        (
            status.method_not_allowed("delete", kind_plural="nodes"),
            405,
            "MethodNotAllowed",
            'delete is not supported on resources of kind "nodes"',
            {"kind": "nodes"},
        ),
        (
            status.method_not_allowed("update", kind_plural="deployments", group="apps"),
            405,
            "MethodNotAllowed",
            'update is not supported on resources of kind "deployments.apps"',
            {"group": "apps", "kind": "deployments"},
        ),
        (
            status.method_not_allowed("PUT"),
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            None,
        ),
        (
            status.not_acceptable(["application/json", "application/yaml"]),
            406,
            "NotAcceptable",
            "only the following media types are accepted: application/json, application/yaml",
            None,
        ),
        (
            status.too_large("limit is 3145728"),
            413,
            "RequestEntityTooLarge",
            "Request entity too large: limit is 3145728",
            None,
        ),
        (
            status.unsupported_media_type(["application/json", "application/merge-patch+json"]),
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json, application/merge-patch+json",
            None,
        ),
    ],
    ids=[
        "bad-request",
        "path-not-found",
        "method-core",
        "method-group",
        "method-generic",
        "not-acceptable",
        "too-large",
        "unsupported-media",
    ],
)
def test_request_level_errors(
    answer: tuple[int, dict[str, Any]], code: int, reason: str, message: str, details: dict[str, Any] | None
) -> None:
    got, body = answer
    assert got == code == body["code"]
    assert (body["kind"], body["status"], body["reason"], body["message"]) == (
        "Status",
        "Failure",
        reason,
        message,
    )
    assert body.get("details") == details


def test_status_is_json() -> None:
    _, body = status.status_for(errors.Invalid(validation_message(_deployment(replica=3))), **DEPLOY)
    assert json.loads(json.dumps(body)) == body
