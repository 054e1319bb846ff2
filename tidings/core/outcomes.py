"""What becomes of a job once its send has an outcome: the queue's side (``Ack``, ``Reschedule``, ``Drop``), and what
settling it changes besides the queue (``effect``): its verification's count, its delivery's row, a message's stream
deliveries, a push subscription that is gone.

``effect`` is the one statement of those rules. SQLite applies its answer in SQL (``backends/sqlite/effects.py``),
Redis hands it to its settle script (``lua/lib.lua``), and the backend contract suite holds both to one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tidings.core.push import SUBSCRIPTION_GONE, DeliveryStatus
from tidings.core.types import Job


@dataclass(frozen=True, slots=True)
class Ack:
    """Sent: the job leaves the queue."""

    provider_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Reschedule:
    """Try again at ``run_at`` on ``lane`` (the same one, or the next provider on failover)."""

    run_at: float
    lane: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Drop:
    """Give up on the job; ``failed`` says whether the thing it sent is now failed for good."""

    reason: str
    failed: bool = True


Settlement = Ack | Reschedule | Drop


@dataclass(frozen=True, slots=True)
class Attempt:
    """One recorded try of one job with one provider."""

    job: Job
    provider: str
    outcome: str
    error: str | None
    at: float


@dataclass(frozen=True, slots=True)
class DeliveryChange:
    """How a delivery's row changes."""

    status: DeliveryStatus | None = None
    """Its new status; None leaves it queued."""
    attempts: int | None = None
    """Its tries so far, as a reschedule counts them."""
    add_attempt: bool = False
    """One more try (one that ended it)."""
    error: str | None = None
    """The last error, when there is one to write; None keeps the one written before."""
    clear_error: bool = False


@dataclass(frozen=True, slots=True)
class Effect:
    verification: Literal["delivered", "failed"] | None = None
    """A code was delivered (counted), or every provider failed it (it fails, unless one was delivered before)."""
    delivery: DeliveryChange | None = None
    """The change to the job's delivery (a delivery job's id is its delivery's)."""
    stream: DeliveryChange | None = None
    """The change to every stream delivery of the job's message still queued."""
    forget_subscription: bool = False
    """The push service no longer knows the delivery's subscription: its subscriber loses it."""


NOTHING = Effect()


def effect(job: Job, settlement: Settlement, attempt: Attempt | None) -> Effect:
    """What settling ``job`` so changes besides the queue."""
    match job.kind:
        case "verification":
            return _verification(settlement)
        case "delivery":
            return _delivery(settlement, attempt)
        case "stream":
            return _stream(settlement)
    return NOTHING


def _verification(settlement: Settlement) -> Effect:
    if isinstance(settlement, Ack):
        return Effect(verification="delivered")
    if isinstance(settlement, Drop) and settlement.failed:
        return Effect(verification="failed")
    return NOTHING


def _delivery(settlement: Settlement, attempt: Attempt | None) -> Effect:
    error = attempt.error if attempt is not None else None
    if isinstance(settlement, Reschedule):
        return Effect(delivery=DeliveryChange(attempts=settlement.attempts, error=error))
    tried = attempt is not None
    if isinstance(settlement, Ack):
        return Effect(delivery=DeliveryChange(DeliveryStatus.DELIVERED, add_attempt=tried, clear_error=True))
    error = error or settlement.reason
    change = DeliveryChange(_ended(settlement), add_attempt=tried, error=error)
    return Effect(delivery=change, forget_subscription=error == SUBSCRIPTION_GONE)


def _stream(settlement: Settlement) -> Effect:
    """A stream job that was dropped (its message expired, say) ends its stream deliveries; a sent one counted them
    when it put the message into the caches."""
    if not isinstance(settlement, Drop):
        return NOTHING
    return Effect(stream=DeliveryChange(_ended(settlement), add_attempt=True, error=settlement.reason))


def _ended(drop: Drop) -> DeliveryStatus:
    return DeliveryStatus.EXPIRED if drop.reason == "expired" else DeliveryStatus.FAILED
