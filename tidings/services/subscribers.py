"""Subscribers as a service: validates where a subscriber can be reached, and keeps its secrets sealed at rest.

A webhook secret must be used again to sign every delivery, and a Web Push ``auth`` secret to encrypt it, so they
are sealed (AES-GCM under the server secret, bound to the subscriber) rather than hashed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from tidings.core import webhook_secrets
from tidings.core.address import InvalidAddress, parse_email, parse_phone
from tidings.core.push import NAME, ApnsToken, ChannelType, FcmToken, Subscriber, WebhookEndpoint, WebPushSubscription
from tidings.core.sealing import Sealer
from tidings.errors import InvalidInput, NotFound, Unprocessable
from tidings.outbound.guard import PrivateAddress, check_url
from tidings.ports import Position, PushStore


@dataclass(frozen=True, slots=True)
class WebhookInput:
    url: str
    secret: str | None = None


@dataclass(frozen=True, slots=True)
class SubscriberInput:
    name: str | None = None
    locale: str | None = None
    phone: str | None = None
    email: str | None = None
    webhooks: tuple[WebhookInput, ...] = ()
    webpush: tuple[WebPushSubscription, ...] = ()
    apns: tuple[ApnsToken, ...] = ()
    fcm: tuple[FcmToken, ...] = ()
    topics: tuple[str, ...] = ()
    channel_order: tuple[ChannelType, ...] = ()


def checked_id(id: str) -> str:
    if not NAME.fullmatch(id):
        raise InvalidInput(
            "subscriber ids are 1-128 characters of A-Z a-z 0-9 . _ : -", field="subscriber_id", code="invalid_id"
        )
    return id


def _places(given: SubscriberInput, kind: ChannelType) -> list[int]:
    """Where each channel of ``kind`` was listed among all the channels, so that an error names the one sent."""
    return [n for n, listed in enumerate(given.channel_order) if listed is kind]


class Subscribers:
    def __init__(self, store: PushStore, sealer: Sealer, *, allow_private: bool, region: str | None) -> None:
        self.store = store
        self.sealer = sealer
        self.allow_private = allow_private
        self.region = region

    async def put(self, id: str, given: SubscriberInput) -> tuple[Subscriber, bool]:
        """Create or replace. A webhook given without a secret keeps the one its URL already had, so replacing a
        subscriber does not break receivers that verify signatures; a new URL gets a new secret."""
        checked_id(id)
        previous = await self.store.get_subscriber(id)
        known = {hook.url: hook.secret for hook in self._unseal(previous).webhooks} if previous else {}
        webhooks = []
        for n, hook in zip(_places(given, ChannelType.WEBHOOK), given.webhooks, strict=True):
            await self._check_url(hook.url, f"channels[{n}].url")
            if hook.secret is not None and not webhook_secrets.valid(hook.secret):
                raise InvalidInput(
                    f"a webhook secret is `whsec_` followed by 1 to {webhook_secrets.MAX_KEY_BYTES} base64-encoded"
                    " bytes",
                    field=f"channels[{n}].secret",
                )
            secret = hook.secret or known.get(hook.url) or webhook_secrets.encode(os.urandom(webhook_secrets.KEY_BYTES))
            webhooks.append(WebhookEndpoint(hook.url, secret))
        for n, push in zip(_places(given, ChannelType.WEBPUSH), given.webpush, strict=True):
            await self._check_url(push.endpoint, f"channels[{n}].endpoint")
        now = time.time()
        subscriber = Subscriber(
            id=id,
            created_at=now,
            updated_at=now,
            name=given.name,
            locale=given.locale,
            phone=self._phone(given.phone),
            email=self._email(given.email),
            webhooks=tuple(webhooks),
            webpush=given.webpush,
            apns=given.apns,
            fcm=given.fcm,
            topics=tuple(dict.fromkeys(given.topics)),
            channel_order=given.channel_order,
        )
        stored, created = await self.store.put_subscriber(self._seal(subscriber))
        return self._unseal(stored), created

    async def get(self, id: str) -> Subscriber:
        found = await self.store.get_subscriber(checked_id(id))
        if found is None:
            raise NotFound(f"no subscriber {id!r}", code="subscriber_not_found")
        return self._unseal(found)

    async def page(self, topic: str | None, after: Position | None, limit: int) -> list[Subscriber]:
        """Newest first, of ``topic`` if given, without their secrets: a list is for the ``read`` scope, and
        the webhook and Web Push secrets are not unsealed for it (they are left empty)."""
        found = await self.store.list_subscribers(topic, after, limit)
        return [self._convert(subscriber, lambda sealed: "") for subscriber in found]

    async def delete(self, id: str) -> None:
        if not await self.store.delete_subscriber(checked_id(id)):
            raise NotFound(f"no subscriber {id!r}", code="subscriber_not_found")

    def unsealed(self, subscriber: Subscriber) -> Subscriber:
        return self._unseal(subscriber)

    async def _check_url(self, url: str, field: str) -> None:
        try:
            await check_url(url, self.allow_private)
        except PrivateAddress as exc:
            raise Unprocessable(
                f"{field}: {exc} (set webhooks.allow_private_networks to allow it)",
                code="private_address",
                field=field,
            ) from None
        except ValueError as exc:
            raise InvalidInput(f"{field}: {exc}", field=field) from None

    def _phone(self, raw: str | None) -> str | None:
        if raw is None:
            return None
        try:
            return parse_phone(raw, self.region).e164
        except InvalidAddress as exc:
            raise InvalidInput(f"phone: {exc}", field="phone") from None

    def _email(self, raw: str | None) -> str | None:
        if raw is None:
            return None
        try:
            return parse_email(raw)
        except InvalidAddress as exc:
            raise InvalidInput(f"email: {exc}", field="email") from None

    def _seal(self, subscriber: Subscriber) -> Subscriber:
        return self._convert(subscriber, lambda text: self.sealer.seal(text, subscriber.id).hex())

    def _unseal(self, subscriber: Subscriber) -> Subscriber:
        return self._convert(subscriber, lambda sealed: self.sealer.unseal(bytes.fromhex(sealed), subscriber.id))

    @staticmethod
    def _convert(subscriber: Subscriber, secret: Callable[[str], str]) -> Subscriber:
        return replace(
            subscriber,
            webhooks=tuple(replace(hook, secret=secret(hook.secret)) for hook in subscriber.webhooks),
            webpush=tuple(replace(push, auth=secret(push.auth)) for push in subscriber.webpush),
        )
