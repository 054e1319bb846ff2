"""The CLI as a user runs it: ``python -m tidings ...`` in its own process, against a real tidings served in this
one (the ``serve`` fixture), with ``TIDINGS_URL`` and ``TIDINGS_API_KEY`` in its environment. The process is run
with asyncio so that the server keeps answering while the CLI waits for it."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import ROOT_KEY, Api, merge
from tests.helpers import TEST_CONFIG


@dataclass
class Done:
    status: int
    stdout: str
    stderr: str


def environment(url: str, key: str | None) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("TIDINGS_")}
    env["TIDINGS_URL"] = url
    if key is not None:
        env["TIDINGS_API_KEY"] = key
    env["COLUMNS"] = "200"
    return env


async def spawn(url: str, *args: str, key: str | None = ROOT_KEY) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tidings", *args, env=environment(url, key),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def finish(process: asyncio.subprocess.Process, timeout: float = 60) -> Done:
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return Done(process.returncode, stdout.decode(), stderr.decode())


class Cli:
    """``tidings`` against one server."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.url = api.base_url.rstrip("/")

    async def __call__(self, *args: str, key: str | None = ROOT_KEY) -> Done:
        done = await finish(await spawn(self.url, *args, key=key))
        assert "Traceback" not in done.stderr, done.stderr
        return done

    async def start(self, *args: str, key: str | None = ROOT_KEY) -> asyncio.subprocess.Process:
        return await spawn(self.url, *args, key=key)


@pytest.fixture
async def cli(serve) -> Callable[..., Awaitable[Cli]]:
    """A tidings with the test number (TEST_NUMBER, TEST_CODE), and the CLI pointed at it."""

    async def start(config: dict | None = None) -> Cli:
        return Cli(await serve(merge(TEST_CONFIG, config or {})))

    return start


async def put_subscribers(api: Api, ids: Sequence[str], body: dict | None = None, concurrency: int = 32) -> None:
    """Set up through the API, a bounded number of PUTs at a time."""
    pending = iter(ids)

    async def worker() -> None:
        for subscriber_id in pending:
            answer = await api.call("PUT", f"/v1/subscribers/{subscriber_id}", body or {})
            assert answer.status in (200, 201), answer.body

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def slow_proxy(upstream: str, delay: float) -> web.Application:
    """Forwards everything to ``upstream``, each ``POST /v1/messages`` ``delay`` seconds late: a push long enough
    to be stopped midway, however fast the server."""
    session: aiohttp.ClientSession | None = None

    async def forward(request: web.Request) -> web.Response:
        nonlocal session
        session = session or aiohttp.ClientSession()
        if request.method == "POST" and request.path == "/v1/messages":
            await asyncio.sleep(delay)
        headers = {name: value for name, value in request.headers.items() if name.lower() != "host"}
        async with session.request(
            request.method, upstream + request.path_qs, data=await request.read(), headers=headers
        ) as answer:
            body = await answer.read()
            return web.Response(status=answer.status, body=body, content_type="application/json")

    async def closing(app: web.Application) -> None:
        if session is not None:
            await session.close()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    app.on_cleanup.append(closing)
    return app
