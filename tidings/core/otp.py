"""The rules of a one-time code: when to send, resend, accept or refuse.

Every function here is pure: it takes a verification and the time and returns what should happen next.
The store runs these decisions inside one transaction, which is what makes checks atomic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from tidings.core.types import Job, SendPayload, Status, Verification

MIN_CODE_LENGTH = 4
MAX_CODE_LENGTH = 10

LAST_USEFUL = 20.0
"""Seconds before its expiry after which a code is no longer sent (a fifth of its life, if that is less): one that
arrives later leaves no time to type it. Until then its send is retried."""

RETENTION = 25 * 3600.0
"""Seconds a verification stays readable after it expires, and an idempotency record is kept (the contract says at
least 24 h)."""


@dataclass(frozen=True, slots=True)
class Policy:
    code_length: int = 6
    ttl: float = 600.0
    max_checks: int = 5
    max_sends: int = 5


@dataclass(frozen=True, slots=True)
class Refused:
    """The request is refused; ``error`` is the API error code, ``retry_after`` seconds if waiting helps."""

    error: str
    message: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Resend:
    verification: Verification


@dataclass(frozen=True, slots=True)
class StartNew:
    """No pending verification: the caller creates one (it owns ids and sealing)."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    verification: Verification
    valid: bool

    @property
    def attempts_left(self) -> int:
        return max(0, self.verification.max_checks - self.verification.check_count)


def generate_code(length: int, randbelow: Callable[[int], int]) -> str:
    """A uniformly random decimal code, from ``randbelow(n)`` (a number in ``[0, n)``: ``secrets.randbelow``)."""
    if not MIN_CODE_LENGTH <= length <= MAX_CODE_LENGTH:
        raise ValueError(f"code length must be {MIN_CODE_LENGTH}-{MAX_CODE_LENGTH}")
    return str(randbelow(10**length)).zfill(length)


def give_up_at(verification: Verification) -> float:
    """When a send of this code stops being retried (see ``LAST_USEFUL``)."""
    life = verification.expires_at - verification.created_at
    return verification.expires_at - min(LAST_USEFUL, life / 5)


def send_id(verification: Verification) -> str:
    """Each send of a verification has its own id, stable across retries: the receivers' idempotency key."""
    return f"snd_{verification.id.removeprefix('ver_')}.{verification.send_count}"


def send_job(template: Job, verification: Verification) -> Job:
    """The queued job for this send of ``verification``, named after it and retried until the code's last useful
    moment (built directly: ``dataclasses.replace`` costs several times as much, inside the store's transaction)."""
    return Job(
        send_id(verification),
        template.kind,
        verification.id,
        template.lane,
        template.priority,
        template.attempts,
        template.run_at,
        verification.expires_at,
        SendPayload(chain=template.payload.get("chain", []), give_up_at=give_up_at(verification)),
    )


def current_status(verification: Verification, now: float) -> Status:
    """A pending verification past its expiry is expired, whether or not anyone wrote that down yet."""
    return status_at(verification.status, verification.expires_at, now)


def status_at(status: Status, expires_at: float, now: float) -> Status:
    """``current_status`` from the two fields it reads (what a store's filter by status looks at)."""
    if status is Status.PENDING and now >= expires_at:
        return Status.EXPIRED
    return status


def settle(verification: Verification, now: float) -> Verification:
    """The verification with its status brought up to ``now``: expired, since its expiry, if it was pending."""
    status = current_status(verification, now)
    if status is verification.status:
        return verification
    return replace(verification, status=status, updated_at=verification.expires_at)


def decide_start(existing: Verification | None, now: float, resend_cooldown: float = 0) -> StartNew | Resend | Refused:
    """A start request for an address that may already have a verification.

    While one is pending, the same code is sent again on the same verification, up to its send limit and no sooner
    than ``resend_cooldown`` seconds after the last send. Once it is over (approved, canceled, expired), a new one
    starts at once: the cooldown holds back a user pressing "resend", not one who signs in again.
    """
    if existing is None or current_status(existing, now) is not Status.PENDING:
        return StartNew()
    refused = None if existing.is_test else _resend_refusal(existing, now, resend_cooldown)
    if refused is not None:
        return refused
    return Resend(replace(existing, send_count=existing.send_count + 1, last_sent_at=now, updated_at=now))


def _resend_refusal(existing: Verification, now: float, resend_cooldown: float) -> Refused | None:
    if existing.send_count >= existing.max_sends:
        return Refused(
            "max_sends_reached",
            f"This verification was already sent {existing.send_count} times; "
            "wait until it expires or check the code that was sent.",
            retry_after=max(1.0, existing.expires_at - now),
        )
    wait = existing.last_sent_at + resend_cooldown - now
    if wait > 0:
        return Refused(
            "rate_limited",
            f"The code was sent {now - existing.last_sent_at:.0f} s ago; it can be sent again "
            f"{resend_cooldown:g} s after the last send.",
            retry_after=wait,
        )
    return None


_NOT_PENDING = {
    Status.APPROVED: (
        "verification_approved",
        "This verification was already approved; a code is accepted once.",
    ),
    Status.CANCELED: ("verification_canceled", "This verification was canceled; start a new one."),
    Status.EXPIRED: ("verification_expired", "The code has expired; start a new verification."),
    Status.FAILED: (
        "verification_failed",
        "No code could be delivered for this verification; start a new one.",
    ),
}
FINISHED_ERRORS = frozenset(error for error, _ in _NOT_PENDING.values())
"""Refusals that mean the verification is over (answered 404), as opposed to limits (429)."""


def refusal_for(verification: Verification, now: float) -> Refused | None:
    """Why this verification can no longer be checked, or None while it can."""
    status = current_status(verification, now)
    if status is Status.PENDING:
        return None
    if status is Status.MAX_ATTEMPTS_REACHED:
        return Refused(
            "max_attempts_reached",
            "Too many wrong codes were tried for this verification; it cannot be approved any more. Start a new one.",
            retry_after=max(1.0, verification.expires_at - now),
        )
    error, message = _NOT_PENDING[status]
    return Refused(error, message)


def check(verification: Verification, matches: Callable[[Verification], bool], now: float) -> CheckResult | Refused:
    """Count the attempt, then judge it.

    ``matches`` must compare in constant time. The attempt is counted before the comparison and whatever its
    result, so concurrent wrong guesses (serialised by the store) can never pass the limit.
    """
    refused = refusal_for(verification, now)
    if refused is not None:
        return refused
    checks = verification.check_count + 1
    valid = matches(verification)
    if valid:
        status = Status.APPROVED
    elif checks >= verification.max_checks:
        status = Status.MAX_ATTEMPTS_REACHED
    else:
        status = Status.PENDING
    updated = replace(verification, check_count=checks, status=status, updated_at=now)
    return CheckResult(updated, valid=valid)


def cancel(verification: Verification, now: float) -> Verification | Refused:
    refused = refusal_for(verification, now)
    if refused is not None:
        return refused
    return replace(verification, status=Status.CANCELED, updated_at=now)
