"""The data that every layer passes around: plain, immutable, free of I/O.

Times are POSIX seconds (``float``) inside tidings; the API turns them into RFC 3339 strings at the edge.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NotRequired, TypedDict, final


def rfc3339(timestamp: float) -> str:
    """How times leave tidings: RFC 3339 in UTC, to the millisecond (truncated, as ``datetime.isoformat`` does).

    Every answer carries a few of these, and the times in one burst of requests share their second, so the second
    is formatted once; the fraction is rounded to the microsecond first, as ``datetime.fromtimestamp`` does."""
    second = math.floor(timestamp)
    micros = round((timestamp - second) * 1_000_000)
    if micros == 1_000_000:
        second, micros = second + 1, 0
    return f"{_second(second)}.{micros // 1000:03d}Z"


@functools.lru_cache(maxsize=1024)
def _second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


class Status(StrEnum):
    """Where a verification stands."""

    PENDING = "pending"
    APPROVED = "approved"
    CANCELED = "canceled"
    EXPIRED = "expired"
    MAX_ATTEMPTS_REACHED = "max_attempts_reached"
    FAILED = "failed"


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"


@dataclass(slots=True)
class Verification:
    """One code sent to one address; the code itself is only ever held sealed (see ``core.sealing``).

    Never changed once made (a change is a new one, from ``dataclasses.replace``), but not declared frozen: a frozen
    dataclass sets each field through ``object.__setattr__``, which makes building one eight times as slow, and every
    send builds several of these and of ``Job``."""

    id: str
    to: str
    channel: Channel
    status: Status
    sealed_code: bytes
    locale: str
    app_name: str
    template: str | None
    created_at: float
    expires_at: float
    updated_at: float
    send_count: int = 1
    check_count: int = 0
    delivered_count: int = 0
    max_checks: int = 5
    max_sends: int = 5
    last_sent_at: float = 0.0
    is_test: bool = False
    country: str | None = None


@final  # so that ``"max_attempts" in payload`` tells the two apart
class SendPayload(TypedDict):
    """What a code's send job carries: the providers to try in order, and when to stop trying (a code's last
    useful moment; set when the send is queued, see ``otp.send_job``)."""

    chain: list[str]
    give_up_at: NotRequired[float]


@final
class DeliveryPayload(TypedDict):
    """What a pushed message's delivery job (or its stream job) carries: when to stop trying, how many tries, and
    for an SMS or email delivery the providers to fail over to. A report of a removed channel (to
    ``push.feedback_url``) is delivered the same way, and carries why the channel was removed and when."""

    give_up_at: float
    max_attempts: int
    chain: NotRequired[list[str]]
    reason: NotRequired[str]
    at: NotRequired[float]


Payload = SendPayload | DeliveryPayload


@dataclass(slots=True)
class Job:
    """A unit of work for the dispatcher: send one thing through one lane (a provider).

    ``id`` is stable across retries and failovers; it is the idempotency key receivers use to drop duplicates.
    Never changed once made, and not declared frozen for the reason ``Verification`` gives.
    """

    id: str
    kind: str
    ref: str
    lane: str
    priority: int = 0
    attempts: int = 0
    run_at: float = 0.0
    expires_at: float | None = None
    payload: Payload = field(default_factory=lambda: SendPayload(chain=[]))


# Priorities: lower runs first. A verification code never waits behind a bulk push.
PRIORITY_VERIFICATION = 0
PRIORITY_HIGH = 10
PRIORITY_NORMAL = 20
PRIORITY_LOW = 30
PRIORITIES = (PRIORITY_VERIFICATION, PRIORITY_HIGH, PRIORITY_NORMAL, PRIORITY_LOW)


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """What a provider is asked to send. ``text`` may hold a code, so it never appears in a repr."""

    to: str
    text: str = field(repr=False)
    idempotency_key: str
    subject: str | None = None
    params: dict[str, str] = field(default_factory=dict, repr=False)
    locale: str = "en"


# What a provider answered, as a small closed family of outcomes rather than a bool.


@dataclass(frozen=True, slots=True)
class Delivered:
    provider_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Transient:
    """Worth trying again (429, 5xx, timeouts, documented retryable codes); ``retry_after`` if the provider said."""

    error: str
    message: str = ""
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Permanent:
    """The provider refused for good (bad number, bad credentials, content rejected)."""

    error: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class Deferred:
    """Not sent, and not a failure: the destination cannot take it now (its circuit is open, it is at its
    concurrency or rate limit). Try again at ``until`` without counting an attempt."""

    error: str
    until: float
    message: str = ""
    fail_over: bool = False
    """The whole provider is held off (its circuit is open): the next provider of the chain, if any, takes the send
    now instead of waiting."""


SendOutcome = Delivered | Transient | Permanent | Deferred
