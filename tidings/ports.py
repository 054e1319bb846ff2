"""The interfaces the outer layers implement. The API and the dispatcher speak only to these, so a backend (SQLite,
Redis) or a channel can be added without touching them. Every backend keeps the semantics written here, checked by
one contract test suite."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tidings.core.otp import CheckResult, Refused
from tidings.core.ratelimit import Limit
from tidings.core.types import Channel, Job, SendOutcome, Verification


@dataclass(frozen=True, slots=True)
class StartRequest:
    """Everything needed to start (or resend) a verification in one atomic step.

    ``fresh`` is the verification to create if none is pending (the caller made its id and sealed its code);
    ``limits`` are the anti-abuse limits this send must pass; ``job`` is the send to enqueue (None for test numbers).
    """

    to: str
    channel: Channel
    fresh: Verification
    limits: list[Limit]
    job: Job | None


@dataclass(frozen=True, slots=True)
class Started:
    verification: Verification
    resent: bool


@dataclass(frozen=True, slots=True)
class Lookup:
    """A verification to check: by id, or the latest one for an address."""

    id: str | None = None
    to: str | None = None


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    scopes: frozenset[str]
    created_at: float
    key_hash: str = field(repr=False, default="")


# What the dispatcher does with a job once its send has an outcome.


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


class Store(Protocol):
    async def start_verification(self, request: StartRequest, now: float) -> Started | Refused: ...

    async def check_verification(
        self, lookup: Lookup, matches: Callable[[Verification], bool], now: float
    ) -> CheckResult | Refused | None:
        """Count the attempt and judge it atomically; None when there is no such verification."""

    async def cancel_verification(self, id: str, now: float) -> Verification | Refused | None: ...

    async def get_verification(self, id: str) -> Verification | None: ...

    async def get_verifications(self, ids: list[str]) -> dict[str, Verification]: ...

    async def add_key(self, key: ApiKey) -> None: ...

    async def find_key(self, key_hash: str) -> ApiKey | None: ...

    async def list_keys(self) -> list[ApiKey]: ...

    async def revoke_key(self, id: str, now: float) -> bool: ...

    async def idempotent_get(self, scope: str, key: str) -> tuple[str, int, bytes] | None:
        """The fingerprint, status and body first answered to this key, if any."""

    async def idempotent_put(
        self, scope: str, key: str, fingerprint: str, status: int, body: bytes, now: float
    ) -> None: ...

    async def purge(self, now: float) -> int:
        """Remove what has outlived its retention; returns how many rows went."""

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class Queue(Protocol):
    async def lease(self, lane: str, limit: int, now: float, lease_for: float) -> list[Job]:
        """Up to ``limit`` due jobs of ``lane``, highest priority first, hidden from others for ``lease_for``."""

    async def settle(self, settled: list[tuple[Job, Settlement, Attempt | None]], now: float) -> None:
        """Record outcomes in one batch; a job leaves the queue only here."""

    async def release(self, jobs: list[Job]) -> None:
        """Give leased jobs back at once (graceful shutdown)."""

    async def depth(self) -> dict[str, int]: ...

    async def next_due(self) -> float | None:
        """When the earliest job becomes due, so the dispatcher can sleep until then."""

    async def wait_for_work(self, timeout: float) -> None:
        """Return when a job may have arrived, or after ``timeout``."""

    @property
    def queued(self) -> int:
        """A cheap estimate of queued jobs, for back-pressure."""


class Sender(Protocol):
    """Where a lane's jobs go: an SMS or email provider, or a push channel (webhook, Web Push, live stream)."""

    name: str

    async def send(self, message: Any) -> SendOutcome:
        """Send one prepared message; report a refusal or a network failure as an outcome, never raise."""
