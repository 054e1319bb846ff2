"""Providers against what they talk to, on loopback: the emulators in ``tidings.testing``, a local SMTP server, and
a user's own HTTP gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import free_port
from tidings.outbound.client import HttpClient
from tidings.providers.base import Provider
from tidings.testing.emulator import EMULATOR, Emulator, Received

TIMEOUT = 1.0
"""The client's timeout in these tests; an emulator slower than this stands for a provider that does not answer."""


@dataclass
class Running:
    url: str
    state: Emulator

    @property
    def received(self) -> list[Received]:
        return self.state.received


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient(timeout=TIMEOUT)
    yield client
    await client.close()


@pytest.fixture
def emulate(run_app) -> Callable[[web.Application], Awaitable[Running]]:
    """Serve an emulator's application on 127.0.0.1 (a free port); returns its URL and its state."""

    async def start(app: web.Application) -> Running:
        return Running(await run_app(app), app[EMULATOR])

    return start


@pytest.fixture
def provider(http) -> Callable[..., Provider]:
    """A provider of the given class with settings as they would come from the configuration file."""

    def make(cls: type[Provider], **settings: Any) -> Provider:
        return cls(cls.Settings.model_validate(settings), http)

    return make


@pytest.fixture
def closed_url() -> str:
    """A loopback address where nothing listens: connections are refused."""
    return f"http://127.0.0.1:{free_port()}"
