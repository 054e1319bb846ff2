"""Outcomes are written in batches: many sends finishing together cost one store round trip."""

from __future__ import annotations

import asyncio
import logging
import time

from tidings.core.outcomes import Attempt, Settlement
from tidings.core.types import Job
from tidings.ports import Queue

log = logging.getLogger("tidings.dispatch")

FLUSH_EVERY = 0.02
MAX_BATCH = 500


class Settler:
    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._pending: list[tuple[Job, Settlement, Attempt | None]] = []
        self._writing = 0
        self._arrived = asyncio.Event()

    @property
    def unwritten(self) -> int:
        """Outcomes not yet recorded, the batch being written included."""
        return len(self._pending) + self._writing

    def add(self, job: Job, settlement: Settlement, attempt: Attempt | None) -> None:
        self._pending.append((job, settlement, attempt))
        self._arrived.set()

    async def run(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            await asyncio.sleep(FLUSH_EVERY)
            await self.flush()

    async def flush(self) -> None:
        """Write what is pending; on a store failure keep it and try again (the leases cover the wait)."""
        delay = 0.1
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            self._writing = len(batch)  # still counted if the wait is cancelled: the write may not finish
            try:
                await asyncio.shield(self.queue.settle(batch, time.time()))
            except Exception as exc:
                self._writing = 0
                log.error("cannot record %d outcomes (%s); retrying in %.1f s", len(batch), exc, delay)
                self._pending[:0] = batch
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                self._writing = 0
