"""One lane per sender (an SMS or email provider, or a push channel): how many sends may be in flight through it,
how fast they may start, and, for a provider, the circuit that holds it off while it keeps failing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from tidings.core.breaker import Breaker
from tidings.core.ratelimit import Limit, gcra
from tidings.core.types import Deferred, Delivered, Permanent, SendOutcome, Transient
from tidings.ports import BatchSender, Sender


class Lane:
    def __init__(self, sender: Sender, concurrency: int, rate: float, breaker: Breaker | None = None) -> None:
        self.sender = sender
        self.name = sender.name
        self.capacity = concurrency
        self.active = 0
        self.breaker = breaker
        """A provider's circuit (push channels keep their own, per destination)."""
        self._pace = Limit("rate", sender.name, max(1, int(rate)), max(1, int(rate)) / rate) if rate else None
        self._tat: float | None = None
        self.batch_size = sender.batch_size if isinstance(sender, BatchSender) and self._pace is None else 1
        """Sends the dispatcher hands over in one call; a paced lane starts each send at its own time."""

    @property
    def free(self) -> int:
        return self.capacity - self.active

    @property
    def circuit_open(self) -> bool:
        return self.breaker is not None and self.breaker.state == "open"

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

    async def through_circuit(self, send: Callable[[], Awaitable[list[SendOutcome]]], count: int) -> list[SendOutcome]:
        """The outcomes of ``send`` (one request carrying ``count`` sends), or, while the provider's circuit is open,
        a deferral of them all without a request: a provider that is down gets a probe now and then, not every
        retry of every queued code. The next provider of a chain takes them meanwhile (``Deferred.fail_over``)."""
        if self.breaker is None:
            return await send()
        until = self.breaker.allow(time.time())
        if until is not None:
            held_off = Deferred("circuit_open", until, f"{self.name} keeps failing; a probe goes first", fail_over=True)
            return [held_off] * count
        outcomes: list[SendOutcome] | None = None
        try:
            outcomes = await send()
            return outcomes
        finally:
            self._report(outcomes)

    def _report(self, outcomes: list[SendOutcome] | None) -> None:
        """One request's news of the provider's health: it answered (a send, or a refusal of one), it failed (only
        errors, none of them asking to wait), or it told nothing (it paced us, or the send was cancelled)."""
        assert self.breaker is not None
        now = time.time()
        if outcomes is None:
            self.breaker.released()
        elif any(isinstance(outcome, Delivered | Permanent) for outcome in outcomes):
            self.breaker.succeeded(now)
        elif any(isinstance(outcome, Transient) and outcome.retry_after is None for outcome in outcomes):
            self.breaker.failed(now)
        else:
            self.breaker.released()
