"""Subscribers and messages as plain dicts, for the backends that keep them as JSON records (SQLite rows, Redis
hashes); reading accepts the shapes older versions wrote."""

from __future__ import annotations

from typing import Any

from tidings.core.push import (
    ApnsToken,
    ChannelType,
    FcmToken,
    Message,
    Subscriber,
    WebhookEndpoint,
    WebPushSubscription,
)


def subscriber_record(subscriber: Subscriber) -> dict[str, Any]:
    return {
        "name": subscriber.name,
        "locale": subscriber.locale,
        "phone": subscriber.phone,
        "email": subscriber.email,
        "webhooks": [[hook.url, hook.secret] for hook in subscriber.webhooks],
        "webpush": [[push.endpoint, push.p256dh, push.auth] for push in subscriber.webpush],
        "apns": [[device.token, device.environment] for device in subscriber.apns],
        "fcm": [[device.token] for device in subscriber.fcm],
        "topics": list(subscriber.topics),
        "channel_order": [channel.value for channel in subscriber.channel_order],
    }


def subscriber_from_record(id: str, created_at: float, updated_at: float, record: dict[str, Any]) -> Subscriber:
    return Subscriber(
        id=id,
        created_at=created_at,
        updated_at=updated_at,
        name=record["name"],
        locale=record["locale"],
        phone=record["phone"],
        email=record["email"],
        webhooks=tuple(WebhookEndpoint(*hook) for hook in record["webhooks"]),
        webpush=tuple(WebPushSubscription(*push) for push in record["webpush"]),
        apns=tuple(ApnsToken(*device) for device in record.get("apns", ())),
        fcm=tuple(FcmToken(*device) for device in record.get("fcm", ())),
        topics=tuple(record["topics"]),
        channel_order=tuple(_CHANNEL_TYPES[value] for value in _order(record)),
    )


_CHANNEL_TYPES = {channel.value: channel for channel in ChannelType}
"""``ChannelType(value)`` as a dictionary lookup: a topic's fan-out reads one record per subscriber."""


def _order(record: dict[str, Any]) -> list[str]:
    """The record's channel order. One written before the order was kept has its channels grouped by type, then its
    listed addresses (or, before those were kept, its phone and email, which were then reached by default)."""
    if "channel_order" in record:
        order: list[str] = record["channel_order"]
        return order
    listed = record.get("listed_addresses")
    if listed is None:
        listed = [channel for channel, field in (("sms", "phone"), ("email", "email")) if record.get(field)]
    return ["webhook"] * len(record["webhooks"]) + ["webpush"] * len(record["webpush"]) + listed


def message_record(message: Message) -> dict[str, Any]:
    return {
        "title": message.title,
        "body": message.body,
        "data": message.data,
        "priority": message.priority,
        "send_at": message.send_at,
        "topic": message.topic,
        "channels": None if message.channels is None else [channel.value for channel in message.channels],
        "collapse_key": message.collapse_key,
        "badge": message.badge,
        "sound": message.sound,
        "expanding": message.expanding,
    }


def message_from_record(
    id: str, created_at: float, expires_at: float, recipients: int, record: dict[str, Any]
) -> Message:
    channels = record["channels"]
    return Message(
        id=id,
        title=record["title"],
        body=record["body"],
        data=record["data"],
        priority=record["priority"],
        created_at=created_at,
        expires_at=expires_at,
        send_at=record["send_at"],
        topic=record["topic"],
        channels=None if channels is None else tuple(ChannelType(channel) for channel in channels),
        recipients=recipients,
        collapse_key=record.get("collapse_key"),
        badge=record.get("badge"),
        sound=record.get("sound"),
        expanding=record.get("expanding", False),
    )
