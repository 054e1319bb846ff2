"""A webhook receiver that checks signatures, and helpers to make subscribers of it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.dispatch.conftest import yunpian_emulator  # noqa: F401 - a fixture these tests use too
from tidings.testing import webhooks
from tidings.testing.webhooks import Receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Hooks:
    def __init__(self, url: str, receiver: Receiver) -> None:
        self.url = url
        self.receiver = receiver

    def channel(self, name: str) -> dict[str, Any]:
        return {"type": "webhook", "url": f"{self.url}/hook/{name}", "secret": SECRET}

    def by_path(self) -> dict[str, list]:
        found: dict[str, list] = {}
        for hook in self.receiver.received:
            found.setdefault(hook.path, []).append(hook)
        return found


@pytest.fixture
def receiver(run_app) -> Callable[..., Awaitable[Hooks]]:
    async def start(**options: Any) -> Hooks:
        app = webhooks.create_app(secret_for=lambda path: SECRET, **options)
        return Hooks(await run_app(app), app[webhooks.RECEIVER])

    return start


async def subscribe(api, hooks: Hooks, names: list[str], **extra: Any) -> None:
    for name in names:
        answer = await api.call("PUT", f"/v1/subscribers/{name}", {"channels": [hooks.channel(name)], **extra})
        assert answer.status in (200, 201), answer.body
