"""The job queue as a table: due jobs are leased in batches by priority; a job leaves only when settled."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from typing import Any

from tidings.backends.sqlite import effects
from tidings.backends.sqlite.db import Database
from tidings.core import outcomes
from tidings.core.outcomes import Ack, Attempt, Drop, Reschedule, Settlement
from tidings.core.types import PRIORITIES, Job
from tidings.ports import FAILURES_KEPT, LoggedAttempt

_JOB_COLUMNS = "id, kind, ref, lane, priority, attempts, run_at, expires_at, payload"


def insert_jobs(connection: sqlite3.Connection, jobs: list[Job], insert: str = "INSERT") -> None:
    """Enqueue inside the caller's transaction, so jobs commit together with what they send; ``insert`` may say
    ``INSERT OR IGNORE`` to keep a job already queued under the same id."""
    connection.executemany(
        f"{insert} INTO jobs ({_JOB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                job.id,
                job.kind,
                job.ref,
                job.lane,
                job.priority,
                job.attempts,
                job.run_at,
                job.expires_at,
                json.dumps(job.payload),
            )
            for job in jobs
        ],
    )


def _job(row: tuple[Any, ...]) -> Job:
    id, kind, ref, lane, priority, attempts, run_at, expires_at, payload = row
    return Job(id, kind, ref, lane, priority, attempts, run_at, expires_at, json.loads(payload))


def _lease(connection: sqlite3.Connection, lane: str, limit: int, now: float, until: float) -> list[Job]:
    """One index range scan per priority class, so jobs that are not due (leased, or scheduled later) are never
    walked over, however many there are."""
    jobs: list[Job] = []
    for priority in PRIORITIES:
        if len(jobs) >= limit:
            break
        rows = connection.execute(
            f"""UPDATE jobs SET run_at = ?, leased = 1
                WHERE id IN (SELECT id FROM jobs WHERE lane = ? AND priority = ? AND run_at <= ?
                             ORDER BY run_at LIMIT ?)
                RETURNING {_JOB_COLUMNS}""",
            (until, lane, priority, now, limit - len(jobs)),
        ).fetchall()
        jobs.extend(sorted((_job(row) for row in rows), key=lambda job: job.run_at))
    return jobs


def _settle(
    connection: sqlite3.Connection, settled: list[tuple[Job, Settlement, Attempt | None]], now: float
) -> tuple[int, int]:
    """Apply outcomes, and what they change besides the queue, in one transaction; returns jobs removed and jobs
    the effects queued."""
    attempts, rescheduled, finished, queued = [], [], [], []
    for job, settlement, attempt in settled:
        new = effects.apply(connection, job, outcomes.effect(job, settlement, attempt), now)
        if new is not None:
            queued.append(new)
        if attempt is not None:
            attempts.append((job.id, job.kind, job.ref, attempt.provider, attempt.outcome, attempt.error, attempt.at))
        if isinstance(settlement, Reschedule):
            rescheduled.append((settlement.run_at, settlement.lane, settlement.attempts, job.id))
        else:
            assert isinstance(settlement, Ack | Drop)
            finished.append((job.id,))
    connection.executemany("INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?)", attempts)
    connection.executemany("UPDATE jobs SET run_at = ?, lane = ?, attempts = ?, leased = 0 WHERE id = ?", rescheduled)
    removed = connection.executemany("DELETE FROM jobs WHERE id = ?", finished).rowcount
    insert_jobs(connection, queued, "INSERT OR IGNORE")  # a report still queued from an earlier settling stays
    return removed, len(queued)


class SqliteQueue:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._arrived = asyncio.Event()
        self._queued = 0

    async def open(self, now: float) -> None:
        """Only this process uses the file (see ``lock``), so leases left by a crashed one are void at once."""
        self._queued = await self.db.run(_recover, now)

    @property
    def queued(self) -> int:
        return self._queued

    def notify(self, added: int = 1) -> None:
        self._queued += added
        self._arrived.set()

    async def wait_for_work(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
        except TimeoutError:
            return
        self._arrived.clear()

    async def lease(self, lane: str, limit: int, now: float, lease_for: float) -> list[Job]:
        return await self.db.run(_lease, lane, limit, now, now + lease_for)

    async def settle(self, settled: list[tuple[Job, Settlement, Attempt | None]], now: float) -> None:
        removed, queued = await self.db.run(_settle, settled, now)
        self._queued -= removed
        if queued or any(isinstance(settlement, Reschedule) for _, settlement, _ in settled):
            self.notify(
                queued
            )  # a job due again soon is leased then, not at the dispatcher's next idle check (as on Redis)

    async def release(self, jobs: list[Job]) -> None:
        await self.db.run(_release, [job.id for job in jobs], time.time())

    async def depth(self) -> dict[str, int]:
        return dict(await self.db.run(_depth))

    async def next_due(self) -> float | None:
        return await self.db.run(_next_due)

    async def attempts_after(self, cursor: str | None, limit: int) -> tuple[list[LoggedAttempt], str]:
        return await self.db.run(_attempts_after, cursor, limit)

    async def failures(self, ref: str) -> list[LoggedAttempt]:
        return await self.db.run(_failures, ref)


def _recover(connection: sqlite3.Connection, now: float) -> int:
    connection.execute("UPDATE jobs SET run_at = ?, leased = 0 WHERE leased = 1", (now,))
    return connection.execute("SELECT count(*) FROM jobs").fetchone()[0]


def _release(connection: sqlite3.Connection, ids: list[str], now: float) -> None:
    connection.executemany("UPDATE jobs SET run_at = ?, leased = 0 WHERE id = ?", [(now, id) for id in ids])


def _depth(connection: sqlite3.Connection) -> list[tuple[str, int]]:
    return connection.execute("SELECT lane, count(*) FROM jobs GROUP BY lane").fetchall()


def _attempts_after(connection: sqlite3.Connection, cursor: str | None, limit: int) -> tuple[list[LoggedAttempt], str]:
    """By row number, which grows with every attempt written (purging old ones does not reset it)."""
    if cursor is None or not cursor.isdigit():
        last = connection.execute("SELECT coalesce(max(rowid), 0) FROM attempts").fetchone()[0]
        return [], str(last)
    rows = connection.execute(
        "SELECT rowid, job_id, kind, ref, provider, outcome, error, at FROM attempts WHERE rowid > ?"
        " ORDER BY rowid LIMIT ?",
        (int(cursor), limit),
    ).fetchall()
    found = [LoggedAttempt(str(row[0]), *row[1:]) for row in rows]
    return found, found[-1].cursor if found else cursor


def _failures(connection: sqlite3.Connection, ref: str) -> list[LoggedAttempt]:
    rows = connection.execute(
        "SELECT rowid, job_id, kind, ref, provider, outcome, error, at FROM attempts"
        " WHERE ref = ? AND outcome != 'delivered' ORDER BY at DESC LIMIT ?",
        (ref, FAILURES_KEPT),
    ).fetchall()
    return [LoggedAttempt(str(row[0]), *row[1:]) for row in reversed(rows)]


def _next_due(connection: sqlite3.Connection) -> float | None:
    return connection.execute("SELECT min(run_at) FROM jobs").fetchone()[0]
