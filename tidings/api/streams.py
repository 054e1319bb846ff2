"""Live streams: one subscriber's messages over Server-Sent Events or WebSocket, as they are sent.

A client that reconnects names the last message it has (``Last-Event-ID`` or ``?since=``) and first gets what it
missed from the message cache (``?since=all``: the whole cache); a new connection gets what is sent from then on. The
connection is registered before the cache is read, so nothing sent in between is lost; what arrives both ways is
sent once. Everything that can fail is done before the answer's head is sent, so that a failure is still answered
as an error rather than written into the stream.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

from aiohttp import web

from tidings.api.auth import authorize
from tidings.api.message_models import MessageEvent
from tidings.api.routing import Param, Reply, Router
from tidings.api.state import STATE, State
from tidings.api.subscribers import SUBSCRIBER_ID
from tidings.channels.stream import Listener, StreamEvent
from tidings.core.push import NAME, Message
from tidings.errors import InvalidInput, NotFound, RateLimited, Unauthorized, Unavailable
from tidings.services.messages import encode
from tidings.services.subscribers import checked_id

router = Router(head=False)  # a stream never ends, so a HEAD would never be answered as done
TAG = "streams"
TOKEN = Param(
    "A subscriber token (`stk_...`) instead of an API key, for browsers (EventSource sets no headers).",
    {"type": "string", "pattern": r"^stk_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"},
)
SINCE = Param(
    "Replay the cached messages after this message id (`all`: the whole cache); without it, or empty, only new ones.",
    {"type": "string", "pattern": "^[A-Za-z0-9._:-]{0,128}$"},
)
LAST_EVENT_ID = Param("What a reconnecting EventSource sends: as `since`, which it overrides.", SINCE.schema)
ALL = "all"
ERRORS = (401, 403, 404, 429, 503)
EVENTS = Reply(
    "The subscriber's messages as they are sent, one event each, its `id` the message's.",
    "text/event-stream",
    {
        "type": "object",
        "required": ["id", "data"],
        "properties": {
            "id": {"type": "string"},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": f"#/components/schemas/{MessageEvent.__name__}"},
            },
        },
    },
    models=(MessageEvent,),
)
FRAMES = Reply(
    f"The connection is a WebSocket: one text frame per message, a `{MessageEvent.__name__}` as JSON.",
    models=(MessageEvent,),
)
OPENING = b"retry: 2000\n"
"""How soon to reconnect, without the blank line that ends an event: every event a client sees is a message
(several clients, httpx-sse among them, hand a block without data on as an event with empty data)."""


@router.route(
    "GET",
    "/v1/subscribers/{id}/stream",
    summary="Server-Sent Events: the subscriber's messages, live (API key with `read`, or `?token=`)",
    scope=None,
    tag=TAG,
    answers={200: EVENTS},
    errors=ERRORS,
    params={"id": SUBSCRIBER_ID},
    query={"token": TOKEN, "since": SINCE},
    headers={"Last-Event-ID": LAST_EVENT_ID},
)
async def sse(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    subscriber_id, token = await _authorized(request)
    since = _since(request.query.get("since"), "since")
    if request.headers.get("Last-Event-ID"):  # a reconnecting EventSource's own, which knows best
        since = _since(request.headers["Last-Event-ID"], "Last-Event-ID")
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    if request.version >= (1, 1):
        response.enable_chunked_encoding()  # said here, so that live events can be framed the same way
    kind = "sse-chunked" if response.chunked else "sse"
    async with _listening(request, subscriber_id, kind, token) as listener:
        missed = await _missed(state, subscriber_id, since)
        await response.prepare(request)
        await response.write(OPENING + b"".join(_event(message).framed("sse") for message in missed))
        listener.go_live({message.id for message in missed})
        await listener.done
    return response


@router.route(
    "GET",
    "/v1/subscribers/{id}/ws",
    summary="WebSocket: the subscriber's messages, live, one JSON text frame each (`?since=` to replay)",
    scope=None,
    tag=TAG,
    answers={101: FRAMES},
    errors=ERRORS,
    params={"id": SUBSCRIBER_ID},
    query={"token": TOKEN, "since": SINCE},
)
async def websocket(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    subscriber_id, token = await _authorized(request)
    since = _since(request.query.get("since"), "since")
    ws = web.WebSocketResponse(heartbeat=state.settings.streams.heartbeat, compress=False)
    async with _listening(request, subscriber_id, "ws", token) as listener:
        missed = await _missed(state, subscriber_id, since)
        await ws.prepare(request)
        for message in missed:
            await ws.send_str(_event(message).data.decode())
        listener.go_live({message.id for message in missed})
        async for _ in ws:  # what the client sends is ignored; reading answers its pings and sees it close
            pass
    return ws


@contextlib.asynccontextmanager
async def _listening(request: web.Request, subscriber_id: str, kind: str, token: str | None) -> AsyncIterator[Listener]:
    """Registered before the cache is read, so nothing sent meanwhile is missed; gone when the stream ends."""
    hub = request.app[STATE].hub
    assert request.transport is not None
    listener = hub.listen(subscriber_id, request.transport, kind, token)
    try:
        yield listener
    except ConnectionError:  # the client went away while its replay was being written
        pass
    finally:
        hub.leave(listener)


async def _authorized(request: web.Request) -> tuple[str, str | None]:
    """The subscriber id, if the caller may open one more of its streams (a key with ``read``, or that subscriber's
    token), and the token it came with. Checked after the last wait, so that the stream is registered before any
    other request can take the room it was given."""
    state = request.app[STATE]
    subscriber_id = checked_id(request.match_info["id"])
    header = request.headers.get("Authorization", "")
    presented = request.query.get("token") or header.partition(" ")[2].strip()
    token = None
    if presented.startswith("stk_"):
        if state.tokens.subscriber(presented, time.time()) != subscriber_id:
            raise Unauthorized("the subscriber token is not valid for this stream", code="invalid_token")
        token = presented
    elif "token" in request.query:
        raise Unauthorized("`token` takes a subscriber token (stk_...)", code="invalid_token")
    else:
        await authorize(request, "read")
    if await state.push.get_subscriber(subscriber_id) is None:
        raise NotFound(f"no subscriber {subscriber_id!r}", code="subscriber_not_found")
    if state.hub.full:
        raise Unavailable(
            "this server holds as many streams as it can; try again shortly or connect to another node",
            code="too_many_streams",
            retry_after=5,
        )
    crowded = state.hub.crowded(subscriber_id, token)
    if crowded is not None:
        raise RateLimited(f"{crowded}; close one first", code="stream_limit_reached", retry_after=5)
    return subscriber_id, token


def _since(raw: str | None, name: str) -> str | None:
    """A message id, ``ALL``, or None (nothing to replay). An id that is not in the cache (any more) replays all of
    it, so any id of the right shape is taken."""
    if not raw:
        return None
    if raw != ALL and not NAME.fullmatch(raw):
        raise InvalidInput(f"{name}: a message id (msg_...) or `all`", field=name)
    return raw


async def _missed(state: State, subscriber_id: str, since: str | None) -> list[Message]:
    """What to replay: a message past its ``ttl`` is no longer worth delivering, so it is not replayed either."""
    if since is None:
        return []
    streams = state.settings.streams
    after = None if since == ALL else since
    now = time.time()
    cached = await state.push.stream_since(subscriber_id, after, streams.cache_size, now - streams.cache_age)
    return [message for message in cached if message.expires_at > now]


def _event(message: Message) -> StreamEvent:
    return StreamEvent(message.id, encode(message.event()))
