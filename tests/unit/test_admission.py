"""The API's admission: a bound on client writes proposed at once, a bounded wait for a slot, and
streams counted per credential; over a limit, TooManyRequests at once, before anything is proposed."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator import errors
from orchestrator.store.admission import Admission, Limits


async def hold(adm: Admission, started: asyncio.Event, release: asyncio.Event) -> str:
    async with adm.slot():
        started.set()
        await release.wait()
    return "done"


async def test_writes_beyond_the_limit_wait_and_beyond_the_queue_are_refused_at_once() -> None:
    adm = Admission(Limits(limit=2, queue=1, max_wait=5.0, retry_after=3))
    release = asyncio.Event()
    firsts = [asyncio.Event(), asyncio.Event()]
    holders = [asyncio.create_task(hold(adm, e, release)) for e in firsts]
    await asyncio.gather(*(e.wait() for e in firsts))
    assert adm.in_flight == 2
    third_started = asyncio.Event()
    third = asyncio.create_task(hold(adm, third_started, release))
    await asyncio.sleep(0.01)
    assert not third_started.is_set()  # queued, not proposed
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(errors.TooManyRequests) as refused:
        async with adm.slot():
            raise AssertionError("a fourth write must not run")
    assert loop.time() - t0 < 0.1  # refused at once, not after the wait
    assert refused.value.retry_after == 3
    assert refused.value.code == "RESOURCE_EXHAUSTED"
    assert "retry after 3s" in str(refused.value)
    release.set()
    assert await asyncio.gather(*holders, third) == ["done"] * 3
    assert third_started.is_set()  # the freed slot went to the queued write
    assert adm.in_flight == 0 and adm.refused == 1


async def test_a_write_that_waits_too_long_is_refused_and_frees_its_place() -> None:
    adm = Admission(Limits(limit=1, queue=4, max_wait=0.05))
    release, started = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(hold(adm, started, release))
    await started.wait()
    with pytest.raises(errors.TooManyRequests, match="no write slot free within 0.05s"):
        async with adm.slot():
            pass
    release.set()
    await holder
    async with adm.slot():  # nothing leaked: the one slot is free again
        assert adm.in_flight == 1
    assert adm.in_flight == 0


async def test_a_cancelled_waiter_leaves_no_slot_behind() -> None:
    adm = Admission(Limits(limit=1, queue=4, max_wait=5.0))
    release, started = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(hold(adm, started, release))
    await started.wait()
    waiter = asyncio.create_task(hold(adm, asyncio.Event(), release))
    await asyncio.sleep(0.01)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    release.set()
    await holder
    assert adm.in_flight == 0
    async with adm.slot():
        pass


async def test_a_failing_write_gives_its_slot_back() -> None:
    adm = Admission(Limits(limit=1))
    with pytest.raises(errors.Conflict):
        async with adm.slot():
            raise errors.Conflict("stale")
    assert adm.in_flight == 0


def test_streams_are_counted_per_credential() -> None:
    adm = Admission(Limits(max_streams=2))
    with adm.stream("admin"), adm.stream("admin"):
        with pytest.raises(errors.TooManyRequests, match="admin already holds 2 streams"):
            with adm.stream("admin"):
                pass
        with adm.stream("node/worker-1"):  # another credential has its own count
            assert adm.streams("node/worker-1") == 1
        assert adm.streams("admin") == 2
    assert adm.streams("admin") == 0
    with adm.stream("admin"):  # ended streams free their places
        pass
