"""The JSON documents the gRPC API's messages carry, both ways: decoded bytes first, encoded compactly."""

from __future__ import annotations

import json
from typing import Any

from orchestrator import decoding, errors

Obj = dict[str, Any]


def decode(data: bytes, what: str = "the object") -> Obj:
    """A request's JSON object, decoded bytes first (decoding.load_json: UTF-8, size, depth, no
    duplicate keys); errors.Invalid (TooLarge for the size) in one line otherwise."""
    try:
        obj = decoding.load_json(data, what=what)
    except decoding.DecodeError as e:
        raise (errors.TooLarge if e.too_large else errors.Invalid)(str(e)) from None
    if not isinstance(obj, dict):
        raise errors.Invalid(f"{what} must be a JSON object, not {type(obj).__name__}")
    return obj


def encode(obj: Obj | None) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() if obj is not None else b""
