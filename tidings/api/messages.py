"""``/v1/messages``: push one message to many subscribers, follow its deliveries, retry what failed."""

from __future__ import annotations

from aiohttp import web

from tidings.api import paging
from tidings.api.message_models import DeliveryOut, DeliveryPage, MessageAccepted, MessageIn, MessageOut, Retried
from tidings.api.paging import MessagePage
from tidings.api.routing import Param, Router, json
from tidings.api.state import STATE
from tidings.core import ids
from tidings.core.push import DeliveryStatus, MessageStatus
from tidings.errors import InvalidInput, QueueFull
from tidings.services.messages import MessageInput

router = Router()
TAG = "messages"
PAGING = {
    "status": Param("Only deliveries in this status.", {"type": "string", "enum": list(DeliveryStatus)}),
    "cursor": Param(
        "The `next_cursor` of the previous page.", {"type": "string", "pattern": f"^[0-9]{{1,{paging.MAX_DIGITS}}}$"}
    ),
    "limit": paging.limit_param("Deliveries"),
}
LIST = {
    "status": Param(
        "Only messages in this status, as `GET /v1/messages/{id}` shows it: `queued` (no delivery settled yet),"
        " `sending` (some settled, some queued) or `done` (none queued).",
        {"type": "string", "enum": list(MessageStatus)},
    ),
    "cursor": paging.CURSOR,
    "limit": paging.limit_param("Messages"),
}
ID = {"id": Param("The message's id, as its sending gave it.", {"type": "string", "pattern": ids.pattern("msg")})}


@router.route(
    "POST",
    "/v1/messages",
    summary="Push a message to subscribers (by id) or to a topic",
    scope="send",
    tag=TAG,
    body=MessageIn,
    answers={202: MessageAccepted},
    errors=(422, 503),
)
async def send(request: web.Request, body: MessageIn) -> web.Response:
    state = request.app[STATE]
    if state.queue.queued >= state.settings.dispatch.max_queue:
        raise QueueFull
    message, unknown = await state.messages.send(
        MessageInput(
            to=body.to,
            topic=body.topic,
            title=body.title,
            body=body.body,
            data=body.data,
            channels=body.channels,
            priority=body.priority,
            send_at=None if body.send_at is None else body.send_at.timestamp(),
            ttl=body.ttl,
            collapse_key=body.collapse_key,
            badge=body.badge,
            sound=body.sound,
        )
    )
    state.metrics.messages.inc()
    accepted = MessageAccepted(id=message.id, status=MessageStatus.QUEUED, recipients=message.recipients,
                               unknown=unknown[:100])  # fmt: skip
    return json(accepted, 202)


@router.route(
    "GET",
    "/v1/messages",
    summary="Messages, newest first, with their counts; by `status`, paged (`cursor`, `limit` 1-1000, 100 by default)",
    scope="read",
    tag=TAG,
    answers={200: MessagePage},
    query=LIST,
)
async def list_messages(request: web.Request) -> web.Response:
    query = request.query
    status = paging.choice(query, "status", MessageStatus)
    limit = paging.page_size(query)
    found = await request.app[STATE].messages.page(status, paging.position(query), limit)
    return json(
        MessagePage(
            messages=[MessageOut.of(message, counts) for message, counts in found],
            next_cursor=paging.next_cursor([message for message, _ in found], limit),
        )
    )


@router.route(
    "GET",
    "/v1/messages/{id}",
    summary="A message, where it stands and its counts",
    scope="read",
    tag=TAG,
    answers={200: MessageOut},
    errors=(404,),
    params=ID,
)
async def get(request: web.Request) -> web.Response:
    message, counts = await request.app[STATE].messages.get(request.match_info["id"])
    return json(MessageOut.of(message, counts))


@router.route(
    "GET",
    "/v1/messages/{id}/deliveries",
    summary="A message's deliveries, one per recipient and channel, paged (`status`, `cursor`, `limit`)",
    scope="read",
    tag=TAG,
    answers={200: DeliveryPage},
    errors=(404,),
    params=ID,
    query=PAGING,
)
async def deliveries(request: web.Request) -> web.Response:
    message, _ = await request.app[STATE].messages.get(request.match_info["id"])
    return await _page(request, message.id)


@router.route(
    "GET",
    "/v1/deliveries",
    summary="Deliveries of every message, paged; `?status=failed` is the dead-letter view",
    scope="read",
    tag=TAG,
    answers={200: DeliveryPage},
    query=PAGING,
)
async def all_deliveries(request: web.Request) -> web.Response:
    return await _page(request, None)


@router.route(
    "POST",
    "/v1/messages/{id}/retry",
    summary="Queue a message's failed deliveries again (same delivery ids, fresh tries)",
    scope="send",
    tag=TAG,
    answers={202: Retried},
    errors=(404, 409),
    params=ID,
)
async def retry(request: web.Request) -> web.Response:
    id = request.match_info["id"]
    retried = await request.app[STATE].messages.retry(id)
    return json(Retried(id=id, retried=retried), 202)


async def _page(request: web.Request, message_id: str | None) -> web.Response:
    query = request.query
    status = paging.choice(query, "status", DeliveryStatus)
    cursor = paging.whole_number(query.get("cursor", "0"))
    if cursor is None:
        raise InvalidInput("cursor: pass back the `next_cursor` of the previous page", field="cursor")
    limit = paging.page_size(query)
    rows = await request.app[STATE].messages.store.list_deliveries(message_id, status, cursor, limit)
    next_cursor = str(rows[-1][0]) if len(rows) == limit else None
    return json(DeliveryPage(deliveries=[DeliveryOut.of(d) for _, d in rows], next_cursor=next_cursor))
