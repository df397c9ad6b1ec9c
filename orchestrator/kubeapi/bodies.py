"""Request bodies: decoding JSON, YAML and Kubernetes protobuf into objects, and field validation.

Pure. Every failure raises `BodyError` with a one-line message (the server answers 400), or
`UnsupportedBody` for a media type we do not decode (415).
"""

from __future__ import annotations

import json
import re
from typing import Any

from orchestrator import decoding, model
from orchestrator.kubeapi import protobuf

Obj = dict[str, Any]
JSON = "application/json"
YAML = "application/yaml"
DECODED = (JSON, YAML, protobuf.MEDIA_TYPE)
STRICT, WARN, IGNORE = "Strict", "Warn", "Ignore"
MAX_UNKNOWN_FIELDS = 64


class BodyError(ValueError):
    """A body that cannot be decoded into an object."""


class UnsupportedBody(BodyError):
    """A body in a media type this server does not decode."""


class BodyTooLarge(BodyError):
    """A body over the size limit (the server answers 413)."""


WHAT = "the body of the request"


def decode(media_type: str, body: bytes) -> Any:
    """The value a request body holds, by its (bare, lower-case) media type; "" means JSON. JSON and
    YAML are decoded bytes first (orchestrator.decoding: UTF-8, size, depth, aliases, duplicate keys)."""
    try:
        if media_type in ("", JSON, "application/merge-patch+json", "application/json-patch+json"):
            return decoding.load_json(body, what=WHAT)
        if media_type in (YAML, "application/apply-patch+yaml", "application/x-yaml", "text/yaml"):
            return decoding.load_yaml(body, what=WHAT)
    except decoding.DecodeError as e:
        raise (BodyTooLarge if e.too_large else BodyError)(str(e)) from None
    if protobuf.is_protobuf(media_type):
        try:
            return protobuf.decode(body)
        except protobuf.ProtobufError as e:
            raise BodyError(f"the body of the request is not a decodable protobuf object: {e}") from None
    raise UnsupportedBody(media_type)


def decode_object(media_type: str, body: bytes) -> Obj:
    """`decode`, for a body that must be one object."""
    value = decode(media_type, body)
    if not isinstance(value, dict):
        raise BodyError(f"the body of the request must be an object, not {type(value).__name__}")
    return value


_NO_FIELD = re.compile(r'has no field named "([^"]+)" at "([^"]*)"')
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _unknown_field(message: str) -> tuple[list[str | int], str] | None:
    """The path (below the object) and name of the unknown field a validation message names."""
    m = _NO_FIELD.search(message)
    if m is None:
        return None
    field, at = m.group(1), m.group(2)
    path: list[str | int] = []
    for name, index in _SEGMENT.findall(at)[1:] if at else []:  # the first segment is the kind
        path.append(int(index) if index else name)
    return path, field


def _json_path(path: list[str | int], field: str) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return f"{out}.{field}".lstrip(".")


def drop_unknown_fields(obj: Obj, mode: str) -> tuple[Obj, list[str]]:
    """Kubernetes' fieldValidation: with Strict the object is returned as it is (validation rejects an
    unknown field later, naming it); with Warn or Ignore, a copy without its unknown fields, and for
    Warn a warning per dropped field ('unknown field "spec.replica"'), as the API server sends them."""
    if mode not in (WARN, IGNORE):
        return obj, []
    out: Any = json.loads(json.dumps(obj))
    warnings: list[str] = []
    for _ in range(MAX_UNKNOWN_FIELDS):
        try:
            model.validate(out)
            break
        except model.ValidationError as e:
            found = _unknown_field(str(e))
            if found is None:
                break  # another problem: validation answers it
            path, field = found
            holder: Any = out
            for part in path:
                holder = holder[part]
            if not isinstance(holder, dict) or field not in holder:
                break
            del holder[field]
            warnings.append(f'unknown field "{_json_path(path, field)}"')
    return out, warnings if mode == WARN else []
