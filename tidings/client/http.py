"""The one place the client talks HTTP: a pooled aiohttp session, the key, retries, pages and live streams.

A POST carries an ``Idempotency-Key`` made once per call, so that the retries of that call (after a timeout, a 503,
a dropped connection) are answered with the first answer rather than sending twice. 429 and 503 are retried after
the ``Retry-After`` the server gives, a bounded number of times, never waiting longer than ``max_wait`` at once.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

from tidings.client.errors import ConnectionFailed, TidingsError, error_for

DEFAULT_URL = "http://127.0.0.1:8000"
RETRIED = frozenset({429, 502, 503, 504})
STREAM_TIMEOUT = aiohttp.ClientTimeout(sock_connect=10, sock_read=60)
"""A stream has no end, but hears a heartbeat every 15 s (``streams.heartbeat``): a minute of silence is a dead
connection, opened again."""
IN_USE = "idempotency_key_in_use"
"""409 for a retry that came while the first request was still running: asking again gets the first answer."""


class Http:
    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        *,
        timeout: float,
        max_retries: int,
        max_wait: float,
    ) -> None:
        self.base_url = (base_url or os.environ.get("TIDINGS_URL") or DEFAULT_URL).rstrip("/")
        key = api_key if api_key is not None else os.environ.get("TIDINGS_API_KEY")
        self.headers = {"Accept": "application/json", "User-Agent": "tidings-client"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        self.timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 10.0))
        self.max_retries = max_retries
        self.max_wait = max_wait
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """Made on first use, inside the event loop that uses it."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), headers=self.headers, timeout=self.timeout
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """The answer's JSON (None for 204), or the API's error raised as a ``TidingsError``."""
        payload, _ = await self.exchange(method, path, body, params, idempotency_key)
        return payload

    async def exchange(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[Any, bool]:
        """``call``'s answer, and whether it is the replay of an earlier request's (same ``Idempotency-Key``)."""
        headers: dict[str, str] = {}
        if method == "POST":
            headers["Idempotency-Key"] = idempotency_key or uuid.uuid4().hex
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":"))
            headers["Content-Type"] = "application/json"
        query = {name: _text(value) for name, value in (params or {}).items() if value is not None}
        url = self.base_url + path
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                async with self.session.request(method, url, data=data, params=query, headers=headers) as answer:
                    if answer.status == 204:
                        return None, False
                    payload = await _json(answer)
                    if answer.status < 400:
                        return payload, answer.headers.get("Idempotent-Replayed") == "true"
                    error = error_for(answer.status, payload, answer.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = _unreachable(url, exc)
            if last or not _worth_retrying(error) or (error.retry_after or 0) > self.max_wait:
                raise error
            await asyncio.sleep(self._wait(error, attempt))
        raise AssertionError("unreachable")

    def _wait(self, error: TidingsError, attempt: int) -> float:
        if error.retry_after is not None:
            return min(error.retry_after, self.max_wait)
        return min(self.max_wait, 0.25 * 2**attempt * (0.5 + random.random() / 2))

    async def pages(self, path: str, items: str, params: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Every item of a paged list, page after page (``next_cursor``)."""
        cursor: str | None = None
        while True:
            page = await self.call("GET", path, params={**params, "cursor": cursor})
            for item in page[items]:
                yield item
            cursor = page.get("next_cursor")
            if not cursor:
                return

    async def events(self, path: str, since: str | None, reconnect_wait: float) -> AsyncIterator[dict[str, Any]]:
        """The events of a Server-Sent Events stream, for as long as it is iterated: a dropped connection is opened
        again with ``Last-Event-ID``, so nothing sent meanwhile is missed (the server replays it from its cache).
        An error that reconnecting cannot cure (401, 403, 404) is raised, and so is a failure to connect at all the
        first time (a wrong URL, a server that is down): only a stream that was open is waited for."""
        last_id = since
        failures = 0
        opened = False
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_id:
                headers["Last-Event-ID"] = last_id
            try:
                async with self.session.get(self.base_url + path, headers=headers, timeout=STREAM_TIMEOUT) as answer:
                    if answer.status >= 400:
                        error = error_for(answer.status, await _json(answer), answer.headers.get("Retry-After"))
                        if not _worth_retrying(error):
                            raise error
                        await asyncio.sleep(self._wait(error, failures))
                        failures += 1
                        continue
                    failures = 0
                    opened = True
                    async for event in _sse(answer.content):
                        last_id = event.get("id") or last_id
                        yield event
            except (aiohttp.ClientError, TimeoutError) as exc:
                if not opened:
                    raise _unreachable(self.base_url + path, exc) from None
            await asyncio.sleep(min(reconnect_wait * 2**failures, self.max_wait))
            failures += 1


async def _sse(content: aiohttp.StreamReader) -> AsyncIterator[dict[str, Any]]:
    """Each event's JSON ``data``; comments (heartbeats) and events without data are skipped."""
    data: list[str] = []
    async for raw in content:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield json.loads("\n".join(data))
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


async def _json(answer: aiohttp.ClientResponse) -> Any:
    try:
        return await answer.json(content_type=None)
    except ValueError:
        return None


def _worth_retrying(error: TidingsError) -> bool:
    return isinstance(error, ConnectionFailed) or error.status in RETRIED or error.code == IN_USE


def _unreachable(url: str, exc: BaseException) -> ConnectionFailed:
    if isinstance(exc, TimeoutError):
        return ConnectionFailed(f"no answer from {url} in time", code="timeout", status=0)
    return ConnectionFailed(f"cannot reach {url}: {exc}", code="connection_failed", status=0)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
