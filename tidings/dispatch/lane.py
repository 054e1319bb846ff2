"""One lane per provider: how many sends may be in flight to it and how fast they may start."""

from __future__ import annotations

import asyncio
import time

from tidings.core.ratelimit import Limit, gcra
from tidings.providers.base import Provider


class Lane:
    def __init__(self, provider: Provider, concurrency: int, rate: float) -> None:
        self.provider = provider
        self.name = provider.name
        self.capacity = concurrency
        self.active = 0
        self._pace = Limit("rate", provider.name, max(1, int(rate)), max(1, int(rate)) / rate) if rate else None
        self._tat: float | None = None

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
