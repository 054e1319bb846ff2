"""The job queue on Redis Streams, shared by every worker process.

Each lane has one stream per priority, read through one consumer group, and a schedule (a sorted set by
``run_at``) for the jobs not due yet; a job due when it is queued goes straight into its stream. A lease moves
the jobs that came due from the schedule into their streams, takes back entries whose lease ran out
(``XAUTOCLAIM``) and reads new ones (``XREADGROUP``), highest priority first, all in one script. An entry is
acknowledged and deleted only when its job is settled, so the streams hold only unfinished work. Each process reads
under its own consumer name, so a job is leased by one worker at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from dataclasses import fields, replace
from typing import Any

import redis.asyncio as redis
from pydantic_core import to_json

from tidings.backends.redis.client import PREFIX, Scripts, guarded, listen_forever, text
from tidings.core import outcomes
from tidings.core.outcomes import Ack, Attempt, DeliveryChange, Drop, Effect, Reschedule, Settlement
from tidings.core.types import PRIORITIES, Job
from tidings.errors import StoreError
from tidings.ports import LoggedAttempt
from tidings.runtime.nodes import node_id
from tidings.runtime.tasks import stop

log = logging.getLogger("tidings.redis")

Settled = list[tuple[Job, Settlement, Attempt | None]]

_ENTRY_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
PROMOTE = 5000
"""Due jobs a lease moves from a lane's schedule into its streams at most."""


_JOB_FIELDS = [field.name for field in fields(Job)]


def job_data(job: Job) -> str:
    """The job as JSON, read back by ``Job(**...)``. Its fields are taken as they are: ``dataclasses.asdict`` copies
    them deeply first, which made this 3.5 times as slow, and every send enqueues one."""
    return to_json({name: getattr(job, name) for name in _JOB_FIELDS}).decode()


def queued_job(job: Job) -> dict[str, str]:
    """A job as the scripts' ``enqueue`` takes it; numbers as text, so Lua's JSON keeps their precision."""
    return {"id": job.id, "lane": job.lane, "priority": str(job.priority), "run_at": repr(job.run_at),
            "data": job_data(job)}  # fmt: skip


def _effect_operation(job: Job, effect: Effect) -> dict[str, Any]:
    """What ``settle.lua`` takes of an outcome's effect (applied by ``lib.lua``)."""
    operation: dict[str, Any] = {}
    if effect.verification is not None:
        operation["verification"] = [job.ref, effect.verification]
    if effect.delivery is not None:
        operation["delivery"] = _change(effect.delivery)
    if effect.stream is not None:
        operation["stream"] = [job.ref, _change(effect.stream)]
    if effect.forget_subscription:
        operation["gone"] = True
        if effect.report is not None:
            operation["report"] = queued_job(effect.report)
    return operation


def _logged(entry: str, fields: dict[Any, Any]) -> LoggedAttempt:
    """An entry of the ``attempts`` stream, as ``settle.lua`` writes it (no error is an empty one)."""
    read = {text(name): text(value) for name, value in fields.items()}
    return LoggedAttempt(
        entry, read["job"], read["kind"], read["ref"], read["provider"], read["outcome"], read["error"] or None,
        float(read["at"]),
    )  # fmt: skip


def _change(change: DeliveryChange) -> dict[str, Any]:
    """A delivery's change as ``change_delivery`` in ``lib.lua`` takes it."""
    fields: dict[str, Any] = {}
    if change.status is not None:
        fields["status"] = change.status.value
    if change.attempts is not None:
        fields["attempts_set"] = change.attempts
    if change.add_attempt:
        fields["attempts_add"] = 1
    if change.error is not None:
        fields["error"] = change.error
    elif change.clear_error:
        fields["clear_error"] = True
    return fields


class RedisQueue:
    def __init__(self, client: redis.Redis, scripts: Scripts) -> None:
        self.client = client
        self.scripts = scripts
        self.consumer = node_id()
        """Unique per process: peers that shared one consumer name would all read every job."""
        self._entries: dict[str, tuple[str, str]] = {}
        """Leased job id -> (priority, stream entry id), to acknowledge the entry when the job is settled."""
        self._arrived = asyncio.Event()
        self._queued = 0
        self._wake_pending = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._listening: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self._tasks.add(asyncio.create_task(self._count_forever(), name="redis-depth"))

    async def close(self) -> None:
        await stop([*self._tasks, *([self._listening] if self._listening else [])])

    async def _count_forever(self) -> None:
        while True:
            with contextlib.suppress(StoreError):
                await self.depth()
            await asyncio.sleep(1)

    @property
    def queued(self) -> int:
        """Refreshed from Redis every second (``depth``), so it counts every node's work."""
        return self._queued

    def notify(self, added: int = 1) -> None:
        """Jobs were enqueued: wake the workers of every node."""
        self._queued += added
        if not self._wake_pending:
            self._wake_pending = True
            task = asyncio.create_task(self._wake_workers())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _wake_workers(self) -> None:
        """One message for all the jobs enqueued in this turn of the event loop (a burst of requests), rather than
        one per job: each message costs every worker a lease round."""
        await asyncio.sleep(0)
        self._wake_pending = False  # jobs enqueued from here on ask for a message of their own
        try:
            await self.client.publish(PREFIX + "work", b"")
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            log.debug("cannot wake the workers (%s); they look for work every second anyway", exc)

    async def wait_for_work(self, timeout: float) -> None:
        """Only processes that send wait for work, so only they subscribe to the wake-ups."""
        if self._listening is None:
            # Any process that enqueues work wakes every worker; after a gap, look for what came meanwhile.
            wake = self._arrived.set
            listening = listen_forever(self.client, PREFIX + "work", lambda _: wake(), wake)
            self._listening = asyncio.create_task(listening, name="redis-work")
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
        except TimeoutError:
            return
        self._arrived.clear()

    @guarded
    async def lease(self, lane: str, limit: int, now: float, lease_for: float) -> list[Job]:
        shift = now - time.time()
        found = await self.scripts(
            "lease", lane, limit, repr(now), repr(lease_for), self.consumer, PROMOTE, repr(shift)
        )
        jobs = []
        for index in range(0, len(found), 3):
            priority, entry, data = found[index : index + 3]
            job = Job(**json.loads(data))
            self._entries[job.id] = (priority.decode(), entry.decode())
            jobs.append(job)
        return jobs

    @guarded
    async def settle(self, settled: Settled, now: float) -> None:
        operations = []
        for job, settlement, attempt in settled:
            operation = self._operation(job)
            if isinstance(settlement, Reschedule):
                again = replace(job, run_at=settlement.run_at, lane=settlement.lane, attempts=settlement.attempts)
                operation["again"] = queued_job(again)
            elif isinstance(settlement, Drop):
                operation["dead"] = settlement.reason
            else:
                assert isinstance(settlement, Ack)
            operation.update(_effect_operation(job, outcomes.effect(job, settlement, attempt)))
            if attempt is not None:
                operation["attempt"] = [job.kind, job.ref, attempt.provider, attempt.outcome, attempt.error or "",
                                        repr(attempt.at)]  # fmt: skip
            operations.append(operation)
        if operations:
            removed, queued = await self.scripts("settle", operations, repr(now), self.consumer)
            self._forget([job for job, _, _ in settled])
            self._queued = max(0, self._queued - removed)
            if queued or any("again" in operation for operation in operations):
                self.notify(queued)

    @guarded
    async def release(self, jobs: list[Job]) -> None:
        """Back into the schedule, due at once, for any worker to take."""
        operations = [{**self._operation(job), "again": queued_job(replace(job, run_at=0.0))} for job in jobs]
        if operations:
            await self.scripts("settle", operations, "0", self.consumer)
            self._forget(jobs)
            self.notify(0)

    def _operation(self, job: Job) -> dict:
        """What ``settle.lua`` needs to find a leased job's stream entry. The entry is forgotten only once the
        script has run, so that a settle that failed and is tried again still acknowledges it."""
        priority, entry = self._entries.get(job.id, (str(job.priority), ""))
        return {"id": job.id, "lane": job.lane, "priority": priority, "entry": entry}

    def _forget(self, jobs: list[Job]) -> None:
        for job in jobs:
            self._entries.pop(job.id, None)

    @guarded
    async def attempts_after(self, cursor: str | None, limit: int) -> tuple[list[LoggedAttempt], str]:
        """From the ``attempts`` stream every node's settle script writes to; the cursor is a stream entry id."""
        key = PREFIX + "attempts"
        if cursor is None or not _ENTRY_ID.fullmatch(cursor):
            last = await self.client.xrevrange(key, count=1)
            return [], text(last[0][0]) if last else "0-0"
        entries = await self.client.xrange(key, min=f"({cursor}", count=limit) or []
        found = [_logged(text(entry), fields) for entry, fields in entries if fields]
        return found, found[-1].cursor if found else cursor

    @guarded
    async def failures(self, ref: str) -> list[LoggedAttempt]:
        """From the short list ``settle.lua`` keeps of each ref's failed tries."""
        found = await self.client.lrange(f"{PREFIX}failures:{ref}", 0, -1)
        tries = [json.loads(item) for item in found]
        return [
            LoggedAttempt(entry, job, kind, of, provider, outcome, error or None, float(at))
            for entry, job, kind, of, provider, outcome, error, at in tries
        ]

    @guarded
    async def depth(self) -> dict[str, int]:
        lanes = sorted(text(lane) for lane in await self.client.smembers(PREFIX + "lanes"))
        async with self.client.pipeline(transaction=False) as pipe:
            for lane in lanes:
                pipe.zcard(f"{PREFIX}due:{lane}")
                for priority in PRIORITIES:
                    pipe.xlen(f"{PREFIX}q:{lane}:{priority}")
            counts = await pipe.execute()
        width = 1 + len(PRIORITIES)
        depth = {lane: sum(counts[i * width : (i + 1) * width]) for i, lane in enumerate(lanes)}
        self._queued = sum(depth.values())
        return {lane: count for lane, count in depth.items() if count}

    @guarded
    async def next_due(self) -> float | None:
        """The earliest scheduled job; jobs already in a stream are due now."""
        lanes = [text(lane) for lane in await self.client.smembers(PREFIX + "lanes")]
        async with self.client.pipeline(transaction=False) as pipe:
            for lane in lanes:
                pipe.zrange(f"{PREFIX}due:{lane}", 0, 0, withscores=True)
            firsts = await pipe.execute()
        times = [first[0][1] for first in firsts if first]
        return min(times) if times else None
