"""``/v1/subscribers``: who can receive pushed messages, where, and tokens for their browsers."""

from __future__ import annotations

import time

from aiohttp import web

from tidings.api import paging
from tidings.api.paging import ListedSubscriberOut, SubscriberPage
from tidings.api.routing import Param, Router, json
from tidings.api.state import STATE
from tidings.api.subscriber_models import (
    ApnsChannelIn,
    FcmChannelIn,
    FeedbackOut,
    NewToken,
    SubscriberIn,
    SubscriberOut,
    TokenOut,
    VapidKey,
    WebhookChannelIn,
    WebPushChannelIn,
)
from tidings.core.push import NAME, ApnsToken, ChannelType, FcmToken, WebPushSubscription
from tidings.core.types import rfc3339
from tidings.errors import InvalidInput
from tidings.services.subscribers import SubscriberInput, WebhookInput, checked_id

router = Router()
TAG = "subscribers"
SUBSCRIBER_ID = Param("The subscriber's id, the caller's own.", {"type": "string", "pattern": NAME.pattern})
LIST = {
    "topic": Param("Only the subscribers of this topic.", {"type": "string", "pattern": NAME.pattern}),
    "cursor": paging.CURSOR,
    "limit": paging.limit_param("Subscribers"),
}


@router.route(
    "GET",
    "/v1/subscribers",
    summary="Subscribers, newest first, without webhook secrets; by `topic`, paged (`cursor`, `limit` 1-1000, 100 by"
    " default)",
    scope="read",
    tag=TAG,
    answers={200: SubscriberPage},
    query=LIST,
    description="Each subscriber is shown as `GET /v1/subscribers/{subscriber_id}` shows it, but its webhooks"
    " come without their `secret`: that one is for the `admin` scope, a list for `read`.",
)
async def list_subscribers(request: web.Request) -> web.Response:
    query = request.query
    topic = query.get("topic")
    if topic is not None and not NAME.fullmatch(topic):
        raise InvalidInput("topic: 1-128 characters of A-Z a-z 0-9 . _ : -", field="topic")
    limit = paging.page_size(query)
    found = await request.app[STATE].subscribers.page(topic, paging.position(query), limit)
    return json(
        SubscriberPage(
            subscribers=[ListedSubscriberOut.of(s) for s in found], next_cursor=paging.next_cursor(found, limit)
        )
    )


@router.route(
    "PUT",
    "/v1/subscribers/{subscriber_id}",  # as API.md names it
    summary="Create or replace a subscriber and where it can be reached",
    scope="admin",
    tag=TAG,
    body=SubscriberIn,
    answers={200: SubscriberOut, 201: SubscriberOut},
    errors=(422,),
    params={"subscriber_id": SUBSCRIBER_ID},
)
async def put(request: web.Request, body: SubscriberIn) -> web.Response:
    given = SubscriberInput(
        name=body.name,
        locale=body.locale,
        phone=body.phone,
        email=body.email,
        webhooks=tuple(WebhookInput(c.url, c.secret) for c in body.channels if isinstance(c, WebhookChannelIn)),
        webpush=tuple(
            WebPushSubscription(c.endpoint, c.keys.p256dh, c.keys.auth)
            for c in body.channels
            if isinstance(c, WebPushChannelIn)
        ),
        apns=tuple(ApnsToken(c.token, c.environment) for c in body.channels if isinstance(c, ApnsChannelIn)),
        fcm=tuple(FcmToken(c.token) for c in body.channels if isinstance(c, FcmChannelIn)),
        topics=tuple(body.topics),
        channel_order=tuple(ChannelType(c.type) for c in body.channels),
    )
    subscriber, created = await request.app[STATE].subscribers.put(request.match_info["subscriber_id"], given)
    return json(SubscriberOut.of(subscriber), 201 if created else 200)


@router.route(
    "GET",
    "/v1/subscribers/{subscriber_id}",
    summary="Read a subscriber",
    scope="admin",
    tag=TAG,
    answers={200: SubscriberOut},
    errors=(404,),
    params={"subscriber_id": SUBSCRIBER_ID},
)
async def get(request: web.Request) -> web.Response:
    return json(SubscriberOut.of(await request.app[STATE].subscribers.get(request.match_info["subscriber_id"])))


@router.route(
    "DELETE",
    "/v1/subscribers/{subscriber_id}",
    summary="Delete a subscriber (its queued deliveries are not sent)",
    scope="admin",
    tag=TAG,
    answers={204: None},
    errors=(404,),
    params={"subscriber_id": SUBSCRIBER_ID},
)
async def delete(request: web.Request) -> web.Response:
    await request.app[STATE].subscribers.delete(request.match_info["subscriber_id"])
    return web.Response(status=204)


@router.route(
    "POST",
    "/v1/subscribers/{id}/tokens",
    summary="A short-lived token that opens this subscriber's stream, fit for a browser",
    scope="read",
    tag=TAG,
    body=NewToken,
    answers={201: TokenOut},
    errors=(404,),
    params={"id": SUBSCRIBER_ID},
)
async def token(request: web.Request, body: NewToken) -> web.Response:
    state = request.app[STATE]
    subscriber = await state.subscribers.get(checked_id(request.match_info["id"]))
    expires_at = time.time() + (body.ttl or state.settings.streams.token_ttl)
    issued = state.tokens.issue(subscriber.id, expires_at)
    return json(TokenOut(token=issued, subscriber_id=subscriber.id, expires_at=rfc3339(expires_at)), 201)


@router.route(
    "GET",
    "/v1/webpush/key",
    summary="The VAPID public key: a page passes it to `pushManager.subscribe({applicationServerKey})`",
    scope=None,
    tag=TAG,
    answers={200: VapidKey},
)
async def vapid(request: web.Request) -> web.Response:
    return json(VapidKey(public_key=request.app[STATE].vapid_public_key))


@router.route(
    "GET",
    "/v1/push/feedback",
    summary="Where reports of removed channels (`subscriber.channel_removed`) go, and the secret that signs them",
    scope="admin",
    tag=TAG,
    answers={200: FeedbackOut},
)
async def feedback(request: web.Request) -> web.Response:
    reports = request.app[STATE].feedback
    return json(FeedbackOut(url=reports.url, secret=reports.secret))
