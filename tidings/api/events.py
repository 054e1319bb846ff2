"""``GET /v1/events``: a live tail of what is being sent, for operators (the dashboard's). Each event is one try of
one send (a code's SMS, a delivery's webhook...): which job, for which verification or message, through which
provider, with what outcome. It holds no address, code or text.

It reads the log of attempts the store already keeps (on Redis, every node's), a page every half second, rather than
a channel of its own: a tail that nobody watches costs nothing, and one that is watched costs one small read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time

from aiohttp import web
from pydantic import BaseModel, Field

from tidings.api.routing import Param, Reply, Router
from tidings.api.state import STATE
from tidings.core.types import rfc3339
from tidings.errors import InvalidInput, RateLimited
from tidings.ports import LoggedAttempt

router = Router(head=False)  # a stream never ends
TAG = "operations"
POLL = 0.5
PAGE = 500
MAX_TAILS = 20
"""Event streams one process serves at once (then 429): each reads the store twice a second."""
STOPPING = web.AppKey("events_stopping", asyncio.Event)
CURSOR = {"type": "string", "pattern": "^[0-9]{1,20}(-[0-9]{1,20})?$"}
_CURSOR = re.compile(CURSOR["pattern"])


class SendEvent(BaseModel):
    job: str = Field(description="The send's job: a code's send (`snd_...`), a delivery (`dlv_...`)...")
    kind: str = Field(description="`verification`, `delivery`, `stream` or `feedback`.")
    ref: str = Field(description="The verification's or the message's id.")
    provider: str = Field(description="The provider or push channel it went through.")
    outcome: str = Field(description="`delivered`, `transient` (tried again later) or `permanent`.")
    error: str | None
    at: str


EVENTS = Reply(
    "One event per try of a send, its `id` the cursor to resume from; comments keep the connection alive.",
    "text/event-stream",
    {
        "type": "object",
        "required": ["id", "data"],
        "properties": {
            "id": CURSOR,
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": f"#/components/schemas/{SendEvent.__name__}"},
            },
        },
    },
    models=(SendEvent,),
)
SINCE = Param("Resume after this event id; without it, only what is sent from now on.", CURSOR)


@router.route(
    "GET",
    "/v1/events",
    summary=f"Server-Sent Events: every try of every send, live (at most {MAX_TAILS} streams per process)",
    scope="read",
    tag=TAG,
    answers={200: EVENTS},
    errors=(429,),
    query={"since": SINCE},
    headers={"Last-Event-ID": Param("What a reconnecting client sends: as `since`, which it overrides.", CURSOR)},
)
async def tail(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    tails = request.app[TAILS]
    if len(tails) >= MAX_TAILS:
        raise RateLimited(f"at most {MAX_TAILS} event streams at once", retry_after=5)
    since, last = request.query.get("since"), request.headers.get("Last-Event-ID")
    for field, given in (("since", since), ("Last-Event-ID", last)):
        if given is not None and not _CURSOR.fullmatch(given):
            raise InvalidInput(f"{field}: pass back the `id` of the last event received", field=field)
    cursor = last or since
    _, start = await state.queue.attempts_after(None, 1)  # also checks the store answers, before the head is sent
    cursor = cursor or start
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    await response.write(b"retry: 2000\n")
    tails.add(response)
    stopping = request.app[STOPPING]
    quiet_since = time.monotonic()
    try:
        while not stopping.is_set():
            found, cursor = await state.queue.attempts_after(cursor, PAGE)
            if found:
                await response.write(b"".join(map(_event, found)))
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= state.settings.streams.heartbeat:
                await response.write(b":\n")
                quiet_since = time.monotonic()
            if len(found) < PAGE:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), POLL)
    except ConnectionResetError:
        pass
    finally:
        tails.discard(response)
    return response


def _event(attempt: LoggedAttempt) -> bytes:
    data = {"job": attempt.job, "kind": attempt.kind, "ref": attempt.ref, "provider": attempt.provider,
            "outcome": attempt.outcome, "error": attempt.error, "at": rfc3339(attempt.at)}  # fmt: skip
    return f"id: {attempt.cursor}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


TAILS = web.AppKey("event_tails", set)


def install(app: web.Application) -> None:
    """The event streams' bookkeeping: how many are open, and the signal that ends them when the server stops."""
    app[TAILS] = set()
    app[STOPPING] = asyncio.Event()

    async def stop(app: web.Application) -> None:
        app[STOPPING].set()

    app.on_shutdown.append(stop)
