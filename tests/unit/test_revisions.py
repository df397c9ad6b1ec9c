"""Revisions as clients write them: decimal ASCII digits, and not ahead of the replica for long."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator import errors
from orchestrator.store.watch import caught_up, parse_revision


@pytest.mark.parametrize("text", ["0", "7", "123456789012"])
def test_decimal_revisions_are_read(text: str) -> None:
    assert parse_revision(text) == int(text)


@pytest.mark.parametrize("text", [" 5", "5 ", "+5", "-5", "5_0", "٣", "0x10", "1e3", "", "5\n"])
def test_anything_else_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(errors.Invalid, match="resourceVersion: .* is not a valid resource version"):
        parse_revision(text)


class Replica:
    """The two things `caught_up` reads of a store: its revision and the event set on a change."""

    def __init__(self, revision: int) -> None:
        self.revision = revision
        self._changed = asyncio.Event()

    def change_event(self) -> asyncio.Event:
        return self._changed

    def advance(self, to: int) -> None:
        self.revision = to
        self._changed.set()
        self._changed = asyncio.Event()


async def test_a_revision_reached_within_the_wait_is_served() -> None:
    replica = Replica(5)
    asyncio.get_running_loop().call_later(0.05, replica.advance, 9)
    await caught_up(replica, 9, wait=2.0)  # type: ignore[arg-type]
    assert replica.revision == 9


async def test_a_revision_ahead_of_the_replica_is_too_large() -> None:
    with pytest.raises(errors.RevisionAhead, match="Too large resource version: 1000, current: 5"):
        await caught_up(Replica(5), 1000, wait=0.05)  # type: ignore[arg-type]
