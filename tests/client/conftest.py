"""A proxy in front of a real tidings that can fail on demand: the network faults a client must survive."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import ROOT_KEY, merge
from tests.helpers import TEST_CONFIG


@dataclass
class Faults:
    """What the proxy does to the next requests. A fault ``after`` forwarding means the server did the work and
    the client never heard: the case idempotency keys exist for."""

    after: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    """Answers (status, headers) given instead of the server's, once each, to the next requests."""
    cut: asyncio.Event = field(default_factory=asyncio.Event)
    """Set: every stream open through the proxy is dropped."""
    forwarded: list[tuple[str, str, str | None]] = field(default_factory=list)
    """(method, path, Idempotency-Key) of each request forwarded."""


def proxy_app(upstream: str, faults: Faults) -> web.Application:
    session: aiohttp.ClientSession | None = None

    async def forward(request: web.Request) -> web.StreamResponse:
        nonlocal session
        session = session or aiohttp.ClientSession()
        headers = {name: value for name, value in request.headers.items() if name.lower() != "host"}
        faults.forwarded.append((request.method, request.path, request.headers.get("Idempotency-Key")))
        async with session.request(
            request.method, upstream + request.path_qs, data=await request.read(), headers=headers,
            timeout=aiohttp.ClientTimeout(total=None),
        ) as answer:  # fmt: skip
            if answer.headers.get("Content-Type", "").startswith("text/event-stream"):
                return await _stream(request, answer, faults.cut)
            body = await answer.read()
            if faults.after:
                status, extra = faults.after.pop(0)
                return web.json_response({"error": {"code": "injected", "message": "injected"}}, status=status,
                                         headers=extra)  # fmt: skip
            hop = ("content-length", "transfer-encoding", "content-encoding", "connection", "date", "server")
            kept = {name: value for name, value in answer.headers.items() if name.lower() not in hop}
            return web.Response(status=answer.status, body=body, headers=kept)

    async def closing(app: web.Application) -> None:
        if session is not None:
            await session.close()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    app.on_cleanup.append(closing)
    return app


async def _stream(request: web.Request, answer: aiohttp.ClientResponse, cut: asyncio.Event) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    reading = asyncio.ensure_future(cut.wait())
    try:
        while True:
            chunk = asyncio.ensure_future(answer.content.readany())
            await asyncio.wait([chunk, reading], return_when=asyncio.FIRST_COMPLETED)
            if reading.done():
                chunk.cancel()
                assert request.transport is not None
                request.transport.close()  # dropped, as a flaky network drops it
                return response
            data = chunk.result()
            if not data:
                return response
            await response.write(data)
    finally:
        reading.cancel()


@pytest.fixture
async def tidings(serve, run_app) -> Callable[..., Awaitable[tuple[str, Faults]]]:
    """A real tidings (with the test number) behind a proxy; returns the proxy's URL and its faults."""

    async def start(config: dict | None = None) -> tuple[str, Faults]:
        api = await serve(merge(TEST_CONFIG, config or {}))
        faults = Faults()
        return await run_app(proxy_app(api.base_url.rstrip("/"), faults)), faults

    return start


KEY = ROOT_KEY
