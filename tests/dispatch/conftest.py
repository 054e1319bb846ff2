from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from tidings.testing import yunpian
from tidings.testing.emulator import EMULATOR, Emulator

APIKEY = "test-apikey"


class Running:
    def __init__(self, url: str, emulator: Emulator) -> None:
        self.url = url
        self.emulator = emulator

    def texts(self, number: str) -> list[str]:
        local = number.removeprefix("+86")
        return [message.text for message in self.emulator.received if message.to in (number, local)]


@pytest.fixture
def yunpian_emulator(run_app) -> Callable[..., Awaitable[Running]]:
    async def start(**options: Any) -> Running:
        app = yunpian.create_app(apikey=APIKEY, **options)
        return Running(await run_app(app), app[EMULATOR])

    return start


def yunpian_config(url: str, apikey: str = APIKEY, **verify: Any) -> dict[str, Any]:
    return {
        "verify": {"sms_providers": ["yunpian"], "resend_cooldown": 0, **verify},
        "providers": {"yunpian": {"base_url": url, "apikey": apikey}},
        "limits": {"per_ip_hour": 0, "per_range_hour": 0},
    }


@pytest.fixture
def gateway(run_app) -> Callable[..., Awaitable[tuple[str, list[dict]]]]:
    """A user's own SMS gateway, reached by the generic ``http`` provider: records JSON bodies, answers ``status``."""

    async def start(status: int = 200) -> tuple[str, list[dict]]:
        bodies: list[dict] = []

        async def receive(request: web.Request) -> web.Response:
            bodies.append(await request.json())
            return web.json_response({"ok": status < 300}, status=status)

        app = web.Application()
        app.router.add_post("/send", receive)
        return await run_app(app) + "/send", bodies

    return start
