"""A de-duplicating work queue of keys with per-key exponential backoff (client-go's rate-limited workqueue)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
# Holds kept before the ended ones are swept (WorkQueue.hold).
HOLDS_BEFORE_SWEEP = 1024


class WorkQueue(Generic[K]):
    """Keys waiting to be processed, each at most once.

    Contract (as client-go's workqueue):
    - a key is queued at most once however often it is added;
    - a key handed out by `get` is not handed out again until `done(key)`; if it was added meanwhile it is
      queued again at `done`, so a change that arrives during processing is always processed after;
    - `add_after(key, delay)` adds it once `delay` seconds have passed on the injected clock (the earliest
      of several pending delays wins);
    - `add_rate_limited(key)` adds it after `base_delay * 2**failures` (capped at `max_delay`) and counts a
      failure; `forget(key)` resets the count once the key was processed successfully;
    - `hold(key, seconds)`: an add within that time waits until it has passed (the adds coalesce).
    All methods run on one event loop; several consumers may `get` concurrently.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        base_delay: float = 0.005,
        max_delay: float = 10.0,
    ) -> None:
        self._clock = clock
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._failures: dict[K, int] = {}
        self._waiting: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._held: dict[K, float] = {}  # key -> when its hold ends
        self._sweep_at = HOLDS_BEFORE_SWEEP  # holds kept before the ended ones are dropped
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()

    def __len__(self) -> int:
        return len(self._queue)

    def describe(self) -> str:
        """A one-line summary for the controllers' periodic log: what waits, runs, is delayed, held."""
        now = self._clock()
        held = sum(1 for until in self._held.values() if until > now)
        return (
            f"queued={len(self._queue)} processing={sorted(map(str, self._processing))[:3]} "
            f"delayed={len(self._waiting)} held={held}"
        )

    def add(self, key: K) -> None:
        if key in self._dirty:
            return
        if self._held and self._still_held(key):
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._wakeup.set()

    def add_after(self, key: K, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        ready_at = self._clock() + delay
        if self._waiting.get(key, float("inf")) <= ready_at:
            return
        self._waiting[key] = ready_at
        heapq.heappush(self._heap, (ready_at, next(self._seq), key))
        self._wakeup.set()

    def backoff(self, key: K) -> float:
        """The delay the next `add_rate_limited(key)` would use."""
        return min(self._max_delay, self._base_delay * 2 ** self._failures.get(key, 0))

    def add_rate_limited(self, key: K) -> None:
        delay = self.backoff(key)
        self._failures[key] = self._failures.get(key, 0) + 1
        self.add_after(key, delay)

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        return self._failures.get(key, 0)

    def hold(self, key: K, seconds: float) -> None:
        if seconds > 0:
            now = self._clock()
            self._held[key] = now + seconds
            if len(self._held) > self._sweep_at:
                # A hold ends only when its key is added again: the keys of deleted objects were
                # kept for ever. Drop the ended ones whenever the holds double (amortised O(1)).
                self._held = {k: until for k, until in self._held.items() if until > now}
                self._sweep_at = max(HOLDS_BEFORE_SWEEP, 2 * len(self._held))

    def _still_held(self, key: K) -> bool:
        """If `key` is held, schedule it for the hold's end and say so; forget a hold that ended."""
        until = self._held.get(key)
        if until is None:
            return False
        remaining = until - self._clock()
        if remaining <= 0:
            del self._held[key]
            return False
        self.add_after(key, remaining)
        return True

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:  # added while it was processed: queue it again (or at its hold's end)
            self._dirty.discard(key)
            self.add(key)

    def _promote(self) -> float | None:
        """Move due delayed keys into the queue; return seconds until the next one is due, or None."""
        now = self._clock()
        while self._heap:
            ready_at, _, key = self._heap[0]
            if self._waiting.get(key) != ready_at:
                heapq.heappop(self._heap)
                continue
            if ready_at > now:
                return ready_at - now
            heapq.heappop(self._heap)
            del self._waiting[key]
            self.add(key)
        return None

    def get_nowait(self) -> K | None:
        """The next ready key (now marked processing), or None when nothing is ready."""
        self._promote()
        if not self._queue:
            return None
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    async def get(self) -> K:
        """Wait for the next ready key; the caller must call `done(key)` when it has processed it."""
        while True:
            key = self.get_nowait()
            if key is not None:
                return key
            delay = self._promote()
            self._wakeup.clear()
            try:
                async with asyncio.timeout(delay):
                    await self._wakeup.wait()
            except TimeoutError:
                pass
