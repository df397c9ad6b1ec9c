"""Errors shared by the store, the API and its clients; each maps to one gRPC status code."""

from __future__ import annotations


class SkiffError(Exception):
    """Base of Skiff's errors. `code` is the grpc.StatusCode name it maps to."""

    code = "UNKNOWN"


class NotFound(SkiffError):
    code = "NOT_FOUND"


class AlreadyExists(SkiffError):
    code = "ALREADY_EXISTS"


class Conflict(SkiffError):
    """A stale resourceVersion (compare-and-set lost): re-read and retry."""

    code = "ABORTED"


class Invalid(SkiffError):
    code = "INVALID_ARGUMENT"


class Precondition(SkiffError):
    code = "FAILED_PRECONDITION"


class Fenced(Precondition):
    """A controller write carried a leader lease that is no longer current."""


class Unavailable(SkiffError):
    """No quorum, no reachable master, or a write whose outcome is unknown: retry with the same id."""

    code = "UNAVAILABLE"


class RevisionAhead(Unavailable):
    """A watch from a revision this replica has not reached (Kubernetes: "Too large resource
    version", 504 with a retry hint); another master, or this one a little later, may have it."""


class Unauthenticated(SkiffError):
    code = "UNAUTHENTICATED"


class PermissionDenied(SkiffError):
    code = "PERMISSION_DENIED"


class TooLarge(Invalid):
    """A request or an object over its size limit (Kubernetes' 3 MiB per object)."""


class TooManyRequests(SkiffError):
    """Over a limit on what a client may have in flight: retry after `retry_after` seconds."""

    code = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooOld(SkiffError):
    """A watch asked for a revision the store's history no longer holds: relist."""

    code = "OUT_OF_RANGE"


BY_CODE: dict[str, type[SkiffError]] = {
    cls.code: cls
    for cls in (
        NotFound,
        AlreadyExists,
        Conflict,
        Invalid,
        Precondition,
        Unavailable,
        Unauthenticated,
        PermissionDenied,
        TooManyRequests,
        TooOld,
    )
}
