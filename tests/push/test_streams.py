"""Live streams over SSE and WebSocket: live delivery, replay after a reconnect, tokens, slow clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket

import aiohttp
import websockets

from tests.conftest import ROOT_KEY
from tests.helpers import finished


async def sse_events(response: aiohttp.ClientResponse, count: int, timeout: float = 10.0) -> list[dict]:
    """Read ``count`` message events off an SSE response, as strictly as httpx-sse does: it hands on every blank
    line after a field, or after any ``id:`` seen before, as an event, so each of those must carry a message."""
    events: list[dict] = []
    current: dict = {}
    seen_id = False

    async def read() -> None:
        nonlocal seen_id
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line == "":
                assert "data" in current or not (current or seen_id), f"an event without data: {current}"
                seen_id = seen_id or "id" in current
                events.append({"id": current.get("id"), **json.loads(current["data"])})
                if len(events) == count:
                    return
                current.clear()
            elif not line.startswith(":"):
                key, _, value = line.partition(": ")
                current[key] = value

    await asyncio.wait_for(read(), timeout)
    return events


async def make_subscriber(api, name: str) -> None:
    assert (await api.call("PUT", f"/v1/subscribers/{name}", {})).status in (200, 201)


async def push(api, name: str, body: str) -> str:
    sent = await api.post("/v1/messages", {"to": [name], "body": body, "channels": ["stream"]})
    assert sent.status == 202, sent.body
    return sent.body["id"]


async def test_sse_live_and_replay_with_last_event_id(serve):
    api = await serve()
    await make_subscriber(api, "ada")
    headers = {"Authorization": f"Bearer {ROOT_KEY}"}
    async with api.session.get("/v1/subscribers/ada/stream", headers=headers) as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/event-stream")
        first = await push(api, "ada", "one")
        [event] = await sse_events(response, 1)
        assert event["id"] == first and event["body"] == "one"
    second = await push(api, "ada", "two")
    third = await push(api, "ada", "three")
    await finished(api, third)
    async with api.session.get("/v1/subscribers/ada/stream", headers={**headers, "Last-Event-ID": first}) as response:
        events = await sse_events(response, 2)
        assert [e["id"] for e in events] == [second, third]
        fourth = await push(api, "ada", "four")
        [live] = await sse_events(response, 1)
        assert live["id"] == fourth


async def test_websocket_live_and_replay_with_since(serve):
    api = await serve()
    await make_subscriber(api, "bob")
    url = api.base_url.replace("http", "ws", 1).rstrip("/") + "/v1/subscribers/bob/ws"
    headers = {"Authorization": f"Bearer {ROOT_KEY}"}
    async with websockets.connect(url, additional_headers=headers) as ws:
        first = await push(api, "bob", "one")
        event = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert event["id"] == first and event["body"] == "one"
    second = await push(api, "bob", "two")
    await finished(api, second)
    async with websockets.connect(f"{url}?since={first}", additional_headers=headers) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["id"] == second
        third = await push(api, "bob", "three")
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["id"] == third


async def test_a_subscriber_token_opens_that_stream_alone(serve):
    api = await serve()
    await make_subscriber(api, "ada")
    await make_subscriber(api, "eve")
    issued = await api.post("/v1/subscribers/ada/tokens", {"ttl": 120})
    assert issued.status == 201 and issued.body["token"].startswith("stk_")
    token = issued.body["token"]
    async with api.session.get(f"/v1/subscribers/ada/stream?token={token}") as response:
        assert response.status == 200
        sent = await push(api, "ada", "hi")
        assert (await sse_events(response, 1))[0]["id"] == sent
    other = await api.get(f"/v1/subscribers/eve/stream?token={token}", key=None)
    assert other.status == 401 and other.error == "invalid_token"
    forged = await api.get(f"/v1/subscribers/ada/stream?token={token[:-2]}xx", key=None)
    assert forged.status == 401
    assert (await api.get("/v1/subscribers/ada/stream", key=None)).status == 401
    assert (await api.get("/v1/subscribers/nobody/stream")).status == 404


async def test_a_slow_client_is_dropped_without_holding_up_the_others(serve):
    api = await serve({"streams": {"buffer": 1024 * 1024}})
    await make_subscriber(api, "slow")
    await make_subscriber(api, "fast")
    headers = {"Authorization": f"Bearer {ROOT_KEY}"}
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", int(api.base_url.rstrip("/").rsplit(":", 1)[1])))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(
        f"GET /v1/subscribers/slow/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ROOT_KEY}\r\n\r\n".encode()
    )
    await reader.readuntil(b"\r\n\r\n")  # the headers; then it never reads again
    blob = {"blob": "x" * 60_000}
    async with api.session.get("/v1/subscribers/fast/stream", headers=headers) as fast:
        reading = asyncio.create_task(sse_events(fast, 150, timeout=30))
        ids = []
        for _ in range(150):
            sent = await api.post("/v1/messages", {"to": ["slow", "fast"], "data": blob, "channels": ["stream"]})
            ids.append(sent.body["id"])
        assert [e["id"] for e in await reading] == ids
    metrics = (await api.get("/metrics")).body
    assert "tidings_stream_slow_drops 1.0" in metrics
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


async def test_idle_streams_get_heartbeats(serve):
    api = await serve({"streams": {"heartbeat": 0.1}})
    await make_subscriber(api, "ada")
    async with api.session.get("/v1/subscribers/ada/stream", headers={"Authorization": f"Bearer {ROOT_KEY}"}) as sse:
        lines = []
        while b": ping\n" not in lines:
            lines.append(await asyncio.wait_for(sse.content.readline(), 2))


async def test_every_event_a_client_sees_is_a_message_heartbeats_included(serve):
    api = await serve({"streams": {"heartbeat": 0.1}})
    await make_subscriber(api, "ada")
    async with api.session.get("/v1/subscribers/ada/stream", headers={"Authorization": f"Bearer {ROOT_KEY}"}) as sse:
        first = await push(api, "ada", "first")
        await asyncio.sleep(0.35)  # heartbeats after an id: a blank line after each would be an event to httpx-sse
        second = await push(api, "ada", "second")
        assert [e["id"] for e in await sse_events(sse, 2)] == [first, second]


async def test_replay_keeps_only_the_newest_cache_size_messages(serve):
    api = await serve({"streams": {"cache_size": 3}})
    await make_subscriber(api, "ada")
    ids = [await push(api, "ada", str(n)) for n in range(6)]
    for id in ids:
        await finished(api, id)
    headers = {"Authorization": f"Bearer {ROOT_KEY}", "Last-Event-ID": "msg_unknown"}
    async with api.session.get("/v1/subscribers/ada/stream", headers=headers) as sse:
        assert [e["id"] for e in await sse_events(sse, 3)] == ids[3:]


async def test_an_http_1_0_client_gets_unchunked_events(serve):
    api = await serve()
    await make_subscriber(api, "ada")
    port = int(api.base_url.rstrip("/").rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /v1/subscribers/ada/stream HTTP/1.0\r\nAuthorization: Bearer {ROOT_KEY}\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert b"chunked" not in head.lower()
    sent = await push(api, "ada", "old school")
    data = b""
    while b"old school" not in data:
        data += await asyncio.wait_for(reader.read(4096), 5)
    assert f"id: {sent}\nevent: message\ndata: ".encode() in data
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


async def test_a_full_server_turns_new_streams_away_with_503(serve):
    api = await serve({"streams": {"max_connections": 1}})
    await make_subscriber(api, "ada")
    headers = {"Authorization": f"Bearer {ROOT_KEY}"}
    async with api.session.get("/v1/subscribers/ada/stream", headers=headers) as first:
        assert first.status == 200
        await first.content.readline()
        second = await api.get("/v1/subscribers/ada/stream")
        assert second.status == 503 and second.error == "too_many_streams" and second.headers["Retry-After"] == "5"


async def test_a_new_connection_gets_new_messages_and_since_all_the_cache(serve):
    api = await serve()
    await make_subscriber(api, "ada")
    headers = {"Authorization": f"Bearer {ROOT_KEY}"}
    earlier = await push(api, "ada", "earlier")
    await finished(api, earlier)
    async with api.session.get("/v1/subscribers/ada/stream", headers=headers) as response:
        assert response.headers["X-Request-Id"]
        assert await asyncio.wait_for(response.content.readline(), 5) == b"retry: 2000\n"
        later = await push(api, "ada", "later")
        assert [e["id"] for e in await sse_events(response, 1)] == [later]
    async with api.session.get("/v1/subscribers/ada/stream", headers={**headers, "Last-Event-ID": earlier}) as response:
        assert [e["id"] for e in await sse_events(response, 1)] == [later]
    async with api.session.get("/v1/subscribers/ada/stream?since=all", headers=headers) as response:
        assert [e["id"] for e in await sse_events(response, 2)] == [earlier, later]


async def test_a_message_past_its_ttl_is_not_replayed(serve):
    api = await serve()
    await make_subscriber(api, "ada")
    await api.post("/v1/messages", {"to": ["ada"], "body": "brief", "ttl": 1, "channels": ["stream"]})
    lasting = await push(api, "ada", "lasting")
    await asyncio.sleep(1.2)
    headers = {"Authorization": f"Bearer {ROOT_KEY}"}
    async with api.session.get("/v1/subscribers/ada/stream?since=all", headers=headers) as response:
        assert [e["id"] for e in await sse_events(response, 1)] == [lasting]


async def test_a_bad_replay_position_is_refused_before_the_stream_starts(serve):
    api = await serve()
    await make_subscriber(api, "ada")
    for headers in ({"Last-Event-ID": "not an id"}, {"Last-Event-ID": "msg_\u00e9"}):
        refused = await api.get("/v1/subscribers/ada/stream", headers=headers)
        assert refused.status == 400 and refused.body["error"]["field"] == "Last-Event-ID"
        assert refused.headers["X-Request-Id"]
    refused = await api.get("/v1/subscribers/ada/ws?since=../x")
    assert refused.status == 400 and refused.body["error"]["field"] == "since"


async def test_a_websocket_handshake_carries_a_request_id(serve):
    api = await serve()
    await make_subscriber(api, "bob")
    url = api.base_url.replace("http", "ws", 1).rstrip("/") + "/v1/subscribers/bob/ws"
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {ROOT_KEY}"}) as ws:
        assert ws.response.headers["X-Request-Id"]
