"""What every emulator shares: latency, injected failures, and a record of the messages it accepted."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import asdict, dataclass, field

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Received:
    to: str
    text: str
    at: float
    id: str | None = None


@dataclass
class Emulator:
    latency: float = 0.0
    """Seconds to wait before answering, as a slow provider would."""
    failure_rate: float = 0.0
    """Share of requests answered with the provider's own transient error."""
    fail_first: int = 0
    """Answer the first N requests with that error, for deterministic retry tests."""
    seed: int = 0
    received: list[Received] = field(default_factory=list)
    requests: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    async def arrive(self) -> bool:
        """Count a request, wait the latency; True when this one is to fail."""
        self.requests += 1
        failing = self.requests <= self.fail_first or self._random.random() < self.failure_rate
        if self.latency:
            await asyncio.sleep(self.latency)
        return failing

    def accept(self, to: str, text: str, id: str | None = None) -> None:
        self.received.append(Received(to, text, time.time(), id))

    def to(self, number: str) -> list[Received]:
        return [message for message in self.received if message.to == number]


EMULATOR = web.AppKey("emulator", Emulator)


def application(emulator: Emulator) -> web.Application:
    """An application with the emulator's own introspection routes; the provider's routes are added by its module."""
    app = web.Application()
    app[EMULATOR] = emulator

    async def received(request: web.Request) -> web.Response:
        return web.json_response([asdict(message) for message in emulator.received])

    async def reset(request: web.Request) -> web.Response:
        emulator.received.clear()
        return web.json_response({"ok": True})

    app.router.add_get("/_emulator/received", received)
    app.router.add_post("/_emulator/reset", reset)
    return app
