"""The one mapping from Skiff's errors to gRPC status codes, and the guards that apply it.

Every gRPC handler (the API servicer's unary calls, its streams, the Write stream's per-call results
and the node gateway) answers an error through `status_of`, so an error means the same code
everywhere. Anything else a handler raises is a bug: gRPC answers UNKNOWN and logs it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from orchestrator import errors

# The errors a handler answers with a status.
ANSWERED = (errors.SkiffError, json.JSONDecodeError)


def status_of(e: errors.SkiffError | json.JSONDecodeError) -> tuple[grpc.StatusCode, str]:
    """The gRPC status code and one-line message of an error in `ANSWERED`."""
    if isinstance(e, json.JSONDecodeError):
        return grpc.StatusCode.INVALID_ARGUMENT, f"malformed JSON: {e}"
    return getattr(grpc.StatusCode, e.code, grpc.StatusCode.UNKNOWN), str(e)


def guard(permission: str) -> Callable:
    """Authenticate and authorize a unary handler (`self.auth`), and answer its errors by `status_of`."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        async def handler(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                self.auth.require(context.invocation_metadata(), permission)
                return await fn(self, request, context)
            except ANSWERED as e:
                await context.abort(*status_of(e))

        return handler

    return wrap


def guard_stream(permission: str) -> Callable:
    """`guard` for a server-streaming handler: an error ends the stream with its status."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        async def handler(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator:
            try:
                self.auth.require(context.invocation_metadata(), permission)
                async for item in fn(self, request, context):
                    yield item
            except ANSWERED as e:
                await context.abort(*status_of(e))

        return handler

    return wrap
