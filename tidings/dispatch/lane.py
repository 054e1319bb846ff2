"""One lane per sender (an SMS or email provider, or a push channel): how many sends may be in flight through it
and how fast they may start."""

from __future__ import annotations

import asyncio
import time

from tidings.core.ratelimit import Limit, gcra
from tidings.ports import BatchSender, Sender


class Lane:
    def __init__(self, sender: Sender, concurrency: int, rate: float) -> None:
        self.sender = sender
        self.name = sender.name
        self.capacity = concurrency
        self.active = 0
        self._pace = Limit("rate", sender.name, max(1, int(rate)), max(1, int(rate)) / rate) if rate else None
        self._tat: float | None = None
        self.batch_size = sender.batch_size if isinstance(sender, BatchSender) and self._pace is None else 1
        """Sends the dispatcher hands over in one call; a paced lane starts each send at its own time."""

    @property
    def free(self) -> int:
        return self.capacity - self.active

    async def pace(self) -> None:
        """Wait for this send's turn under the provider's rate (sends per second, bursts up to one second's)."""
        if self._pace is None:
            return
        while True:
            verdict = gcra(self._tat, time.monotonic(), self._pace)
            if verdict.allowed:
                self._tat = verdict.tat
                return
            await asyncio.sleep(verdict.retry_after)
