"""The one mapping from Skiff's errors to gRPC status codes, and the guards that apply it.

Every gRPC handler (the API servicer's unary calls, its streams, the Write stream's per-call results
and the node gateway) answers an error through `status_of`, so an error means the same code
everywhere. Anything else a handler raises is a bug: the guards answer it INTERNAL with one line
and log it once with its traceback, so no call is ever answered UNKNOWN.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from orchestrator import errors

log = logging.getLogger(__name__)

# The errors a handler answers with a status.
ANSWERED = (errors.SkiffError, json.JSONDecodeError)
MAX_MESSAGE = 1000  # characters of an error message a status carries


def one_line(message: str) -> str:
    """`message` as a status detail: one line, at most MAX_MESSAGE characters, and encodable as
    UTF-8 (a lone surrogate from the input is escaped: gRPC could not send it, and the call would
    go unanswered)."""
    text = " ".join(message.split())
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - 3] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def status_of(e: errors.SkiffError | json.JSONDecodeError) -> tuple[grpc.StatusCode, str]:
    """The gRPC status code and one-line message of an error in `ANSWERED`."""
    if isinstance(e, json.JSONDecodeError):
        return grpc.StatusCode.INVALID_ARGUMENT, one_line(f"malformed JSON: {e}")
    return getattr(grpc.StatusCode, e.code, grpc.StatusCode.INTERNAL), one_line(str(e))


def internal(e: BaseException, where: str) -> tuple[grpc.StatusCode, str]:
    """INTERNAL and one line for an unexpected exception, logged here once with its traceback."""
    log.error("%s failed: %s", where, one_line(repr(e)), exc_info=e)
    return grpc.StatusCode.INTERNAL, one_line(f"internal error: {type(e).__name__}: {e}")


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
            except grpc.aio.AbortError:
                raise
            except Exception as e:
                await context.abort(*internal(e, fn.__name__))

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
            except grpc.aio.AbortError:
                raise
            except Exception as e:
                await context.abort(*internal(e, fn.__name__))

        return handler

    return wrap
