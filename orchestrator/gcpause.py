"""Short pauses from CPython's cyclic garbage collector in a long-lived process holding a big state.

A master's state is hundreds of thousands of small dicts and lists that live as long as their objects:
30,000 pods are about 600,000 objects the collector tracks. A full collection walks every tracked
object with the GIL held: about half a second at that size on the machine of the scale bench, during
which PySyncObj's tick thread stops with everything else. A leader that stops longer than the
election timeout (0.4 s) is replaced though it is alive, and during a scale-up CPython ran a full
collection every few seconds (its trigger: a quarter more long-lived objects than at the last one).

So every FREEZE_EVERY seconds `Freezer` moves what survived until then into the permanent generation
(gc.freeze, which costs no walk), and each collection walks only what was allocated since. A frozen
object is still freed by reference counting when its last reference goes, as almost all of a master's
objects are; only a reference cycle that was alive at a freeze and dies later stays (asyncio objects of
requests in flight at that moment): the scale bench reports the master's memory with this in place.

Collections over PAUSE_LOGGED are logged with their duration and generation, as a runtime's GC trace.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

log = logging.getLogger(__name__)

FREEZE_EVERY = 5.0
PAUSE_LOGGED = 0.1  # seconds


class Freezer:
    """`run()` freezes the survivors every `every` seconds until cancelled; logs long collections."""

    def __init__(self, every: float = FREEZE_EVERY, logged: float = PAUSE_LOGGED) -> None:
        self.every = every
        self.logged = logged
        self.longest = 0.0  # the longest collection seen, seconds
        self.freezes = 0
        self._started = 0.0

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        self.longest = max(self.longest, took)
        if took >= self.logged:
            log.warning(
                "garbage collection of generation %d took %.0f ms (%d objects frozen)",
                info.get("generation", -1),
                took * 1000,
                gc.get_freeze_count(),
            )

    async def run(self) -> None:
        gc.callbacks.append(self._on_gc)
        try:
            while True:
                await asyncio.sleep(self.every)
                gc.freeze()
                self.freezes += 1
        finally:
            gc.callbacks.remove(self._on_gc)
