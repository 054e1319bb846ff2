"""When to try a send again, fail over to the next provider, start the chain over, or give up.

``decide`` is the whole policy, a pure function tested with a table of cases: exponential backoff with jitter,
the provider's ``Retry-After`` honoured, and nothing scheduled past the message's expiry.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tidings.core.types import Deferred, Delivered, Permanent, SendOutcome, Transient


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 300.0
    attempts_per_lane: int = 3
    """Transient failures tolerated on one provider before failing over to the next."""


@dataclass(frozen=True, slots=True)
class Done:
    pass


@dataclass(frozen=True, slots=True)
class RetryAt:
    when: float
    counted: bool = True
    """False when nothing was sent (a deferral): the attempt does not count towards the limit."""


@dataclass(frozen=True, slots=True)
class FailOver:
    """Move to the next provider now, starting its attempts from zero."""


@dataclass(frozen=True, slots=True)
class StartOver:
    """Every provider of the chain has had its tries: begin again with the first one at ``when``."""

    when: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: str


Decision = Done | RetryAt | FailOver | StartOver | GiveUp


def backoff(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Delay before retry number ``attempt`` (1-based): exponential, half of it jittered so peers spread out."""
    ceiling = min(policy.max_delay, policy.base_delay * policy.factor ** (attempt - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def decide(
    attempt: int,
    outcome: SendOutcome,
    now: float,
    policy: RetryPolicy,
    rng: random.Random,
    *,
    expires_at: float | None = None,
    give_up_at: float | None = None,
    can_fail_over: bool = False,
    start_over: bool = False,
) -> Decision:
    """What follows ``outcome`` of attempt number ``attempt`` (1-based) on the current provider.

    ``expires_at`` is when the message itself stops being worth sending (a code's validity, a push's TTL);
    ``give_up_at`` is when the sender stops trying to get it through (a push's give-up time, a code's last useful
    moment). ``start_over``: once the last provider has had its tries, begin the chain again rather than give up, for
    as long as ``give_up_at`` allows; a provider that refuses for good still ends it."""
    if isinstance(outcome, Delivered):
        return Done()
    if isinstance(outcome, Deferred):
        if outcome.fail_over and can_fail_over:
            return FailOver()
        return _later(RetryAt(outcome.until, counted=False), outcome.error, expires_at, give_up_at, can_fail_over=False)
    if isinstance(outcome, Permanent):
        return FailOver() if can_fail_over else GiveUp(outcome.error)
    assert isinstance(outcome, Transient)
    delay = backoff(attempt, policy, rng)
    if outcome.retry_after is not None:
        delay = max(delay, outcome.retry_after)
    later: RetryAt | StartOver = RetryAt(now + delay)
    if attempt >= policy.attempts_per_lane:
        if can_fail_over:
            return FailOver()
        if not start_over:
            return GiveUp(outcome.error)
        later = StartOver(now + delay)
    return _later(later, outcome.error, expires_at, give_up_at, can_fail_over=can_fail_over)


def _later(
    later: RetryAt | StartOver,
    error: str,
    expires_at: float | None,
    give_up_at: float | None,
    *,
    can_fail_over: bool,
) -> Decision:
    """``later``, unless it comes too late: past the expiry, or past the time to give up, whichever comes first
    (a code gives up before it expires, and fails; a push may expire before its give-up time)."""
    candidates = ((expires_at, "expired"), (give_up_at, error))
    deadlines = [(deadline, reason) for deadline, reason in candidates if deadline is not None]
    for deadline, reason in sorted(deadlines, key=lambda pair: pair[0]):
        if later.when >= deadline:
            return FailOver() if can_fail_over else GiveUp(reason)
    return later
