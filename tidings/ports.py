"""The interfaces the outer layers implement. The API and the dispatcher speak only to these, so a backend (SQLite,
Redis) or a channel can be added without touching them. Every backend keeps the semantics written here, checked by
one contract test suite."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tidings.core.otp import CheckResult, Refused
from tidings.core.outcomes import Attempt, Settlement
from tidings.core.push import Counts, Delivery, Message, MessageStatus, Subscriber
from tidings.core.ratelimit import Limit
from tidings.core.types import Channel, Job, SendOutcome, Status, Verification

IDEMPOTENCY_PENDING = 0
"""The status of a claimed ``Idempotency-Key`` whose request is still under way."""
IDEMPOTENCY_CLAIM = 60.0
"""Seconds a claim holds without an answer (its node may have died meanwhile)."""


@dataclass(frozen=True, slots=True)
class StartRequest:
    """Everything needed to start (or resend) a verification in one atomic step.

    ``fresh`` is the verification to create if none is pending (the caller made its id and sealed its code);
    ``limits`` are the anti-abuse limits this send must pass; ``job`` is the send to enqueue (None for test numbers);
    a pending verification is sent again no sooner than ``resend_cooldown`` seconds after its last send.
    """

    to: str
    channel: Channel
    fresh: Verification
    limits: list[Limit]
    job: Job | None
    resend_cooldown: float = 0.0


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
class Position:
    """Where a page of a newest-first list ended: its last item's creation time and id. Lists are ordered by
    ``(created_at, id)``, newest first, and the next page holds what comes strictly after this."""

    created_at: float
    id: str


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    scopes: frozenset[str]
    created_at: float
    key_hash: str = field(repr=False, default="")


class Store(Protocol):
    async def start_verification(self, request: StartRequest, now: float) -> Started | Refused: ...

    async def check_verification(
        self, lookup: Lookup, matches: Callable[[Verification], bool], now: float
    ) -> CheckResult | Refused | None:
        """Count the attempt and judge it atomically; None when there is no such verification."""

    async def cancel_verification(self, id: str, now: float) -> Verification | Refused | None: ...

    async def get_verification(self, id: str) -> Verification | None: ...

    async def get_verifications(self, ids: list[str]) -> dict[str, Verification]: ...

    async def list_verifications(
        self, to: str | None, status: Status | None, after: Position | None, limit: int, now: float
    ) -> list[Verification]:
        """Up to ``limit`` verifications after ``after``, newest first: of the address ``to`` (on any channel),
        in ``status`` as ``core.otp.current_status`` reads it at ``now`` (a pending one past its expiry is
        expired). As stored: the caller settles their status for showing."""

    async def add_key(self, key: ApiKey) -> None: ...

    async def find_key(self, key_hash: str) -> ApiKey | None: ...

    async def list_keys(self) -> list[ApiKey]: ...

    async def revoke_key(self, id: str, now: float) -> bool: ...

    async def idempotent_claim(
        self, scope: str, key: str, fingerprint: str, now: float
    ) -> tuple[str, int, bytes] | None:
        """Take this key for a request about to run (None), or say what holds it: the fingerprint, status and body
        first answered, or the fingerprint and ``IDEMPOTENCY_PENDING`` of a request still under way (on any node).
        A claim whose request never finished lapses after ``IDEMPOTENCY_CLAIM`` seconds."""

    async def idempotent_put(
        self, scope: str, key: str, fingerprint: str, status: int, body: bytes, now: float
    ) -> None:
        """The answer to keep for the key, in place of its claim."""

    async def idempotent_release(self, scope: str, key: str) -> None:
        """Give up a claim whose request gave no answer worth keeping, so that a retry runs again."""

    async def purge(self, now: float) -> int:
        """Remove what has outlived its retention; returns how many rows went."""

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


Fanout = Callable[[Message, list[Subscriber]], tuple[Message, list[Delivery], list[Job]]]
"""Given a message and its recipients: the message as recorded, its deliveries and the jobs that carry them."""


@dataclass(frozen=True, slots=True)
class DeliveryContext:
    """What preparing a batch of delivery jobs needs, read in one round trip."""

    deliveries: dict[str, Delivery]
    messages: dict[str, Message]
    subscribers: dict[str, Subscriber]


class PushStore(Protocol):
    """Subscribers, messages and deliveries, and the live streams' message cache."""

    async def put_subscriber(self, subscriber: Subscriber) -> tuple[Subscriber, bool]:
        """Create or replace; True when it was created."""

    async def get_subscriber(self, id: str) -> Subscriber | None: ...

    async def delete_subscriber(self, id: str) -> bool: ...

    async def list_subscribers(self, topic: str | None, after: Position | None, limit: int) -> list[Subscriber]:
        """Up to ``limit`` subscribers after ``after``, newest first (by when they were created, which a
        replacement keeps), of ``topic`` if given; with their secrets sealed, as stored."""

    async def create_message(self, message: Message, to: list[str] | None, plan: Fanout) -> tuple[Message, list[str]]:
        """Resolve the recipients (``to``, or the message's topic) and write the message, its deliveries and their
        jobs atomically; returns the message and the ids in ``to`` that name no subscriber."""

    async def get_message(self, id: str) -> tuple[Message, Counts] | None: ...

    async def count_topic(self, topic: str) -> int:
        """How many subscribers a topic has now."""

    async def list_messages(
        self, status: MessageStatus | None, after: Position | None, limit: int
    ) -> list[tuple[Message, Counts]]:
        """Up to ``limit`` messages after ``after``, newest first, with their counts; in ``status`` as
        ``Counts.status`` derives it, if given."""

    async def list_deliveries(
        self, message_id: str | None, status: str | None, after: int, limit: int
    ) -> list[tuple[int, Delivery]]:
        """Deliveries after the cursor ``after``, in order, with the cursor of each."""

    async def retry_failed(self, message_id: str, jobs_for: Callable[[list[Delivery]], list[Job]], now: float) -> int:
        """Queue a message's failed deliveries again, atomically; returns how many."""

    async def delivery_context(self, ids: list[str]) -> DeliveryContext: ...

    async def stream_context(self, message_ids: list[str]) -> tuple[dict[str, Message], dict[str, list[str]]]:
        """The messages, and per message the subscribers whose live stream has not had it yet."""

    async def record_stream(self, message_id: str, subscriber_ids: list[str], now: float) -> None:
        """Add a message to these subscribers' stream caches and count those deliveries delivered."""

    async def stream_since(self, subscriber_id: str, since: str | None, limit: int, not_before: float) -> list[Message]:
        """Cached messages of one stream after the message ``since``, oldest first."""

    async def purge(self, now: float, retention: float, cache_age: float) -> int: ...


FAILURES_KEPT = 50


@dataclass(frozen=True, slots=True)
class LoggedAttempt:
    """One try of one job, as the log of attempts keeps it (what ``GET /v1/events`` tails)."""

    cursor: str
    """Its place in the log: pass it back to read what came after."""
    job: str
    kind: str
    ref: str
    """The verification's or the message's id."""
    provider: str
    outcome: str
    error: str | None
    at: float


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

    async def attempts_after(self, cursor: str | None, limit: int) -> tuple[list[LoggedAttempt], str]:
        """Up to ``limit`` attempts logged after ``cursor`` (None: after the last one so far, so none), oldest first,
        and the cursor to read on from. Every process's attempts, on Redis."""

    async def failures(self, ref: str) -> list[LoggedAttempt]:
        """The last ``FAILURES_KEPT`` tries that failed of one verification's (or message's) jobs, oldest first."""

    @property
    def queued(self) -> int:
        """A cheap estimate of queued jobs, for back-pressure."""


class Sender(Protocol):
    """Where a lane's jobs go: an SMS or email provider, or a push channel (webhook, Web Push, live stream)."""

    @property
    def name(self) -> str:
        """The lane's name: a class attribute of a provider, an instance's own of a channel."""

    async def send(self, message: Any) -> SendOutcome:
        """Send one prepared message; report a refusal or a network failure as an outcome, never raise."""


@runtime_checkable
class BatchSender(Sender, Protocol):
    """A sender whose service takes many messages in one request (Yunpian's ``multi_send``)."""

    batch_size: int
    """At most this many in one request; 1 when batching is turned off."""

    async def send_many(self, messages: list[Any]) -> list[SendOutcome]:
        """Send up to ``batch_size`` messages in one request; one outcome per message, in order."""


Deliver = Callable[[str, bytes, list[str]], None]
"""Hands one live-stream event (message id, event bytes, subscriber ids) to this process's open connections."""


class Relay(Protocol):
    """Carries live-stream events from the worker that sent them to every process that holds connections."""

    async def publish(self, message_id: str, event: bytes, subscriber_ids: list[str]) -> None: ...

    async def run(self, deliver: Deliver, lost: Callable[[], None]) -> None:
        """Hand every published event to ``deliver`` until cancelled; ``lost`` is called when events may have been
        missed (the connection to the other nodes dropped), so that clients reconnect and replay."""


@dataclass(frozen=True, slots=True)
class Node:
    """One running process, as it last reported itself."""

    id: str
    role: str
    host: str
    pid: int
    version: str
    started_at: float
    seen_at: float
    streams: int = 0
    """Live connections it holds."""
    in_flight: int = 0
    """Sends it has under way."""
    circuits: dict[str, str] = field(default_factory=dict)
    """Its providers whose circuit is not closed (``open`` or ``half_open``), by name."""


class Stats(Protocol):
    """Counts per time bucket (``core.stats``), added to by every process: on Redis into shared buckets."""

    async def add(self, counts: Mapping[tuple[int, str], int], resolution: int) -> None:
        """Add ``counts`` (by bucket start and name) to the buckets of ``resolution`` seconds."""

    async def read(self, resolution: int, since: float, until: float) -> dict[tuple[int, str], int]:
        """The counts of the buckets of ``resolution`` that start in [since, until)."""

    async def purge(self, now: float) -> int:
        """Forget buckets older than ``core.stats.KEPT`` says; returns how many rows went."""


class Nodes(Protocol):
    """The live processes: each reports itself every few seconds and is forgotten when it stops reporting."""

    async def beat(self, node: Node, ttl: float) -> None: ...

    async def live(self, now: float) -> list[Node]: ...
