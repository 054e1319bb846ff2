"""What the API answers, as typed objects. Each keeps the whole answer in ``raw``, so a field a newer server adds is
not lost on a client that does not know it yet; times (the ``*_at`` fields) are ``datetime`` in UTC."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from typing import Any, Self


def _parse(cls: type[Any], data: dict[str, Any], **nested: Any) -> Any:
    """``cls`` from an answer: the fields it knows (times parsed), ``nested`` ones already built, the rest in raw."""
    values: dict[str, Any] = {}
    for known in fields(cls):
        if known.name in nested:
            values[known.name] = nested[known.name]
        elif known.name in data:
            value = data[known.name]
            is_time = known.name.endswith("_at") and isinstance(value, str)
            values[known.name] = dt.datetime.fromisoformat(value) if is_time else value
    return cls(**values, raw=data)


class _Answer:
    @classmethod
    def of(cls, data: dict[str, Any]) -> Self:
        built: Self = _parse(cls, data)
        return built


@dataclass(frozen=True, slots=True)
class Verification(_Answer):
    id: str
    to: str
    channel: str
    status: str
    """``pending``, ``approved``, ``canceled``, ``expired``, ``max_attempts_reached`` or ``failed``."""
    expires_at: dt.datetime
    send_count: int
    created_at: dt.datetime
    updated_at: dt.datetime | None = None
    attempts_left: int | None = None
    test: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Check(_Answer):
    """A code's check: ``valid`` it was right (``status`` is then ``approved``)."""

    id: str
    status: str
    valid: bool
    attempts_left: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Accepted(_Answer):
    """A message taken: its deliveries are queued."""

    id: str
    status: str
    recipients: int
    unknown: list[str] = field(default_factory=list)
    """Ids in ``to`` that name no subscriber."""
    replayed: bool = False
    """The answer to an earlier request with the same ``Idempotency-Key``: this call sent nothing new."""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Counts(_Answer):
    queued: int
    delivered: int
    failed: int
    expired: int
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    status: str
    """``queued``, ``sending`` or ``done``."""
    recipients: int
    counts: Counts
    title: str | None = None
    body: str | None = None
    data: dict[str, Any] | None = None
    priority: str = "normal"
    topic: str | None = None
    channels: list[str] | None = None
    created_at: dt.datetime | None = None
    send_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, data: dict[str, Any]) -> Message:
        built: Message = _parse(cls, data, counts=Counts.of(data.get("counts", {})))
        return built


@dataclass(frozen=True, slots=True)
class Delivery(_Answer):
    """One message to one recipient through one channel."""

    id: str
    message_id: str
    subscriber_id: str
    channel: str
    target: str
    status: str
    attempts: int
    last_error: str | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Subscriber(_Answer):
    id: str
    name: str | None = None
    locale: str | None = None
    phone: str | None = None
    email: str | None = None
    channels: list[dict[str, Any]] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class SubscriberToken(_Answer):
    """A short-lived token for one subscriber's live stream, fit for a browser."""

    token: str
    subscriber_id: str
    expires_at: dt.datetime
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Key(_Answer):
    id: str
    name: str
    scopes: list[str]
    created_at: dt.datetime
    key: str | None = None
    """The key itself: only in the answer that created it."""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Event(_Answer):
    """A message as a live stream delivers it."""

    id: str
    title: str | None = None
    body: str | None = None
    data: dict[str, Any] | None = None
    priority: str = "normal"
    topic: str | None = None
    created_at: dt.datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Cluster(_Answer):
    """The live nodes and the queue depths (``tidings status``)."""

    backend: str
    nodes: list[dict[str, Any]]
    queues: dict[str, int]
    queued: int
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
