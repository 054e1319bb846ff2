"""Request and response bodies of messages and their deliveries (validation and ``/openapi.json`` alike)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tidings.api.models import RFC3339, Body, Text, one_of, or_null, whole_numbers
from tidings.api.subscriber_models import Id
from tidings.core.push import (
    COLLAPSE_KEY_LENGTH,
    MAX_DATA_BYTES,
    MAX_RECIPIENTS,
    ChannelType,
    Counts,
    Delivery,
    DeliveryStatus,
    Message,
    MessageStatus,
    message_status,
)
from tidings.core.types import rfc3339
from tidings.errors import InvalidInput


class MessageIn(Body):
    model_config = ConfigDict(
        json_schema_extra={
            **one_of("to", "topic"),
            "examples": [{"topic": "news", "title": "Hello", "body": "World", "data": {"k": "v"}}],
        }
    )

    to: list[Id] | None = Field(None, min_length=1, max_length=MAX_RECIPIENTS)
    topic: Id | None = None
    title: Text | None = Field(None, max_length=1000)
    body: Text | None = Field(None, max_length=10_000)
    data: dict[str, Any] | None = None
    channels: list[ChannelType] | None = Field(None, min_length=1)
    priority: Literal["high", "normal", "low"] = Field("normal", json_schema_extra=or_null)
    send_at: dt.datetime | None = Field(None, description="RFC 3339; deliver from then on.")
    ttl: int | None = Field(
        None, ge=1, le=30 * 86400, strict=True, description="Seconds the message stays worth delivering."
    )
    collapse_key: Text | None = Field(
        None,
        min_length=1,
        max_length=COLLAPSE_KEY_LENGTH,
        description="Phones show only the latest of the messages that share one (APNs `apns-collapse-id`,"
        " FCM `android.collapse_key`).",
    )
    badge: int | None = Field(None, ge=0, le=99_999, strict=True, description="The number on the app's icon (APNs).")
    sound: Text | None = Field(
        None, min_length=1, max_length=256, description="A sound file in the app, or `default` (APNs and FCM)."
    )

    _whole_numbers = whole_numbers("ttl", "badge")

    @field_validator("collapse_key")
    @classmethod
    def _collapse_key_bytes(cls, value: str | None) -> str | None:
        if value is not None and len(value.encode()) > COLLAPSE_KEY_LENGTH:
            raise ValueError(f"at most {COLLAPSE_KEY_LENGTH} bytes in UTF-8 (APNs' limit)")
        return value

    @field_validator("priority", mode="before")
    @classmethod
    def _default_priority(cls, value: object) -> object:
        return "normal" if value is None else value

    @field_validator("send_at", mode="before")
    @classmethod
    def _rfc3339(cls, value: object) -> object:
        """What the document's ``date-time`` says; pydantic alone would take a Unix time, a date, or no time zone."""
        if value is not None and not (isinstance(value, str) and RFC3339.fullmatch(value)):
            raise ValueError("an RFC 3339 time with its time zone, e.g. 2030-01-01T09:00:00Z")
        return value

    @field_validator("data")
    @classmethod
    def _plain_json(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            encoded = json.dumps(value, ensure_ascii=False, allow_nan=False)
        except ValueError:
            raise ValueError(
                "numbers must be finite: JSON has no NaN or Infinity, and receivers could not read them"
            ) from None
        if len(encoded.encode()) > MAX_DATA_BYTES:
            raise ValueError(f"at most {MAX_DATA_BYTES} bytes as JSON")
        return value

    @model_validator(mode="after")
    def _one_audience(self) -> MessageIn:
        if (self.to is None) == (self.topic is None):
            raise InvalidInput("give exactly one of `to` (subscriber ids) or `topic`", field="to")
        return self


class MessageEvent(BaseModel):
    """A message as a live stream delivers it: an SSE event's ``data`` (whose ``id`` is this ``id``), or a
    WebSocket text frame."""

    id: str
    title: str | None
    body: str | None
    data: dict[str, Any] | None
    priority: str
    topic: str | None
    created_at: str


class MessageAccepted(BaseModel):
    id: str
    status: MessageStatus
    recipients: int
    unknown: list[str] = Field([], description="Ids in `to` that name no subscriber; they were skipped.")


class CountsOut(BaseModel):
    queued: int
    delivered: int
    failed: int
    expired: int


class MessageOut(BaseModel):
    id: str
    status: MessageStatus
    recipients: int
    counts: CountsOut
    title: str | None
    body: str | None
    data: dict[str, Any] | None
    priority: str
    topic: str | None
    channels: list[ChannelType] | None
    created_at: str
    send_at: str | None
    expires_at: str

    @classmethod
    def of(cls, m: Message, counts: Counts) -> MessageOut:
        return cls(
            id=m.id,
            status=message_status(m, counts),
            recipients=m.recipients,
            counts=CountsOut(queued=counts.queued, delivered=counts.delivered, failed=counts.failed,
                             expired=counts.expired),
            title=m.title,
            body=m.body,
            data=m.data,
            priority=m.priority,
            topic=m.topic,
            channels=None if m.channels is None else list(m.channels),
            created_at=rfc3339(m.created_at),
            send_at=None if m.send_at is None else rfc3339(m.send_at),
            expires_at=rfc3339(m.expires_at),
        )  # fmt: skip


class DeliveryOut(BaseModel):
    id: str
    message_id: str
    subscriber_id: str
    channel: ChannelType
    target: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:
        target = d.target if d.channel in (ChannelType.WEBHOOK, ChannelType.STREAM) else _masked(d.target)
        return cls(
            id=d.id,
            message_id=d.message_id,
            subscriber_id=d.subscriber_id,
            channel=d.channel,
            target=target,
            status=d.status,
            attempts=d.attempts,
            last_error=d.last_error,
            created_at=rfc3339(d.created_at),
            updated_at=rfc3339(d.updated_at),
        )


def _masked(target: str) -> str:
    """Phone numbers, addresses and push endpoints (capability URLs) are shown only in part."""
    return target[:12] + "…" if len(target) > 16 else target[:4] + "…"


class DeliveryPage(BaseModel):
    deliveries: list[DeliveryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last one.")


class Retried(BaseModel):
    id: str
    retried: int
