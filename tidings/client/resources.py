"""The API's resources, one class each, their methods named and argued as the API's fields are. Every method is a
coroutine (or an async iterator for lists); ``SyncClient`` runs these same methods for blocking code."""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from tidings.client.http import Http
from tidings.client.models import (
    Accepted,
    Check,
    Delivery,
    Key,
    Message,
    Subscriber,
    SubscriberToken,
    Verification,
)


def _fields(**given: Any) -> dict[str, Any]:
    """The fields given; one left out is the server's default."""
    return {name: value for name, value in given.items() if value is not None}


def _id(value: str) -> str:
    return quote(value, safe="")


class _Resource:
    def __init__(self, http: Http) -> None:
        self._http = http


class Verifications(_Resource):
    async def start(
        self,
        to: str,
        channel: str | None = None,
        *,
        locale: str | None = None,
        code_length: int | None = None,
        template: str | None = None,
        app_name: str | None = None,
        idempotency_key: str | None = None,
    ) -> Verification:
        """Send a code to ``to`` (a phone number, or an address with ``channel="email"``); a second start for the
        same address while one is pending sends the same code again."""
        body = _fields(to=to, channel=channel, locale=locale, code_length=code_length, template=template,
                       app_name=app_name)  # fmt: skip
        return Verification.of(
            await self._http.call("POST", "/v1/verifications", body, idempotency_key=idempotency_key)
        )

    async def check(
        self, *, code: str, to: str | None = None, id: str | None = None, idempotency_key: str | None = None
    ) -> Check:
        """Check a code, by address or by verification id. A wrong code is ``valid=False``, not an error."""
        body = _fields(to=to, id=id, code=code)
        answer = await self._http.call("POST", "/v1/verifications/check", body, idempotency_key=idempotency_key)
        return Check.of(answer)

    async def get(self, id: str) -> Verification:
        return Verification.of(await self._http.call("GET", f"/v1/verifications/{_id(id)}"))

    async def cancel(self, id: str, *, idempotency_key: str | None = None) -> Verification:
        answer = await self._http.call("POST", f"/v1/verifications/{_id(id)}/cancel", idempotency_key=idempotency_key)
        return Verification.of(answer)

    async def list(
        self, *, status: str | None = None, to: str | None = None, limit: int | None = None
    ) -> AsyncIterator[Verification]:
        """Newest first, every page."""
        async for item in self._http.pages("/v1/verifications", "verifications", _fields(status=status, to=to,
                                                                                          limit=limit)):  # fmt: skip
            yield Verification.of(item)


class Messages(_Resource):
    async def send(
        self,
        *,
        to: Sequence[str] | None = None,
        topic: str | None = None,
        title: str | None = None,
        body: str | None = None,
        data: dict[str, Any] | None = None,
        channels: Sequence[str] | None = None,
        priority: str | None = None,
        send_at: dt.datetime | str | None = None,
        ttl: int | None = None,
        collapse_key: str | None = None,
        badge: int | None = None,
        sound: str | None = None,
        idempotency_key: str | None = None,
    ) -> Accepted:
        """Push one message to subscribers (``to``, up to 10,000 ids) or to a ``topic``."""
        if isinstance(send_at, dt.datetime):
            send_at = send_at.isoformat()
        fields = _fields(
            to=None if to is None else list(to), topic=topic, title=title, body=body, data=data,
            channels=None if channels is None else list(channels), priority=priority, send_at=send_at, ttl=ttl,
            collapse_key=collapse_key, badge=badge, sound=sound,
        )  # fmt: skip
        answer, replayed = await self._http.exchange("POST", "/v1/messages", fields, idempotency_key=idempotency_key)
        return replace(Accepted.of(answer), replayed=replayed)

    async def get(self, id: str) -> Message:
        return Message.of(await self._http.call("GET", f"/v1/messages/{_id(id)}"))

    async def deliveries(
        self, id: str, *, status: str | None = None, limit: int | None = None
    ) -> AsyncIterator[Delivery]:
        """One per recipient and channel, every page."""
        path = f"/v1/messages/{_id(id)}/deliveries"
        async for item in self._http.pages(path, "deliveries", _fields(status=status, limit=limit)):
            yield Delivery.of(item)

    async def retry(self, id: str, *, idempotency_key: str | None = None) -> int:
        """Queue the message's failed deliveries again; returns how many."""
        answer = await self._http.call("POST", f"/v1/messages/{_id(id)}/retry", idempotency_key=idempotency_key)
        retried: int = answer["retried"]
        return retried

    async def list(self, *, status: str | None = None, limit: int | None = None) -> AsyncIterator[Message]:
        """Newest first, every page."""
        async for item in self._http.pages("/v1/messages", "messages", _fields(status=status, limit=limit)):
            yield Message.of(item)


class Subscribers(_Resource):
    async def put(
        self,
        id: str,
        *,
        name: str | None = None,
        locale: str | None = None,
        phone: str | None = None,
        email: str | None = None,
        channels: Sequence[dict[str, Any]] | None = None,
        topics: Sequence[str] | None = None,
    ) -> Subscriber:
        """Create or replace: what is not given is not kept."""
        body = _fields(name=name, locale=locale, phone=phone, email=email,
                       channels=None if channels is None else list(channels),
                       topics=None if topics is None else list(topics))  # fmt: skip
        return Subscriber.of(await self._http.call("PUT", f"/v1/subscribers/{_id(id)}", body))

    async def get(self, id: str) -> Subscriber:
        return Subscriber.of(await self._http.call("GET", f"/v1/subscribers/{_id(id)}"))

    async def delete(self, id: str) -> None:
        await self._http.call("DELETE", f"/v1/subscribers/{_id(id)}")

    async def list(self, *, topic: str | None = None, limit: int | None = None) -> AsyncIterator[Subscriber]:
        """Newest first, every page."""
        async for item in self._http.pages("/v1/subscribers", "subscribers", _fields(topic=topic, limit=limit)):
            yield Subscriber.of(item)

    async def token(self, id: str, *, ttl: int | None = None) -> SubscriberToken:
        """A short-lived token that opens this subscriber's live stream alone (for a browser)."""
        answer = await self._http.call("POST", f"/v1/subscribers/{_id(id)}/tokens", _fields(ttl=ttl))
        return SubscriberToken.of(answer)


class Keys(_Resource):
    async def create(self, name: str, scopes: Sequence[str]) -> Key:
        """A new API key; its ``key`` is in this answer only."""
        return Key.of(await self._http.call("POST", "/v1/keys", {"name": name, "scopes": list(scopes)}))

    async def list(self) -> builtins.list[Key]:
        return [Key.of(item) for item in (await self._http.call("GET", "/v1/keys"))["keys"]]

    async def revoke(self, id: str) -> None:
        await self._http.call("DELETE", f"/v1/keys/{_id(id)}")
