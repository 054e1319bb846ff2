"""Slow and greedy clients: a body that trickles in is cut off, and one subscriber or token cannot hold every stream.

Request heads have no timeout in tidings itself; ``tests/test_proxy.py`` tests the reverse proxy that gives them one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp
import pytest
from yarl import URL

from tests.conftest import ROOT_KEY

BODY_TIMEOUT = 1.0


async def test_a_body_that_trickles_in_is_answered_408_and_the_connection_closed(serve):
    api = await serve({"body_timeout": BODY_TIMEOUT})
    url = URL(api.base_url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    head = (
        "POST /v1/verifications HTTP/1.1\r\n"
        f"Host: {url.host}\r\nAuthorization: Bearer {ROOT_KEY}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    writer.write(head.encode() + b'{"to": ')
    started = time.monotonic()
    try:
        answer = await asyncio.wait_for(reader.read(), 10)  # until the server closes the connection
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
    assert b'"request_timeout"' in answer
    assert BODY_TIMEOUT <= waited < BODY_TIMEOUT + 3


async def test_a_body_that_arrives_in_time_is_taken(serve):
    api = await serve({"body_timeout": BODY_TIMEOUT, "verify": {"test_numbers": {"+15005550006": {"code": "123456"}}}})
    url = URL(api.base_url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    body = b'{"to": "+15005550006"}'
    writer.write(
        f"POST /v1/verifications HTTP/1.1\r\nHost: {url.host}\r\nAuthorization: Bearer {ROOT_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
    )
    for part in (body[:8], body[8:]):  # slowly, but whole within the time
        writer.write(part)
        await asyncio.sleep(BODY_TIMEOUT / 4)
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:200]


async def open_stream(api, name: str, token: str | None = None):
    """An open SSE stream (its opening read), or the refusal's answer."""
    path = f"/v1/subscribers/{name}/stream"
    if token is not None:
        path += f"?token={token}"
        headers = {}
    else:
        headers = {"Authorization": f"Bearer {ROOT_KEY}"}
    response = await api.session.get(path, headers=headers)
    if response.status == 200:
        await response.content.readline()
    return response


async def test_one_token_holds_at_most_max_per_token_streams(serve):
    api = await serve({"streams": {"max_per_token": 3, "max_per_subscriber": 10, "heartbeat": 0.1}})
    await api.call("PUT", "/v1/subscribers/ada", {})
    token = (await api.post("/v1/subscribers/ada/tokens")).body["token"]
    other = (await api.post("/v1/subscribers/ada/tokens", {"ttl": 600})).body["token"]
    opened = [await open_stream(api, "ada", token) for _ in range(3)]
    try:
        assert [response.status for response in opened] == [200, 200, 200]
        refused = await open_stream(api, "ada", token)
        body = await refused.json()
        assert refused.status == 429 and body["error"]["code"] == "stream_limit_reached"
        assert refused.headers["Retry-After"] == "5" and body["error"]["retry_after"] == 5
        assert token not in body["error"]["message"]
        another = await open_stream(api, "ada", other)  # another token of the same subscriber has its own room
        assert another.status == 200
        another.close()
        opened.pop().close()  # a stream that ends gives its room back (noticed at the next heartbeat)
        for _ in range(50):
            again = await open_stream(api, "ada", token)
            if again.status == 200:
                break
            again.close()
            await asyncio.sleep(0.05)
        assert again.status == 200
        opened.append(again)
    finally:
        for response in opened:
            response.close()


async def test_one_subscriber_holds_at_most_max_per_subscriber_streams_however_opened(serve):
    api = await serve({"streams": {"max_per_subscriber": 2, "max_per_token": 0}})
    for name in ("ada", "bob"):
        await api.call("PUT", f"/v1/subscribers/{name}", {})
    token = (await api.post("/v1/subscribers/ada/tokens")).body["token"]
    opened = [await open_stream(api, "ada"), await open_stream(api, "ada", token)]
    try:
        assert [response.status for response in opened] == [200, 200]
        for refused in (await open_stream(api, "ada"), await open_stream(api, "ada", token)):
            assert refused.status == 429 and (await refused.json())["error"]["code"] == "stream_limit_reached"
        with pytest.raises(aiohttp.WSServerHandshakeError) as handshake:
            await api.session.ws_connect(f"/v1/subscribers/ada/ws?token={token}")
        assert handshake.value.status == 429
        other = await open_stream(api, "bob")  # the cap is each subscriber's own
        assert other.status == 200
        other.close()
    finally:
        for response in opened:
            response.close()


async def test_500_streams_with_one_token_are_not_all_taken(serve):
    api = await serve()
    await api.call("PUT", "/v1/subscribers/ada", {})
    token = (await api.post("/v1/subscribers/ada/tokens")).body["token"]
    answers = await asyncio.gather(*(open_stream(api, "ada", token) for _ in range(500)))
    try:
        statuses = [response.status for response in answers]
        assert statuses.count(200) == 10 and statuses.count(429) == 490
    finally:
        for response in answers:
            response.close()
