"""What becomes of a job once its send has an outcome: the queue's side (``Ack``, ``Reschedule``, ``Drop``), and what
settling it changes besides the queue (``effect``): its verification's count, its delivery's row, a message's stream
deliveries, a push subscription or device token that is gone (and the report of it).

``effect`` is the one statement of those rules. SQLite applies its answer in SQL (``backends/sqlite/effects.py``),
Redis hands it to its settle script (``lua/lib.lua``), and the backend contract suite holds both to one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tidings.core.push import DEAD_TOKENS, DeliveryStatus
from tidings.core.types import PRIORITY_NORMAL, DeliveryPayload, Job

FEEDBACK_LANE = "feedback"
FEEDBACK_TRIES = 20
FEEDBACK_FOR = 86400.0
"""Seconds a report of a removed channel is retried for (as long as the feedback receiver may be down)."""


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
    """The push service no longer knows the delivery's subscription or device token: its subscriber loses it."""
    report: Job | None = None
    """The job that tells ``push.feedback_url`` of it, queued only if the subscriber still had that channel."""


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
    if attempt is None or error not in DEAD_TOKENS:
        return Effect(delivery=change)
    return Effect(delivery=change, forget_subscription=True, report=report_job(attempt.job, error, attempt.at))


def report_job(delivery_job: Job, reason: str, now: float) -> Job:
    """The report that a delivery's channel was removed: a webhook to ``push.feedback_url``, retried for a day.
    Its id follows from the delivery's, so a delivery settled twice (after a crash) reports under one id."""
    payload = DeliveryPayload(give_up_at=now + FEEDBACK_FOR, max_attempts=FEEDBACK_TRIES, reason=reason, at=now)
    return Job(
        id="fbk_" + delivery_job.id.removeprefix("dlv_"),
        kind="feedback",
        ref=delivery_job.id,
        lane=FEEDBACK_LANE,
        priority=PRIORITY_NORMAL,
        run_at=now,
        expires_at=now + FEEDBACK_FOR,
        payload=payload,
    )


def _stream(settlement: Settlement) -> Effect:
    """A stream job that was dropped (its message expired, say) ends its stream deliveries; a sent one counted them
    when it put the message into the caches."""
    if not isinstance(settlement, Drop):
        return NOTHING
    return Effect(stream=DeliveryChange(_ended(settlement), add_attempt=True, error=settlement.reason))


def _ended(drop: Drop) -> DeliveryStatus:
    return DeliveryStatus.EXPIRED if drop.reason == "expired" else DeliveryStatus.FAILED
