"""Live streams: one subscriber's messages over Server-Sent Events or WebSocket, as they are sent.

A client that reconnects names the last message it has (``Last-Event-ID`` or ``?since=``) and first gets what it
missed from the message cache. The connection is registered before the cache is read, so nothing sent in between
is lost; what arrives both ways is sent once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import WSMsgType, web

from tidings.api.auth import authorize
from tidings.api.routing import Router
from tidings.api.state import STATE, State
from tidings.channels.stream import Listener, StreamEvent
from tidings.core.push import Message
from tidings.errors import Unauthorized
from tidings.messages import encode
from tidings.subscribers import checked_id

router = Router()
TAG = "streams"
AUTH = {"token": "A subscriber token (`stk_...`) instead of an API key, for browsers (EventSource sets no headers)."}


@router.route(
    "GET",
    "/v1/subscribers/{id}/stream",
    summary="Server-Sent Events: the subscriber's messages, live (API key with `read`, or `?token=`)",
    scope=None,
    tag=TAG,
    errors=(400, 401, 403, 404),
    query={**AUTH, "since": "Replay the cached messages after this message id (as `Last-Event-ID` does)."},
)
async def sse(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    subscriber_id = await _authorized(request)
    since = request.headers.get("Last-Event-ID") or request.query.get("since")
    listener, missed = await _open(state, subscriber_id, since)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    try:
        await response.prepare(request)
        listener.on_drop = _aborter(request)
        await response.write(b"retry: 2000\n\n" + b"".join(_event(message).sse for message in missed))
        async for event in _live(listener, missed):
            await response.write(event.sse)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        state.hub.leave(listener)
    return response


@router.route(
    "GET",
    "/v1/subscribers/{id}/ws",
    summary="WebSocket: the subscriber's messages, live, one JSON text frame each (`?since=` to replay)",
    scope=None,
    tag=TAG,
    errors=(400, 401, 403, 404),
    query={**AUTH, "since": "Replay the cached messages after this message id."},
)
async def websocket(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    subscriber_id = await _authorized(request)
    listener, missed = await _open(state, subscriber_id, request.query.get("since"))
    ws = web.WebSocketResponse(heartbeat=state.settings.streams.heartbeat)
    try:
        await ws.prepare(request)
        listener.on_drop = _aborter(request)
        reading = asyncio.create_task(_drain(ws, listener))
        try:
            for message in missed:
                await ws.send_str(_event(message).data.decode())
            async for event in _live(listener, missed):
                if event.id is not None:  # aiohttp's own heartbeat keeps a WebSocket alive
                    await ws.send_str(event.data.decode())
        finally:
            reading.cancel()
            await ws.close()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        state.hub.leave(listener)
    return ws


async def _authorized(request: web.Request) -> str:
    """The subscriber id, if the caller may read its stream: a key with ``read``, or that subscriber's token."""
    state = request.app[STATE]
    subscriber_id = checked_id(request.match_info["id"])
    header = request.headers.get("Authorization", "")
    presented = request.query.get("token") or header.partition(" ")[2].strip()
    if presented.startswith("stk_"):
        if state.tokens.subscriber(presented, time.time()) != subscriber_id:
            raise Unauthorized("the subscriber token is not valid for this stream", code="invalid_token")
    elif "token" in request.query:
        raise Unauthorized("`token` takes a subscriber token (stk_...)", code="invalid_token")
    else:
        await authorize(request, "read")
    await state.subscribers.get(subscriber_id)  # 404 for an unknown subscriber
    return subscriber_id


async def _open(state: State, subscriber_id: str, since: str | None) -> tuple[Listener, list[Message]]:
    listener = state.hub.listen(subscriber_id)
    streams = state.settings.streams
    try:
        missed = await state.push.stream_since(
            subscriber_id, since, streams.cache_size, time.time() - streams.cache_age
        )
    except BaseException:
        state.hub.leave(listener)
        raise
    return listener, missed


async def _live(listener: Listener, missed: list[Message]) -> AsyncIterator[StreamEvent]:
    replayed = {message.id for message in missed}
    while (event := await listener.next()) is not None:
        if event.id in replayed:
            replayed.discard(event.id)
            continue
        yield event


def _event(message: Message) -> StreamEvent:
    return StreamEvent(message.id, encode(message.event()))


def _aborter(request: web.Request) -> Callable[[], None]:
    def abort() -> None:
        if request.transport is not None:
            request.transport.abort()

    return abort


async def _drain(ws: web.WebSocketResponse, listener: Listener) -> None:
    """Read (and ignore) what the client sends, so control frames are answered; a close ends the stream."""
    with contextlib.suppress(Exception):
        async for message in ws:
            if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
    listener.close()
