"""Paged lists (orchestrator.store.paging): pages cover a sorted list once, in order; tokens resume."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator import errors
from orchestrator.store import paging

Obj = dict[str, Any]


def obj(namespace: str, name: str) -> Obj:
    meta = {"name": name, "namespace": namespace} if namespace else {"name": name}
    return {"kind": "ConfigMap", "metadata": meta}


def all_pages(items: list[Obj], limit: int, revision: int = 7) -> list[tuple[list[Obj], int]]:
    """Every page of `items` (sorted here), following the tokens as a client does."""
    ordered = sorted(items, key=paging.key)
    pages: list[tuple[list[Obj], int]] = []
    token = ""
    while True:
        page, token, remaining = paging.page(ordered, paging.after_of(token), limit, revision)
        pages.append((page, remaining))
        if not token:
            return pages
        assert len(pages) <= len(items) + 1, "the tokens do not advance"


def names(objs: list[Obj]) -> list[str]:
    return [paging.key(o) for o in objs]


def test_25_items_in_pages_of_10_are_10_10_5_with_remaining_counts() -> None:
    items = [obj("default", f"cm-{i:02d}") for i in range(25)]
    pages = all_pages(items, 10)
    assert [len(p) for p, _ in pages] == [10, 10, 5]
    assert [r for _, r in pages] == [15, 5, 0]
    assert [k for p, _ in pages for k in names(p)] == [f"default/cm-{i:02d}" for i in range(25)]


@pytest.mark.parametrize(
    ("count", "limit", "sizes"),
    [
        (0, 10, [0]),
        (5, 0, [5]),  # 0 = no limit
        (5, 5, [5]),  # exactly one full page: no token
        (5, 6, [5]),
        (6, 5, [5, 1]),
        (3, 1, [1, 1, 1]),
    ],
    ids=["empty", "no-limit", "exactly-one-page", "limit-over-count", "one-left-over", "one-by-one"],
)
def test_page_sizes(count: int, limit: int, sizes: list[int]) -> None:
    assert [len(p) for p, _ in all_pages([obj("ns", f"o{i}") for i in range(count)], limit)] == sizes


def test_sorted_by_namespace_then_name_and_cluster_scoped_first() -> None:
    items = [obj("b", "a"), obj("a", "z"), obj("", "node-1"), obj("a", "b")]
    assert names([o for p, _ in all_pages(items, 1) for o in p]) == ["/node-1", "a/b", "a/z", "b/a"]


def test_the_token_names_the_last_key_and_the_revision() -> None:
    ordered = sorted([obj("ns", f"o{i}") for i in range(4)], key=paging.key)
    _, token, remaining = paging.page(ordered, "", 2, 42)
    assert paging.decode(token) == paging.Token("ns/o1", 42) and remaining == 2


def test_a_continued_page_reads_the_keys_after_the_token_from_the_current_items() -> None:
    """No snapshot: an item created after the first page shows if its key is after the token; one
    before it does not, and nothing is repeated."""
    first, token, _ = paging.page([obj("ns", "b"), obj("ns", "d")], "", 1, 1)
    now = sorted([obj("ns", "a"), obj("ns", "b"), obj("ns", "c"), obj("ns", "d")], key=paging.key)
    rest, token, remaining = paging.page(now, paging.after_of(token), 0, 2)
    assert names(first) == ["ns/b"] and names(rest) == ["ns/c", "ns/d"] and (token, remaining) == ("", 0)


def test_a_negative_limit_is_invalid() -> None:
    with pytest.raises(errors.Invalid, match=r"^limit: -1 must not be negative \(0 = no limit\)$"):
        paging.page([obj("ns", "a")], "", -1, 1)


@pytest.mark.parametrize(
    "token",
    [
        "garbage!",
        "bm90IGpzb24=",  # base64 of "not json"
        base64.urlsafe_b64encode(b'["a list"]').decode(),
        base64.urlsafe_b64encode(b'{"after": 3, "rv": 1}').decode(),
        base64.urlsafe_b64encode(b'{"after": "ns/a"}').decode(),
        base64.urlsafe_b64encode(b'{"after": "ns/a", "rv": true}').decode(),
        "\udcff",  # a lone surrogate, as argv passes undecodable bytes
    ],
    ids=[
        "not-base64",
        "not-json",
        "not-an-object",
        "after-not-text",
        "no-revision",
        "revision-bool",
        "surrogate",
    ],
)
def test_a_token_this_server_did_not_issue_is_refused_in_one_line(token: str) -> None:
    with pytest.raises(errors.Invalid) as refused:
        paging.after_of(token)
    message = str(refused.value)
    assert message.startswith("continue: ") and "is not a continue token this server issued" in message
    assert repr(token) in message and "\n" not in message


def test_a_long_bad_token_is_shortened_in_the_message() -> None:
    with pytest.raises(errors.Invalid) as refused:
        paging.after_of("x" * 1000)
    assert len(str(refused.value)) < 200


keys = st.tuples(st.sampled_from(["", "a", "a-b", "b"]), st.text("abz-0.", min_size=1, max_size=4))


@given(st.sets(keys, max_size=40), st.integers(min_value=1, max_value=12))
def test_pages_cover_every_item_once_in_order(pairs: set[tuple[str, str]], limit: int) -> None:
    items = [obj(ns, name) for ns, name in pairs]
    pages = all_pages(items, limit)
    seen = [k for p, _ in pages for k in names(p)]
    assert seen == sorted(f"{ns}/{name}" for ns, name in pairs)
    assert all(len(p) == limit for p, _ in pages[:-1]) and len(pages[-1][0]) <= limit
    total = len(items)
    assert [r for _, r in pages] == [max(total - limit * (i + 1), 0) for i in range(len(pages))]


def test_select_pages_unsorted_items_as_page_does_the_sorted_ones() -> None:
    import random

    items = [{"metadata": {"namespace": "default", "name": f"o{i:03d}"}} for i in range(57)]
    shuffled = random.Random(1).sample(items, len(items))
    keep = lambda o: o["metadata"]["name"] != "o013"  # noqa: E731
    kept = [o for o in items if keep(o)]
    after, seen = "", []
    while True:
        got, token, remaining = paging.select(shuffled, keep, after, 10, 7)
        assert (got, token, remaining) == paging.page(kept, after, 10, 7)
        seen += got
        if not token:
            break
        after = paging.after_of(token)
    assert seen == kept
