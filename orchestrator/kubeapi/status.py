"""Kubernetes `Status` objects: the one mapping from Skiff's errors to HTTP codes and reasons.

Every error the Kubernetes REST API answers is a `Status` with the HTTP code, built here so an error
means the same thing on every endpoint. The codes, reasons, details and message forms are those of
Kubernetes' apimachinery `pkg/api/errors` (NewNotFound, NewAlreadyExists, NewConflict, NewInvalid,
NewForbidden, NewResourceExpired, ...); kubectl prints them as `Error from server (<reason>):
<message>`, and an Invalid one as `The <Kind> "<name>" is invalid: <field>: <message>`.

| Skiff error                    | code | reason             |
|--------------------------------|------|--------------------|
| NotFound                       | 404  | NotFound           |
| AlreadyExists                  | 409  | AlreadyExists      |
| Conflict                       | 409  | Conflict           |
| Precondition, Fenced           | 409  | Conflict (as Kubernetes answers a failed precondition) |
| TooLarge                       | 413  | RequestEntityTooLarge |
| Invalid, model.ValidationError | 422  | Invalid, with details.causes; 400 BadRequest when the message names no field |
| TooManyRequests                | 429  | TooManyRequests, with details.retryAfterSeconds (and Retry-After) |
| RevisionAhead                  | 504  | Timeout, cause ResourceVersionTooLarge ("Too large resource version") |
| Unavailable                    | 503  | ServiceUnavailable |
| Unauthenticated                | 401  | Unauthorized       |
| PermissionDenied               | 403  | Forbidden          |
| TooOld                         | 410  | Expired            |
| json.JSONDecodeError           | 400  | BadRequest         |
| anything else                  | 500  | InternalError      |

Pure: plain functions from an error and what the request addressed to (code, Status dict).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from orchestrator import errors, model
from orchestrator.kubeapi import resources

Doc = dict[str, Any]

DEFAULT_CONFLICT = (
    "the object has been modified; please apply your changes to the latest version and try again"
)
PATH_NOT_FOUND = "the server could not find the requested resource"


# ---------------------------------------------------------------- building blocks


def failure(code: int, reason: str, message: str, details: Doc | None = None) -> tuple[int, Doc]:
    """(code, a Status with status "Failure"); empty details are left out, as Kubernetes does."""
    status: Doc = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details:
        status["details"] = details
    status["code"] = code
    return code, status


def _details(kind: str | None, group: str | None, name: str | None, **more: Any) -> Doc:
    """StatusDetails with Go's omitempty: unset or empty fields are absent."""
    pairs = {"name": name, "group": group, "kind": kind, **more}
    return {k: v for k, v in pairs.items() if v}


def _qualified(kind_plural: str | None, group: str | None) -> str | None:
    """'deployments' + 'apps' -> 'deployments.apps'; core resources stay bare ('pods')."""
    if not kind_plural:
        return None
    return f"{kind_plural}.{group}" if group else kind_plural


# ---------------------------------------------------------------- field causes of Invalid

# "spec.containers[0].name: duplicate value" -> field, rest. A field path has no spaces.
_FIELD_FIRST = re.compile(
    r"^([A-Za-z$][\w$-]*(?:\[[^\]\s]+\])*(?:\.[A-Za-z$][\w$-]*(?:\[[^\]\s]+\])*)*): (.+)$", re.S
)
# protobuf's ParseDict: "Failed to parse spec field: Failed to parse replicas field: <detail>".
_PARSE_PREFIX = re.compile(r"^Failed to parse (\w+) field: ")
_UNKNOWN_FIELD = re.compile(r'^Message type "[\w.]+" has no field named "(\w+)"')
# ParseDict's location suffix: ' at "Deployment.spec"' or ' at Pod.spec.containers[0]'.
_AT_SUFFIX = re.compile(r' at "?([A-Z]\w*((?:\.\w+(?:\[\d+\])*)*))"?$')


def _names(components: Iterable[str]) -> list[str]:
    return [c.split("[", 1)[0] for c in components]


def _join(location: list[str], chain: list[str]) -> list[str]:
    """The fullest path from ParseDict's field chain and its `at` location (which carries indexes)."""
    at_names, n = _names(location), len(location)
    if location and at_names[: len(chain)] == chain:
        return location
    if location and chain[:n] == at_names:
        return location + chain[n:]
    return chain


def _reason_of(message: str) -> str:
    text = message.lower()
    if "required value" in text or "required field" in text:
        return "FieldValueRequired"
    if "unsupported value" in text:
        return "FieldValueNotSupported"
    if "duplicate value" in text:
        return "FieldValueDuplicate"
    return "FieldValueInvalid"


def cause_of(message: str) -> Doc | None:
    """A StatusCause {reason, message, field} from one of our validation messages, or None when the
    message names no field.

    Two forms: orchestrator.validation's, Kubernetes' own field.Error form ("spec.replicas: Invalid
    value: -1: must be greater than or equal to 0"; the cause's message is what follows the field), and
    protobuf ParseDict's, whose field comes from its chain of "Failed to parse X field:" prefixes
    and its " at Kind.path" suffix. A ParseDict type error is FieldValueTypeInvalid; an unknown field
    is FieldValueInvalid with message 'unknown field "<name>"'.
    """
    chain: list[str] = []
    rest = message.strip()
    while m := _PARSE_PREFIX.match(rest):
        chain.append(m.group(1))
        rest = rest[m.end() :]
    unknown = _UNKNOWN_FIELD.match(rest)
    if chain or unknown:
        location: list[str] = []
        if at := _AT_SUFFIX.search(rest):
            location = [c for c in at.group(2).split(".") if c]
            rest = rest[: at.start()]
        path = _join(location, chain)
        if unknown:
            return {
                "reason": "FieldValueInvalid",
                "message": f'unknown field "{unknown.group(1)}"',
                "field": ".".join([*path, unknown.group(1)]),
            }
        return {"reason": "FieldValueTypeInvalid", "message": rest, "field": ".".join(path)}
    m = _FIELD_FIRST.match(rest)
    if m is None:
        return None
    field, body = m.group(1), m.group(2)
    return {"reason": _reason_of(body), "message": body, "field": field}


def _kind_of(kind_plural: str | None, group: str | None) -> str | None:
    if not kind_plural:
        return None
    r = resources.for_group_resource(group or "", kind_plural)
    return r.kind if r else None


def invalid(
    message: str, *, kind_plural: str | None = None, group: str | None = None, name: str | None = None
) -> tuple[int, Doc]:
    """422 Invalid for a validation message naming a field; 400 BadRequest for one that names none.

    Kubernetes' form: message 'Deployment.apps "demo" is invalid: spec.replicas: <detail>', details
    {name, group, kind: the Kind (not the plural), causes: [{reason, message, field}]}. Without a known
    kind the message is ours unchanged.
    """
    cause = cause_of(message)
    if cause is None:
        # kubectl prints an Invalid without causes as 'The Kind "name" is invalid', losing the message;
        # a message with no field is a malformed request to Kubernetes anyway.
        return bad_request(message)
    kind = _kind_of(kind_plural, group)
    text = message
    if kind:
        group_kind = f"{kind}.{group}" if group else kind
        text = f'{group_kind} "{name or ""}" is invalid: {cause["field"]}: {cause["message"]}'
    return failure(422, "Invalid", text, _details(kind, group, name, causes=[cause]))


# ---------------------------------------------------------------- the mapping


def _resource_message(
    message: str, kind_plural: str | None, group: str | None, name: str | None, verb: str
) -> str:
    """'<qualified> "<name>" <verb>' when the request named both, else our message unchanged."""
    qualified = _qualified(kind_plural, group)
    if qualified and name:
        return f'{qualified} "{name}" {verb}'
    return message


def status_for(
    error: Exception, *, kind_plural: str | None = None, group: str | None = None, name: str | None = None
) -> tuple[int, Doc]:
    """(HTTP code, Status) for an error raised while serving a request on `kind_plural` in `group`
    (None or "" for the core group) and, for a single object, `name`.

    With `kind_plural` and `name`, NotFound and AlreadyExists messages are rebuilt in Kubernetes'
    form ('deployments.apps "demo" not found'), so a store message already in that form is not doubled;
    a Conflict or Precondition message is prefixed 'Operation cannot be fulfilled on ...' unless it
    already is. Without them our message is kept.
    """
    msg = str(error)
    details = _details(kind_plural, group, name)
    qualified = _qualified(kind_plural, group)
    if isinstance(error, errors.NotFound):
        return failure(
            404,
            "NotFound",
            _resource_message(msg or PATH_NOT_FOUND, kind_plural, group, name, "not found"),
            details,
        )
    if isinstance(error, errors.AlreadyExists):
        return failure(
            409, "AlreadyExists", _resource_message(msg, kind_plural, group, name, "already exists"), details
        )
    if isinstance(error, errors.Conflict | errors.Precondition):
        if qualified and name and not msg.startswith("Operation cannot be fulfilled on "):
            msg = f'Operation cannot be fulfilled on {qualified} "{name}": {msg or DEFAULT_CONFLICT}'
        return failure(409, "Conflict", msg or DEFAULT_CONFLICT, details)
    if isinstance(error, errors.TooLarge):
        return too_large(msg)
    if isinstance(error, errors.TooManyRequests):
        # NewTooManyRequests: the client waits retryAfterSeconds (client-go honours Retry-After).
        return failure(429, "TooManyRequests", msg, {"retryAfterSeconds": error.retry_after})
    if isinstance(error, errors.Invalid | model.ValidationError):
        return invalid(msg, kind_plural=kind_plural, group=group, name=name)
    if isinstance(error, errors.RevisionAhead):
        # NewTooLargeResourceVersionError: a Timeout with the cause client-go looks for.
        cause = {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
        return failure(504, "Timeout", f"Timeout: {msg}", {"causes": [cause], "retryAfterSeconds": 1})
    if isinstance(error, errors.Unavailable):
        return failure(
            503, "ServiceUnavailable", msg or "the server is currently unable to handle the request"
        )
    if isinstance(error, errors.Unauthenticated):
        return failure(401, "Unauthorized", msg or "Unauthorized")
    if isinstance(error, errors.PermissionDenied):
        return failure(403, "Forbidden", _forbidden_message(msg, qualified, name), details)
    if isinstance(error, errors.TooOld):
        # NewResourceExpired: 410 with reason Expired (the older reason Gone is deprecated).
        return failure(410, "Expired", msg or "the resourceVersion is too old")
    if isinstance(error, json.JSONDecodeError):
        return bad_request(f"the body of the request could not be decoded as JSON: {msg}")
    return failure(500, "InternalError", f"Internal error occurred: {msg}", {"causes": [{"message": msg}]})


def _forbidden_message(msg: str, qualified: str | None, name: str | None) -> str:
    """NewForbidden's forms: 'pods "x" is forbidden: ...', 'pods is forbidden: ...', 'forbidden: ...'."""
    if "forbidden" in msg.lower():
        return msg
    if qualified and name:
        return f'{qualified} "{name}" is forbidden: {msg}'
    if qualified:
        return f"{qualified} is forbidden: {msg}"
    return f"forbidden: {msg}"


# ---------------------------------------------------------------- request-level errors


def bad_request(message: str) -> tuple[int, Doc]:
    """400 BadRequest (NewBadRequest): the request itself is malformed."""
    return failure(400, "BadRequest", message)


def path_not_found() -> tuple[int, Doc]:
    """404 for a path the server does not serve, with the message a real API server sends."""
    return failure(404, "NotFound", PATH_NOT_FOUND)


def method_not_allowed(
    action: str, *, kind_plural: str | None = None, group: str | None = None
) -> tuple[int, Doc]:
    """405 MethodNotAllowed (NewMethodNotSupported): `action` ("delete", "PUT") on a resource that
    does not support it; without a resource, the generic message."""
    qualified = _qualified(kind_plural, group)
    if qualified:
        message = f'{action} is not supported on resources of kind "{qualified}"'
    else:
        message = "the server does not allow this method on the requested resource"
    return failure(405, "MethodNotAllowed", message, _details(kind_plural, group, None))


def not_acceptable(accepted: Iterable[str]) -> tuple[int, Doc]:
    """406 NotAcceptable: no media type the client accepts can be produced."""
    return failure(
        406, "NotAcceptable", f"only the following media types are accepted: {', '.join(accepted)}"
    )


def too_large(message: str) -> tuple[int, Doc]:
    """413 RequestEntityTooLarge."""
    return failure(413, "RequestEntityTooLarge", f"Request entity too large: {message}")


def unsupported_media_type(accepted: Iterable[str]) -> tuple[int, Doc]:
    """415 UnsupportedMediaType: the request body's Content-Type is not one we decode."""
    return failure(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}",
    )
