"""What every emulator shares: latency, injected failures, and a record of the messages it accepted.

Handlers stay light (a sleep, a few checks, an append) so one emulator process can hold tens of thousands of slow
requests open at once, as a busy provider would.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import asdict, dataclass, field

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Received:
    """One accepted message: where it went, what it said, when it arrived, and the sender's idempotency id."""

    to: str
    text: str
    at: float
    id: str | None = None


@dataclass
class Emulator:
    """The state of one running emulator; read it in a test as ``app[EMULATOR]``."""

    latency: float = 0.0
    """Seconds to wait before answering, as a slow provider would."""
    failure_rate: float = 0.0
    """Share of requests (0..1) answered with the provider's own rate-limit or system error."""
    fail_first: int = 0
    """Answer the first N requests with that error, for deterministic retry tests."""
    seed: int = 0
    """Seed of the generator that picks which requests fail, so a run can be repeated."""
    received: list[Received] = field(default_factory=list)
    requests: int = 0
    down_until: float = 0.0
    """Until this ``time.monotonic()``, every request is answered with the failure: an outage (see ``outage``)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError("failure_rate is a share between 0 and 1")
        self._random = random.Random(self.seed)

    def outage(self, seconds: float) -> None:
        """Fail every request for the next ``seconds``, as a provider that is down does."""
        self.down_until = time.monotonic() + seconds

    async def arrive(self) -> bool:
        """Count a request and wait the latency; True when this one is to be answered with a failure."""
        self.requests += 1
        failing = (
            self.requests <= self.fail_first
            or time.monotonic() < self.down_until
            or (self.failure_rate > 0 and self._random.random() < self.failure_rate)
        )
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        return failing

    def accept(self, to: str, text: str, id: str | None = None) -> None:
        self.received.append(Received(to, text, time.time(), id))

    def to(self, number: str) -> list[Received]:
        """The messages accepted for one address."""
        return [message for message in self.received if message.to == number]

    def reset(self) -> None:
        self.received.clear()
        self.requests = 0


EMULATOR = web.AppKey("emulator", Emulator)


def application(emulator: Emulator) -> web.Application:
    """An application holding ``emulator`` under ``EMULATOR``, with routes to read and clear what it accepted from
    another process (``GET /_emulator/received``, ``POST /_emulator/reset``) and to take it down for a while
    (``POST /_emulator/outage?seconds=20``); each module adds the provider's routes."""
    app = web.Application()
    app[EMULATOR] = emulator

    async def received(request: web.Request) -> web.Response:
        return web.json_response([asdict(message) for message in emulator.received])

    async def reset(request: web.Request) -> web.Response:
        emulator.reset()
        return web.json_response({"ok": True})

    async def outage(request: web.Request) -> web.Response:
        try:
            seconds = float(request.query["seconds"])
        except (KeyError, ValueError):
            return web.json_response({"error": "?seconds=<number> says how long"}, status=400)
        emulator.outage(seconds)
        return web.json_response({"ok": True, "seconds": seconds})

    app.router.add_get("/_emulator/received", received)
    app.router.add_post("/_emulator/reset", reset)
    app.router.add_post("/_emulator/outage", outage)
    return app
