"""Push messages: subscribers and where they can be reached, messages, and one delivery per recipient and channel.

Pure data and decisions (which deliveries a message makes, where a message stands); the store keeps them, the
dispatcher carries the deliveries out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tidings.core.types import PRIORITY_HIGH, PRIORITY_LOW, PRIORITY_NORMAL, rfc3339

NAME = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
"""What callers name things with (subscriber ids, topics), and the shape of an id they pass back."""
MAX_RECIPIENTS = 10_000
MAX_DATA_BYTES = 64 * 1024
"""A message's ``data``, as JSON: it goes whole to every webhook and stream (and a Web Push holds 4 KB)."""
SUBSCRIPTION_GONE = "subscription_gone"
"""A push service no longer knows a Web Push subscription (404, 410): the subscriber loses it."""
DEAD_TOKENS = frozenset({SUBSCRIPTION_GONE, "Unregistered", "BadDeviceToken", "ExpiredToken", "UNREGISTERED",
                         "INVALID_ARGUMENT"})  # fmt: skip
"""The errors that say a channel will never work again: a Web Push subscription that is gone, an APNs token Apple
no longer knows (410 ``Unregistered`` or ``ExpiredToken``, 400 ``BadDeviceToken``), an FCM token that is not
registered (``UNREGISTERED``) or not a token at all (the FCM channel names ``INVALID_ARGUMENT`` only when it is the
token that was refused). The delivery's subscriber loses that channel, and ``push.feedback_url`` is told."""
COLLAPSE_KEY_LENGTH = 64
"""``apns-collapse-id`` takes at most 64 bytes; FCM's ``collapse_key`` is held to the same."""

RETENTION = 7 * 86400.0
"""Seconds a message and its deliveries stay readable after the message expires."""


class ChannelType(StrEnum):
    STREAM = "stream"
    WEBHOOK = "webhook"
    WEBPUSH = "webpush"
    SMS = "sms"
    EMAIL = "email"
    APNS = "apns"
    FCM = "fcm"


ADDRESS_CHANNELS = frozenset({ChannelType.SMS, ChannelType.EMAIL})
MOBILE_CHANNELS = frozenset({ChannelType.APNS, ChannelType.FCM})


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"


class MessageStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    DONE = "done"


PRIORITIES = {"high": PRIORITY_HIGH, "normal": PRIORITY_NORMAL, "low": PRIORITY_LOW}


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    url: str
    secret: str = field(repr=False)
    """``whsec_`` + base64 of the signing key, as Standard Webhooks writes it."""


@dataclass(frozen=True, slots=True)
class WebPushSubscription:
    """What a browser's ``PushManager.subscribe()`` returns: the push service URL and the keys to encrypt for."""

    endpoint: str
    p256dh: str
    auth: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ApnsToken:
    """An app on an iPhone, as Apple's push service knows it."""

    token: str
    environment: str = "production"
    """``sandbox`` for a development build's token, which only Apple's sandbox host accepts."""


@dataclass(frozen=True, slots=True)
class FcmToken:
    """An app registered with Firebase Cloud Messaging (Android, mostly)."""

    token: str


Channel = WebhookEndpoint | WebPushSubscription | ApnsToken | FcmToken


@dataclass(frozen=True, slots=True)
class Subscriber:
    id: str
    created_at: float
    updated_at: float
    name: str | None = None
    locale: str | None = None
    phone: str | None = None
    email: str | None = None
    webhooks: tuple[WebhookEndpoint, ...] = ()
    webpush: tuple[WebPushSubscription, ...] = ()
    apns: tuple[ApnsToken, ...] = ()
    fcm: tuple[FcmToken, ...] = ()
    topics: tuple[str, ...] = ()
    channel_order: tuple[ChannelType, ...] = ()
    """The types of the channels it was given, in that order, so that they are listed back in that order."""

    @property
    def listed_addresses(self) -> frozenset[ChannelType]:
        """``sms`` and ``email`` when the subscriber lists them among its channels: then a message that names no
        channels reaches them even where the server would not by default (see ``fan_out``)."""
        return ADDRESS_CHANNELS.intersection(self.channel_order)

    def channels(self) -> list[Channel | ChannelType]:
        """Its channels in the order they were given (a listed ``sms`` or ``email`` as its type). A Web Push
        subscription or a device token that is gone leaves its place empty; one the order does not name comes after
        the others."""
        left: dict[ChannelType, Iterator[Channel]] = {
            ChannelType.WEBHOOK: iter(self.webhooks),
            ChannelType.WEBPUSH: iter(self.webpush),
            ChannelType.APNS: iter(self.apns),
            ChannelType.FCM: iter(self.fcm),
        }
        ordered: list[Channel | ChannelType] = []
        for kind in self.channel_order:
            if kind not in left:
                ordered.append(kind)
            elif (channel := next(left[kind], None)) is not None:
                ordered.append(channel)
        return ordered + [channel for rest in left.values() for channel in rest]

    def targets(self) -> list[tuple[ChannelType, str]]:
        """Every place this subscriber can be reached, the live stream first."""
        found = [(ChannelType.STREAM, self.id)]
        found += [(ChannelType.WEBHOOK, hook.url) for hook in self.webhooks]
        found += [(ChannelType.WEBPUSH, push.endpoint) for push in self.webpush]
        found += [(ChannelType.APNS, device.token) for device in self.apns]
        found += [(ChannelType.FCM, device.token) for device in self.fcm]
        if self.phone:
            found.append((ChannelType.SMS, self.phone))
        if self.email:
            found.append((ChannelType.EMAIL, self.email))
        return found

    def webhook(self, url: str) -> WebhookEndpoint | None:
        return next((hook for hook in self.webhooks if hook.url == url), None)

    def push_subscription(self, endpoint: str) -> WebPushSubscription | None:
        return next((push for push in self.webpush if push.endpoint == endpoint), None)

    def device(self, channel: ChannelType, token: str) -> ApnsToken | FcmToken | None:
        devices: tuple[ApnsToken | FcmToken, ...] = self.apns if channel is ChannelType.APNS else self.fcm
        return next((device for device in devices if device.token == token), None)


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    title: str | None
    body: str | None
    data: dict[str, Any] | None
    priority: str
    created_at: float
    expires_at: float
    """When undelivered deliveries stop being worth sending (``send_at`` or creation, plus ``ttl``)."""
    send_at: float | None = None
    topic: str | None = None
    channels: tuple[ChannelType, ...] | None = None
    """The channels asked for; None is every channel each recipient has."""
    recipients: int = 0
    collapse_key: str | None = None
    """Phones show only the latest of the messages that share one (``apns-collapse-id``, FCM ``collapse_key``)."""
    badge: int | None = None
    """The number on the app's icon (APNs)."""
    sound: str | None = None
    """The sound a phone plays: a file in the app, or ``default``."""
    expanding: bool = False
    """Accepted, its deliveries not written yet: a large topic's are written after the answer (``fanout_after``)."""

    def event(self) -> dict[str, Any]:
        """The message as a recipient sees it, on a stream or in a webhook."""
        return {
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "data": self.data,
            "priority": self.priority,
            "topic": self.topic,
            "created_at": rfc3339(self.created_at),
        }


@dataclass(slots=True)
class Delivery:
    """One message to one recipient through one channel; its id is stable across retries (the ``webhook-id``).

    Never changed once made, but not declared frozen: a message to a topic makes one per subscriber and channel, and
    a frozen dataclass is built several times slower (each field set through ``object.__setattr__``).
    """

    id: str
    message_id: str
    subscriber_id: str
    channel: ChannelType
    target: str
    status: DeliveryStatus = DeliveryStatus.QUEUED
    attempts: int = 0
    last_error: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Counts:
    queued: int = 0
    delivered: int = 0
    failed: int = 0
    expired: int = 0

    @property
    def status(self) -> MessageStatus:
        if self.queued == 0:
            return MessageStatus.DONE
        if self.delivered or self.failed or self.expired:
            return MessageStatus.SENDING
        return MessageStatus.QUEUED


def message_status(message: Message, counts: Counts) -> MessageStatus:
    """Where a message stands: as its deliveries say, or queued while they are not written yet."""
    return MessageStatus.QUEUED if message.expanding else counts.status


EVERY_CHANNEL = frozenset(ChannelType)


def fan_out(
    message: Message,
    subscribers: Iterable[Subscriber],
    delivery_id: Any,
    now: float,
    by_default: frozenset[ChannelType] = EVERY_CHANNEL,
) -> list[Delivery]:
    """One delivery per recipient and reachable target of the channels asked for; a message that names none asks
    for ``by_default`` and the channels each subscriber lists.

    ``delivery_id(message_id, n)`` names the n-th delivery; ids only need to be unique and stable.
    """
    wanted = frozenset(message.channels) if message.channels is not None else None
    deliveries: list[Delivery] = []
    for subscriber in subscribers:
        channels = by_default.union(subscriber.listed_addresses) if wanted is None else wanted
        for channel, target in subscriber.targets():
            if channel in channels:
                deliveries.append(
                    Delivery(
                        delivery_id(message.id, len(deliveries)),
                        message.id,
                        subscriber.id,
                        channel,
                        target,
                        created_at=now,
                        updated_at=now,
                    )
                )
    return deliveries


# What the dispatcher hands to each push channel's sender.


@dataclass(frozen=True, slots=True)
class WebhookCall:
    """One signed POST: ``id`` goes out as ``webhook-id`` and stays the same on every retry."""

    id: str
    url: str
    secret: str = field(repr=False)
    body: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class PushCall:
    """One Web Push message (RFC 8030), to be encrypted for ``p256dh``/``auth`` (RFC 8291) and signed with VAPID."""

    id: str
    endpoint: str
    p256dh: str
    auth: str = field(repr=False)
    payload: bytes = field(repr=False)
    ttl: int = 86400
    urgency: str = "normal"
    """RFC 8030 ``Urgency``: very-low, low, normal or high."""


@dataclass(frozen=True, slots=True)
class MobileCall:
    """One notification to one app on a phone, through APNs or FCM; ``id`` is the delivery's, stable on retries."""

    id: str
    token: str = field(repr=False)
    environment: str
    title: str | None
    body: str | None
    data: dict[str, Any] | None
    priority: str
    ttl: int
    """Seconds the notification stays worth delivering (the message's time left)."""
    collapse_key: str | None = None
    badge: int | None = None
    sound: str | None = None


@dataclass(frozen=True, slots=True)
class StreamCall:
    """A message for the live streams of many subscribers at once."""

    message_id: str
    event: bytes = field(repr=False)
    subscriber_ids: tuple[str, ...]
