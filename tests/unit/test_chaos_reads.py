"""The chaos run's read check: a register model over what the readers and the writer recorded."""

from __future__ import annotations

from chaos.checks import ReadRecord, RegisterWrite, stale_reads


def w(value: int, invoked: float, completed: float, outcome: str = "ok") -> RegisterWrite:
    return RegisterWrite("k", value, invoked, completed, outcome)


def r(value: int | None, invoked: float, completed: float) -> ReadRecord:
    return ReadRecord("k", invoked, completed, value, "m1")


WRITES = [w(1, 0.0, 1.0), w(2, 2.0, 3.0), w(3, 4.0, 9.0, "unknown"), w(4, 10.0, 11.0)]


def test_a_read_that_began_after_an_acknowledged_write_must_see_it() -> None:
    assert stale_reads(WRITES, [r(1, 3.5, 3.6)]) == [
        "k read 1 from m1, though 2 was acknowledged before the read began"
    ]


def test_a_read_overlapping_a_write_may_see_either_value() -> None:
    assert stale_reads(WRITES, [r(1, 2.5, 2.6), r(2, 2.5, 2.6), r(1, 0.5, 4.0)]) == []


def test_a_write_of_unknown_outcome_may_or_may_not_be_visible() -> None:
    assert stale_reads(WRITES, [r(2, 9.5, 9.6), r(3, 9.5, 9.6)]) == []


def test_a_failed_read_is_not_stale_and_other_keys_do_not_count() -> None:
    other = ReadRecord("other", 12.0, 12.1, 0, "m2")
    assert stale_reads(WRITES, [r(None, 12.0, 12.1), other]) == []
    assert len(stale_reads(WRITES, [r(2, 12.0, 12.1)])) == 1
