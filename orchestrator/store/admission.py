"""What a master lets its API clients cost: proposals in flight, streams per credential.

Kubernetes' API Priority and Fairness gives each request a priority level with its own share of the
server's concurrency, and exempts the system's own traffic. Skiff has two levels:

- **exempt**: the agents' heartbeats and statuses (the node gateway), the controllers and the lease
  keeper. They write through a Writer without an Admission, so they never queue behind clients.
- **clients**: every write through the gRPC or REST API. At most `limit` of them are proposed to
  Raft at once on a master, at most `queue` more wait (each for at most `max_wait` seconds), and the
  rest are refused at once with TooManyRequests (RESOURCE_EXHAUSTED / 429, retry after a second).
  So however hard the clients push, the Raft log ahead of a heartbeat holds at most `limit` client
  writes per master, and a refused write was never proposed: nothing half-done.

Streams (watches, write streams, log follows, node streams) are counted per credential: a
credential holding `max_streams` is refused another until one ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from orchestrator import errors


@dataclass(frozen=True)
class Limits:
    limit: int = 32  # client proposals in flight per master
    queue: int = 64  # client proposals waiting for a slot
    max_wait: float = 1.0  # seconds a proposal may wait for a slot
    max_streams: int = 128  # concurrent streams per credential
    retry_after: int = 1  # seconds, in the refusal


class Admission:
    """The client priority level of one master (see the module docstring). Use from one event loop."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.in_flight = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._streams: dict[str, int] = {}
        self.refused = 0  # proposals and streams refused so far (the master's metrics)

    def _refuse(self, what: str) -> errors.TooManyRequests:
        self.refused += 1
        return errors.TooManyRequests(
            f"too many requests: {what}; retry after {self.limits.retry_after}s", self.limits.retry_after
        )

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the `limit` proposal slots for the body; TooManyRequests when none frees in time."""
        lim = self.limits
        if self.in_flight >= lim.limit:
            if len(self._waiting) >= lim.queue:
                raise self._refuse(f"{self.in_flight} writes in flight and {len(self._waiting)} queued")
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await asyncio.wait_for(asyncio.shield(waiter), lim.max_wait)
            except TimeoutError:
                if waiter.done():  # handed a slot just as the wait ran out: give it on
                    self._release()
                else:
                    self._waiting.remove(waiter)
                    waiter.cancel()
                raise self._refuse(f"no write slot free within {lim.max_wait:g}s") from None
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._release()
                elif waiter in self._waiting:
                    self._waiting.remove(waiter)
                raise
            # A released slot was handed to this waiter: in_flight already counts it.
        else:
            self.in_flight += 1
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes straight to the next waiter
                return
        self.in_flight -= 1

    @contextlib.contextmanager
    def stream(self, credential: str) -> Iterator[None]:
        """Count one stream of `credential` for the body; TooManyRequests over `max_streams`."""
        held = self._streams.get(credential, 0)
        if held >= self.limits.max_streams:
            raise self._refuse(f"{credential} already holds {held} streams (the limit)")
        self._streams[credential] = held + 1
        try:
            yield
        finally:
            left = self._streams[credential] - 1
            if left:
                self._streams[credential] = left
            else:
                del self._streams[credential]

    def streams(self, credential: str) -> int:
        return self._streams.get(credential, 0)
