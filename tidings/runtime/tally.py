"""Counts for ``GET /v1/stats``, kept off the hot path: a send or a check adds one to a dictionary in memory, and a
task writes the sums to the store every few seconds, per minute and per hour, in one round trip each. A process that
dies loses at most the counts of its last few seconds; the work itself is not affected."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter

from tidings.core import stats
from tidings.ports import Stats

log = logging.getLogger("tidings.stats")

FLUSH_EVERY = 5.0


class Tally:
    def __init__(self, store: Stats | None) -> None:
        """``store`` None counts nothing (a tool or a test that has no use for the counts)."""
        self.store = store
        self._counts: Counter[tuple[int, str]] = Counter()
        self._hours: Counter[tuple[int, str]] = Counter()
        """Hourly sums whose minutes were written but which were not (yet)."""

    def count(self, name: str, n: int = 1) -> None:
        if self.store is not None:
            self._counts[int(time.time() // stats.MINUTE) * stats.MINUTE, name] += n

    async def flush(self) -> None:
        """Write what was counted since the last flush; counts that could not be written are kept for the next."""
        if self.store is None:
            return
        counts, self._counts = self._counts, Counter()
        written = False
        try:
            if counts:
                await self.store.add(counts, stats.MINUTE)
            written = True
            self._hours.update(stats.by_hour(counts))
            if self._hours:
                await self.store.add(self._hours, stats.HOUR)
                self._hours.clear()
        except Exception as exc:
            log.warning("cannot write the stats (%s); they are kept for the next try", exc)
            if not written:
                self._counts.update(counts)

    async def flush_forever(self, every: float = FLUSH_EVERY) -> None:
        try:
            while True:
                await asyncio.sleep(every)
                await self.flush()
        finally:
            with contextlib.suppress(Exception):
                await self.flush()
