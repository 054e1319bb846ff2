"""A webhook receiver for tests and benchmarks: records what arrives, checks its Standard Webhooks signature, and
misbehaves on demand (slow answers, a share of 500s, a fixed status, or dead).

    app = create_app(secret_for=lambda path: SECRET)
    app[RECEIVER].dead = True   # from now on every connection is dropped without an answer
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass(frozen=True, slots=True)
class Hook:
    """One request as it arrived. ``verified`` is None when no secret was known for its path."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    verified: bool | None

    @property
    def id(self) -> str | None:
        return self.headers.get("webhook-id")


@dataclass
class Receiver:
    """The state of one running receiver; read and steer it in a test as ``app[RECEIVER]``."""

    secret_for: Callable[[str], str | None] | None = None
    failure_rate: float = 0.0
    """Share of requests (0..1) answered 500."""
    latency: float = 0.0
    status: int | None = None
    """Answer every request with this status instead (a 3xx points ``Location`` at ``/moved``)."""
    seed: int = 0
    dead: bool = False
    """Drop every connection without an answer, as a crashed host would."""
    received: list[Hook] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError("failure_rate is a share between 0 and 1")
        self._random = random.Random(self.seed)

    def ids(self) -> list[str | None]:
        return [hook.id for hook in self.received]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.received.append(Hook(request.path, headers, body, time.time(), self._verify(request.path, headers, body)))
        if self.dead:
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=503)  # for the log: the connection is gone before it is written
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if self.received[-1].verified is False:
            return web.json_response({"error": "invalid signature"}, status=401)
        if self.failure_rate > 0 and self._random.random() < self.failure_rate:
            return web.json_response({"error": "injected failure"}, status=500)
        if self.status is not None:
            location = {"Location": "/moved"} if 300 <= self.status < 400 else {}
            return web.Response(status=self.status, headers=location)
        return web.Response(status=204)

    def _verify(self, path: str, headers: dict[str, str], body: bytes) -> bool | None:
        secret = self.secret_for(path) if self.secret_for else None
        if secret is None:
            return None
        try:
            Webhook(secret).verify(body, headers, json_parse=False)
        except (WebhookVerificationError, ValueError):
            return False
        return True


RECEIVER = web.AppKey("receiver", Receiver)


def create_app(
    secret_for: Callable[[str], str | None] | None = None,
    failure_rate: float = 0.0,
    latency: float = 0.0,
    status: int | None = None,
    seed: int = 0,
) -> web.Application:
    """A receiver answering a POST to any path; ``GET /_receiver/count`` tells another process how many arrived."""
    receiver = Receiver(secret_for, failure_rate, latency, status, seed)
    app = web.Application()
    app[RECEIVER] = receiver

    async def count(request: web.Request) -> web.Response:
        return web.json_response({"received": len(receiver.received)})

    app.router.add_get("/_receiver/count", count)
    app.router.add_post("/{path:.*}", receiver.handle)
    return app
