"""Fixtures that run the real thing on loopback: tidings' own server on an SQLite file in a temporary folder, and
local emulators of the providers it talks to."""

from __future__ import annotations

import io
import os
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestServer

from tidings.config import validate_providers
from tidings.core.settings import Settings
from tidings.wiring import build_app

ROOT_KEY = "tk_root-key-for-tests-only-0123456789abcdef"
REDIS_URL = os.environ.get("TIDINGS_TEST_REDIS", "redis://127.0.0.1:6379/15")
"""The Redis the tests use; its database is emptied before each test that uses it."""
CODE = re.compile(r"(?<!\d)(\d{4,10})(?!\d)")


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_url() -> str:
    """An empty Redis database. Without Redis the Redis tests skip, except in CI, where they must run."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        message = f"Redis is not answering at {REDIS_URL} ({exc}); start redis-server to run the Redis tests"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    finally:
        client.close()
    return REDIS_URL


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass
class Answer:
    status: int
    body: Any
    headers: Any

    @property
    def error(self) -> str | None:
        return self._error.get("code")

    @property
    def message(self) -> str | None:
        return self._error.get("message")

    @property
    def _error(self) -> dict[str, Any]:
        return self.body["error"] if isinstance(self.body, dict) and "error" in self.body else {}


class Api:
    """A caller of tidings' HTTP API, as a user's script would be."""

    def __init__(self, base_url: str, key: str | None = ROOT_KEY) -> None:
        self.base_url = base_url
        self.key = key
        self.session = aiohttp.ClientSession(base_url)

    async def call(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        key: str | None = "default",
        headers: dict[str, str] | None = None,
        data: bytes | str | io.BytesIO | None = None,
    ) -> Answer:
        sent = dict(headers or {})
        key = self.key if key == "default" else key
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        async with self.session.request(method, path, json=json, data=data, headers=sent) as response:
            raw = await response.read()
            try:
                body: Any = await response.json(content_type=None) if raw else None
            except ValueError:
                body = raw.decode()
            return Answer(response.status, body, response.headers)

    async def post(self, path: str, json: Any = None, **options: Any) -> Answer:
        return await self.call("POST", path, json, **options)

    async def get(self, path: str, **options: Any) -> Answer:
        return await self.call("GET", path, **options)

    async def close(self) -> None:
        await self.session.close()


def base_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "database": f"sqlite:///{tmp_path}/tidings.db",
        "api_key": ROOT_KEY,
        "secret_key": "test-secret",
        "webhooks": {"allow_private_networks": True},
        "dispatch": {"retry_base_delay": 0.05, "retry_max_delay": 0.5},
    }


class ServedAsInProduction(TestServer):
    """aiohttp's test server cancels a handler whose client left; ``tidings serve`` (``web.run_app``) does not."""

    async def _make_runner(self, **kwargs: Any) -> web.BaseRunner:
        return await super()._make_runner(**{**kwargs, "handler_cancellation": False})


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Api]]]:
    """Start tidings with settings merged over the test defaults; stopped at the end of the test."""
    running: list[tuple[TestServer, Api]] = []

    async def start(config: dict[str, Any] | None = None) -> Api:
        settings = Settings.model_validate(merge(base_config(tmp_path), config or {}))
        validate_providers(settings)
        server = ServedAsInProduction(build_app(settings), host="127.0.0.1", port=0)
        await server.start_server()
        api = Api(str(server.make_url("")))
        running.append((server, api))
        return api

    yield start
    for server, api in reversed(running):
        await api.close()
        await server.close()


@pytest.fixture
async def run_app() -> AsyncIterator[Callable[[web.Application], Awaitable[str]]]:
    """Serve any aiohttp application on loopback; returns its base URL."""
    servers: list[TestServer] = []

    async def start(app: web.Application) -> str:
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield start
    for server in servers:
        await server.close()
