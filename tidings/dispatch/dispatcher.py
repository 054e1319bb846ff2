"""Lease due jobs in batches, send them with bounded concurrency per provider, record outcomes in batches.

A job leaves the queue only when its outcome is recorded; a job leased by a process that died comes back when its
lease runs out. On shutdown the dispatcher stops leasing, lets in-flight sends finish for a grace period, and gives
back the rest at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from tidings.core import retry
from tidings.core.outcomes import Ack, Attempt, Drop, Reschedule, Settlement
from tidings.core.push import StreamCall
from tidings.core.settings import DispatchSettings
from tidings.core.types import Deferred, Delivered, Job, Permanent, SendOutcome, Transient
from tidings.dispatch.lane import Lane
from tidings.dispatch.settler import Settler
from tidings.ports import BatchSender, Queue
from tidings.runtime.metrics import Metrics
from tidings.runtime.tally import Tally

log = logging.getLogger("tidings.dispatch")


OUTCOMES_GRACE = 5.0
"""Seconds a stop gives the last outcomes at least, whatever ``shutdown_grace`` gives the sends: a store that
answers writes them in milliseconds, and an outcome not written means a send made again."""


class JobKind(Protocol):
    async def prepare(self, jobs: list[Job], now: float) -> Sequence[object]:
        """What to hand to the lane's sender for each job, or why it is not to be sent."""


class Dispatcher:
    def __init__(
        self,
        queue: Queue,
        lanes: dict[str, Lane],
        kinds: dict[str, JobKind],
        settings: DispatchSettings,
        metrics: Metrics,
        rng: random.Random | None = None,
        *,
        tally: Tally | None = None,
        channels: Mapping[str, str] | None = None,
    ) -> None:
        """``tally`` counts what happens for ``GET /v1/stats``; ``channels`` names the channel a delivery sent
        through each lane is counted under (``sms`` for an SMS provider's lane; a push lane is its channel)."""
        self.queue = queue
        self.tally = tally or Tally(None)
        self.channels = channels or {}
        self.lanes = lanes
        self.kinds = kinds
        self.settings = settings
        # prometheus-client validates the labels and takes a lock on every labels(): ask once per provider.
        self._in_flight = functools.cache(metrics.in_flight.labels)
        self._latency = functools.cache(metrics.send_latency.labels)
        self._jobs = functools.cache(metrics.jobs.labels)
        self.policy = retry.RetryPolicy(
            base_delay=settings.retry_base_delay,
            max_delay=settings.retry_max_delay,
            attempts_per_lane=settings.attempts_per_provider,
        )
        self.rng = rng or random.Random()
        self.settler = Settler(queue)
        self._wake = asyncio.Event()
        self._stopping = False
        self._sends: dict[asyncio.Task[None], list[Job]] = {}
        """Each send under way, with its job (or, for a batch, its jobs)."""
        self._preparing: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return sum(map(len, self._sends.values()))

    async def run(self) -> None:
        """Lease and send until ``stop``."""
        forward = asyncio.create_task(self._forward_arrivals())
        settling = asyncio.create_task(self.settler.run())
        try:
            pause = 0.1
            while not self._stopping:
                # Cleared before the queue is read, so that work arriving or a lane freeing up while a lease round
                # is under way still wakes the dispatcher (clearing it after the round lost those, for up to 1 s).
                self._wake.clear()
                try:
                    if not await self._lease_round():
                        await self._idle()
                    pause = 0.1
                except Exception as exc:  # the store is down: wait and try again, never stop dispatching
                    log.error("cannot lease jobs (%s); retrying in %.1f s", exc, pause)
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 5.0)
        finally:
            forward.cancel()
            settling.cancel()

    async def stop(self) -> None:
        """Finish or give back every leased job, then write down every outcome."""
        self._stopping = True
        self._wake.set()
        if self._preparing:
            await asyncio.wait(self._preparing)
        if self._sends:
            await asyncio.wait(list(self._sends), timeout=self.settings.shutdown_grace)
        unfinished = [job for task, jobs in self._sends.items() if not task.done() for job in jobs]
        for task in list(self._sends):
            task.cancel()
        if unfinished:
            log.warning(
                "giving back %d jobs still in flight after %.0f s",
                len(unfinished),
                self.settings.shutdown_grace,
            )
            await asyncio.gather(*self._sends, return_exceptions=True)
            try:
                await self.queue.release(unfinished)
            except Exception as exc:
                log.error(
                    "cannot give back %d jobs (%s); they come back once their lease runs out", len(unfinished), exc
                )
        try:  # a store that does not answer must not hold the stop for ever: the leases cover what is not written
            async with asyncio.timeout(max(self.settings.shutdown_grace, OUTCOMES_GRACE)):
                await self.settler.flush()
        except TimeoutError:
            log.error(
                "stopping with %d outcomes not recorded (the store does not answer); their jobs are sent again"
                " once their lease runs out",
                self.settler.unwritten,
            )

    async def _lease_round(self) -> bool:
        """Lease for every lane with room; True when some lane got all it asked for, so that more may be waiting
        (otherwise the dispatcher waits for new work rather than asking again for a few jobs at a time)."""
        more = False
        now = time.time()
        for lane in self.lanes.values():
            room = min(lane.free, self.settings.batch_size)
            if room <= 0:
                continue
            jobs = await self.queue.lease(lane.name, room, now, self.settings.lease)
            if not jobs:
                continue
            more = more or len(jobs) == room
            lane.active += len(jobs)
            self._in_flight(lane.name).set(lane.active)
            task = asyncio.create_task(self._prepare(lane, jobs))
            self._preparing.add(task)
            task.add_done_callback(self._preparing.discard)
        return more

    async def _idle(self) -> None:
        due = await self.queue.next_due()
        timeout = 1.0 if due is None else min(1.0, max(0.005, due - time.time()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _forward_arrivals(self) -> None:
        while True:
            await self.queue.wait_for_work(5.0)
            self._wake.set()

    async def _prepare(self, lane: Lane, jobs: list[Job]) -> None:
        by_kind: dict[str, list[Job]] = defaultdict(list)
        for job in jobs:
            by_kind[job.kind].append(job)
        now = time.time()
        for kind, group in by_kind.items():
            try:
                prepared = await self.kinds[kind].prepare(group, now)
            except Exception:
                log.exception("cannot prepare %d %s jobs; they return after their lease", len(group), kind)
                self._free(lane, len(group))
                continue
            ready: list[tuple[Job, object]] = []
            for job, message in zip(group, prepared, strict=True):
                if isinstance(message, Drop):
                    self._free(lane, 1)
                    self._jobs(lane.name, message.reason).inc()
                    self._tally(lane, job, None, message)
                    self.settler.add(job, message, None)
                else:
                    ready.append((job, message))
            if lane.batch_size > 1 and len(ready) > 1:
                for start in range(0, len(ready), lane.batch_size):
                    batch = ready[start : start + lane.batch_size]
                    self._start(self._send_batch(lane, batch), [job for job, _ in batch])
            else:
                for job, message in ready:
                    self._start(self._send(lane, job, message), [job])

    def _start(self, send: Coroutine[Any, Any, None], jobs: list[Job]) -> None:
        task = asyncio.create_task(send)
        self._sends[task] = jobs
        task.add_done_callback(self._sends.pop)

    async def _send(self, lane: Lane, job: Job, message: object) -> None:
        async def send() -> list[SendOutcome]:
            await lane.pace()
            try:
                return [await lane.sender.send(message)]
            except Exception as exc:
                log.exception("provider %s raised on job %s", lane.name, job.id)
                return [Transient("provider_error", type(exc).__name__)]

        started = time.monotonic()
        was_open = lane.circuit_open
        try:
            [outcome] = await lane.through_circuit(send, 1)
        finally:
            self._free(lane, 1)
        self._count(lane, [outcome], time.monotonic() - started, was_open)
        self._record(lane, job, outcome, len(message.subscriber_ids) if isinstance(message, StreamCall) else 1)

    async def _send_batch(self, lane: Lane, batch: list[tuple[Job, object]]) -> None:
        """Jobs leased together, handed to the provider in one call: no task or future for each of them."""
        assert isinstance(lane.sender, BatchSender)
        sender = lane.sender

        async def send() -> list[SendOutcome]:
            try:
                outcomes = await sender.send_many([message for _, message in batch])
                if len(outcomes) != len(batch):
                    raise ValueError(f"{len(outcomes)} outcomes for {len(batch)} messages")
            except Exception as exc:
                log.exception("provider %s raised on %d jobs", lane.name, len(batch))
                return [Transient("provider_error", type(exc).__name__)] * len(batch)
            return outcomes

        started = time.monotonic()
        was_open = lane.circuit_open
        try:
            outcomes = await lane.through_circuit(send, len(batch))
        finally:
            self._free(lane, len(batch))
        self._count(lane, outcomes, time.monotonic() - started, was_open)
        for (job, _), outcome in zip(batch, outcomes, strict=True):
            self._record(lane, job, outcome)

    def _count(self, lane: Lane, outcomes: list[SendOutcome], elapsed: float, was_open: bool) -> None:
        """One provider request: one latency, and a count of each kind of outcome of the sends it carried; for the
        stats, the sends that got an answer (or a failure) and the opening of the provider's circuit."""
        self._latency(lane.name).observe(elapsed)
        for name, count in Counter(map(_outcome_name, outcomes)).items():
            self._jobs(lane.name, name).inc(count)
            if name != "deferred" and lane.name not in ("stream", "fanout"):
                self.tally.count(f"sends.{lane.name}.{'ok' if name == 'delivered' else 'error'}", count)
        if lane.circuit_open and not was_open:
            self.tally.count(f"circuits.{lane.name}.opened")

    def _record(self, lane: Lane, job: Job, outcome: SendOutcome, recipients: int = 1) -> None:
        """Hand what a send's outcome decides to the settler. ``recipients``: the deliveries the job stands for (a
        stream job, one per subscriber)."""
        now = time.time()
        attempt = None
        if not isinstance(outcome, Deferred):  # nothing was sent, so there was no attempt to record
            attempt = Attempt(job, lane.name, _outcome_name(outcome), getattr(outcome, "error", None), now)
        settlement = self._settlement(job, outcome, now)
        self._tally(lane, job, settlement, None, recipients)
        self.settler.add(job, settlement, attempt)
        if isinstance(outcome, Transient | Permanent):
            log.info("send %s via %s: %s %s", job.id, lane.name, _outcome_name(outcome), outcome.error)

    def _tally(
        self, lane: Lane, job: Job, settlement: Settlement | None, dropped: Drop | None, recipients: int = 1
    ) -> None:
        """Count a code that failed for good, and a delivery that ended, under its channel."""
        end = dropped or settlement
        if isinstance(end, Reschedule) or (isinstance(end, Drop) and not end.failed):
            return
        if job.kind == "verification":
            if isinstance(end, Drop):
                self.tally.count("verifications.failed")
        elif job.kind in ("delivery", "stream"):
            channel = self.channels.get(lane.name, lane.name)
            self.tally.count(f"deliveries.{channel}.{'delivered' if isinstance(end, Ack) else 'failed'}", recipients)

    def _settlement(self, job: Job, outcome: SendOutcome, now: float) -> Settlement:
        next_lane = self._next_lane(job)
        policy = self.policy
        if "max_attempts" in job.payload:
            policy = replace(policy, attempts_per_lane=job.payload["max_attempts"])
        decision = retry.decide(
            job.attempts + 1,
            outcome,
            now,
            policy,
            self.rng,
            expires_at=job.expires_at,
            give_up_at=job.payload.get("give_up_at"),
            can_fail_over=next_lane is not None,
            start_over=job.kind == "verification",  # a code is worth sending for as long as it can be used
        )
        match decision:
            case retry.Done():
                assert isinstance(outcome, Delivered)
                return Ack(outcome.provider_message_id)
            case retry.RetryAt(when, counted):
                return Reschedule(when, job.lane, job.attempts + counted)
            case retry.FailOver():
                assert next_lane is not None
                return Reschedule(now, next_lane, 0)
            case retry.StartOver(when):
                return Reschedule(when, self._first_lane(job), 0)
            case retry.GiveUp(reason):
                # Out of time is not a refusal: the code expired, it was not refused.
                return Drop(reason, failed=reason != "expired")
        raise AssertionError(decision)

    def _first_lane(self, job: Job) -> str:
        """The first provider of the job's failover chain that this process can send through."""
        chain: list[str] = job.payload.get("chain", [])
        return next((name for name in chain if name in self.lanes), job.lane)

    def _next_lane(self, job: Job) -> str | None:
        """The next provider of the job's failover chain that this process can send through."""
        chain: list[str] = job.payload.get("chain", [])
        if job.lane not in chain:
            return None
        for name in chain[chain.index(job.lane) + 1 :]:
            if name in self.lanes:
                return name
        return None

    def _free(self, lane: Lane, count: int) -> None:
        was_full = lane.free <= 0
        lane.active -= count
        self._in_flight(lane.name).set(lane.active)
        if was_full:  # it can take jobs again; otherwise the next arrival or lease round finds the room
            self._wake.set()


def _outcome_name(outcome: SendOutcome) -> str:
    return _OUTCOME_NAMES[type(outcome)]


_OUTCOME_NAMES = {Delivered: "delivered", Transient: "transient", Permanent: "permanent", Deferred: "deferred"}
