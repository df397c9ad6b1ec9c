"""Paged lists, as Kubernetes' `limit` and `continue`: shared by the gRPC API and the Kubernetes API.

A list is sorted by key ("namespace/name", "/name" for a cluster-scoped object); a page holds at most
`limit` items (0 = no limit), and when more remain it carries a continue token naming its last key
and the revision it was read at, and how many items remain. A continued list resumes after that key.

Kubernetes serves every continued page at the first page's resourceVersion (and answers 410 Expired
once that revision is compacted). We keep no MVCC snapshots: a continued page is read from the current
state, the keys after the token's. So an object created or deleted during a paged list may or may not
be seen, but none is seen twice, and every object that exists throughout is seen once.
"""

from __future__ import annotations

import base64
import bisect
import heapq
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from orchestrator import errors

T = TypeVar("T", bound=Mapping[str, Any])


@dataclass(frozen=True)
class Token:
    """What a continue token holds: the last key of the page it ended, and that page's revision."""

    after: str
    revision: int


def key(obj: Mapping[str, Any]) -> str:
    """The sort key of a listed object: "namespace/name" ("/name" when cluster-scoped)."""
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


def encode(after: str, revision: int) -> str:
    """The continue token that resumes a list after key `after` (read at `revision`)."""
    return base64.urlsafe_b64encode(json.dumps({"after": after, "rv": revision}).encode()).decode()


def decode(token: str) -> Token:
    """The Token in `token`; errors.Invalid when it is not one that `encode` made."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        after, revision = data["after"], data["rv"]
        if not isinstance(after, str) or not isinstance(revision, int) or isinstance(revision, bool):
            raise TypeError
        return Token(after, revision)
    except (ValueError, TypeError, KeyError):  # base64, UTF-8 and JSON errors are ValueErrors
        shown = token if len(token) <= 80 else token[:80] + "..."
        raise errors.Invalid(f"continue: {shown!r} is not a continue token this server issued") from None


def after_of(token: str) -> str:
    """The key a list continued with `token` resumes after ("" for no token: from the start)."""
    return decode(token).after if token else ""


def page(sorted_items: Sequence[T], after: str, limit: int, revision: int) -> tuple[list[T], str, int]:
    """(items, continue token, remaining): the items of `sorted_items` (sorted by `key`) after key
    `after`, at most `limit` of them (0 = all); the token ("" when none remain) resumes after the last
    one. A negative limit is errors.Invalid."""
    if limit < 0:
        raise errors.Invalid(f"limit: {limit} must not be negative (0 = no limit)")
    start = bisect.bisect_right(sorted_items, after, key=key) if after else 0
    rest = sorted_items[start:]
    if limit == 0 or limit >= len(rest):
        return list(rest), "", 0
    items = list(rest[:limit])
    return items, encode(key(items[-1]), revision), len(rest) - limit


def select(
    items: Iterable[T], keep: Callable[[T], bool], after: str, limit: int, revision: int
) -> tuple[list[T], str, int]:
    """`page` of the kept items, without sorting them all: the items after `after` are picked in one
    pass and only the `limit` smallest keys are sorted (a page of 500 out of 30,000 pods costs a
    pass, not a sort of 30,000, and a paged list of them 60 passes, not 60 sorts)."""
    if limit < 0:
        raise errors.Invalid(f"limit: {limit} must not be negative (0 = no limit)")
    rest = [o for o in items if (not after or key(o) > after) and keep(o)]
    if limit == 0 or limit >= len(rest):
        return sorted(rest, key=key), "", 0
    chosen = heapq.nsmallest(limit, rest, key=key)
    return chosen, encode(key(chosen[-1]), revision), len(rest) - limit
