"""Paged lists: the ``limit`` and ``cursor`` query parameters every list takes, and the pages of verifications,
subscribers and messages, newest first.

A page is full (``limit`` items) or the last one; a full page's ``next_cursor`` names where the next one starts (it
may be empty). The cursor of a newest-first list is its last item's creation time and id, ``<seconds>~<id>``: the
order is ``(created_at, id)``, so items made in the same instant are neither skipped nor repeated, and an item
deleted meanwhile moves nothing. Callers treat it as opaque.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum
from typing import Literal, Protocol, TypeVar

from multidict import MultiMapping
from pydantic import BaseModel, Field

from tidings.api.message_models import MessageOut
from tidings.api.models import VerificationOut
from tidings.api.routing import Param
from tidings.api.subscriber_models import (
    AddressChannelOut,
    ApnsChannelOut,
    FcmChannelOut,
    SubscriberOut,
    WebhookChannelOut,
    WebPushChannelOut,
)
from tidings.core.push import Subscriber
from tidings.errors import InvalidInput
from tidings.ports import Position

PAGE = 100
MAX_PAGE = 1000
MAX_DIGITS = 18
"""A number that fits 64 bits."""
_SECONDS = r"[0-9]{1,16}(\.[0-9]{1,24})?"
_CURSOR = re.compile(f"^{_SECONDS}~[A-Za-z0-9._:-]{{1,128}}$")
"""A newest-first list's cursor: seconds since 1970 (Python's ``repr`` of the float, which reads back exactly) and an
id (subscribers' are the callers' own: ``core.push.NAME``; verifications' and messages' fit it too)."""
_FIXED = re.compile(_SECONDS)

Choice = TypeVar("Choice", bound=StrEnum)


class Listed(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def created_at(self) -> float: ...


def limit_param(items: str) -> Param:
    return Param(
        f"{items} per page: 1 to {MAX_PAGE}, {PAGE} when left out.",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": PAGE},
    )


CURSOR = Param(
    "The `next_cursor` of the previous page, as it came (its form may change: do not make one).",
    {"type": "string", "pattern": _CURSOR.pattern},
)


def whole_number(text: str) -> int | None:
    """ASCII digits that fit a 64-bit number (``str.isdigit`` also takes "²", which ``int`` refuses)."""
    if not (text.isascii() and text.isdigit() and len(text) <= MAX_DIGITS):
        return None
    return int(text)


def page_size(query: MultiMapping[str]) -> int:
    limit = whole_number(query.get("limit", str(PAGE)))
    if limit is None or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit: a number from 1 to {MAX_PAGE}", field="limit")
    return limit


def choice(query: MultiMapping[str], name: str, kind: type[Choice]) -> Choice | None:
    """The query parameter ``name``, one of the values of ``kind``, or None when left out."""
    value = query.get(name)
    if value is None:
        return None
    if value not in kind.__members__.values():
        raise InvalidInput(f"{name}: one of {', '.join(kind)}", field=name)
    return kind(value)


def position(query: MultiMapping[str]) -> Position | None:
    """Where the page asked for starts: after the position its ``cursor`` names (none: at the newest)."""
    cursor = query.get("cursor")
    if cursor is None:
        return None
    if not _CURSOR.fullmatch(cursor):
        raise InvalidInput("cursor: pass back the `next_cursor` of the previous page", field="cursor")
    seconds, _, id = cursor.partition("~")
    return Position(float(seconds), id)


def next_cursor(items: Sequence[Listed], limit: int) -> str | None:
    if len(items) < limit:
        return None
    last = items[-1]
    seconds = repr(last.created_at)
    if not _FIXED.fullmatch(seconds):  # written with an exponent: not a time of this era (tests make such)
        seconds = f"{max(last.created_at, 0.0):.6f}"
    return f"{seconds}~{last.id}"


NEXT_CURSOR = "Pass as `cursor` for the next page; null on the last one."


class VerificationPage(BaseModel):
    verifications: list[VerificationOut]
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class MessagePage(BaseModel):
    messages: list[MessageOut]
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class ListedWebhookChannelOut(BaseModel):
    """A webhook as a list shows it: without its secret, which ``GET /v1/subscribers/{id}`` (admin) shows."""

    type: Literal["webhook"] = "webhook"
    url: str


ListedChannelOut = ListedWebhookChannelOut | WebPushChannelOut | ApnsChannelOut | FcmChannelOut | AddressChannelOut


class ListedSubscriberOut(BaseModel):
    """A subscriber as ``GET /v1/subscribers/{id}`` shows it, but for its webhooks' secrets."""

    id: str
    name: str | None
    locale: str | None
    phone: str | None
    email: str | None
    channels: list[ListedChannelOut]
    topics: list[str]
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, s: Subscriber) -> ListedSubscriberOut:
        shown = SubscriberOut.of(s)
        channels: list[ListedChannelOut] = [
            ListedWebhookChannelOut(url=c.url) if isinstance(c, WebhookChannelOut) else c for c in shown.channels
        ]
        return cls(**shown.model_dump(exclude={"channels"}), channels=channels)


class SubscriberPage(BaseModel):
    subscribers: list[ListedSubscriberOut]
    next_cursor: str | None = Field(description=NEXT_CURSOR)
