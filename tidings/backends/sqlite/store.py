"""Verifications, API keys, idempotency records and rate-limit state in SQLite.

Each public method runs one function in a group transaction (see ``db``), one after another, so every decision
taken there by ``core`` on the rows it just read is atomic.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import sqlite3
import time
from collections.abc import Callable
from dataclasses import fields
from importlib import resources
from typing import Any

from tidings.backends.sqlite import paging
from tidings.backends.sqlite.db import Database
from tidings.backends.sqlite.limits import FLUSH_EVERY, LimitState
from tidings.backends.sqlite.queue import SqliteQueue, insert_jobs
from tidings.core import otp
from tidings.core.otp import RETENTION, CheckResult, Refused
from tidings.core.types import Channel, Status, Verification
from tidings.errors import StoreError
from tidings.ports import IDEMPOTENCY_CLAIM, IDEMPOTENCY_PENDING, ApiKey, Lookup, Position, Started, StartRequest

log = logging.getLogger("tidings.sqlite")

_COLUMNS = (
    "id, to_addr, channel, status, sealed_code, locale, app_name, template, created_at, expires_at, updated_at,"
    " send_count, check_count, delivered_count, max_checks, max_sends, last_sent_at, is_test, country"
)
_PLACEHOLDERS = ", ".join("?" * len(_COLUMNS.split(",")))
_values = operator.attrgetter(*(field.name for field in fields(Verification)))


def schema() -> str:
    return resources.files(__package__).joinpath("schema.sql").read_text()


def _verification(row: tuple[Any, ...]) -> Verification:
    (id, to, channel, status, sealed, locale, app_name, template, created_at, expires_at, updated_at, send_count,
     check_count, delivered_count, max_checks, max_sends, last_sent_at, is_test, country) = row  # fmt: skip
    return Verification(
        id, to, Channel(channel), Status(status), sealed, locale, app_name, template, created_at, expires_at,
        updated_at, send_count, check_count, delivered_count, max_checks, max_sends, last_sent_at, bool(is_test),
        country,
    )  # fmt: skip


def _save(connection: sqlite3.Connection, verification: Verification) -> None:
    connection.execute(
        f"INSERT OR REPLACE INTO verifications ({_COLUMNS}) VALUES ({_PLACEHOLDERS})",
        _values(verification),
    )


def _latest(connection: sqlite3.Connection, to: str, channel: Channel | None) -> Verification | None:
    if channel is None:
        row = connection.execute(
            f"SELECT {_COLUMNS} FROM verifications WHERE to_addr = ? ORDER BY created_at DESC LIMIT 1", (to,)
        ).fetchone()
    else:
        row = connection.execute(
            f"SELECT {_COLUMNS} FROM verifications WHERE to_addr = ? AND channel = ? ORDER BY created_at DESC LIMIT 1",
            (to, channel.value),
        ).fetchone()
    return _verification(row) if row else None


def _by_id(connection: sqlite3.Connection, id: str) -> Verification | None:
    row = connection.execute(f"SELECT {_COLUMNS} FROM verifications WHERE id = ?", (id,)).fetchone()
    return _verification(row) if row else None


def _start(
    connection: sqlite3.Connection, request: StartRequest, limits: LimitState, now: float
) -> tuple[Started | Refused, int]:
    existing = _latest(connection, request.to, request.channel)
    decision = otp.decide_start(existing, now, request.resend_cooldown)
    if isinstance(decision, Refused):
        return decision, 0
    refused = limits.consume(request.limits, now)
    if refused is not None:
        return refused, 0
    if isinstance(decision, otp.Resend):
        verification, resent = decision.verification, True
    else:
        verification, resent = request.fresh, False
    _save(connection, verification)
    if request.job is None:
        return Started(verification, resent), 0
    insert_jobs(connection, [otp.send_job(request.job, verification)])
    return Started(verification, resent), 1


def _check(
    connection: sqlite3.Connection, lookup: Lookup, matches: Callable[[Verification], bool], now: float
) -> CheckResult | Refused | None:
    verification = _by_id(connection, lookup.id) if lookup.id else _latest(connection, lookup.to or "", None)
    if verification is None:
        return None
    result = otp.check(verification, matches, now)
    if isinstance(result, CheckResult):
        _save(connection, result.verification)
    return result


def _cancel(connection: sqlite3.Connection, id: str, now: float) -> Verification | Refused | None:
    verification = _by_id(connection, id)
    if verification is None:
        return None
    result = otp.cancel(verification, now)
    if isinstance(result, Verification):
        _save(connection, result)
    return result


def _get_many(connection: sqlite3.Connection, ids: list[str]) -> dict[str, Verification]:
    rows = connection.execute(
        f"SELECT {_COLUMNS} FROM verifications WHERE id IN ({', '.join('?' * len(ids))})", ids
    ).fetchall()
    return {row[0]: _verification(row) for row in rows}


def _ranges(status: Status | None, to: str | None, now: float) -> list[tuple[str, list[object]]]:
    """The conditions, one per range of ``verifications_by_status``, of the rows that read as ``status`` at ``now``
    (``core.otp.status_at``); for all, one per status, so that this one index serves every list. An address has few
    verifications: they are found by ``verifications_by_address``, and ``+status`` keeps the other index out."""
    column = "status" if to is None else "+status"
    if status is None:
        return [("1", [])] if to is not None else [(f"{column} = ?", [each.value]) for each in Status]
    if status is Status.PENDING:
        return [(f"{column} = ? AND expires_at > ?", [status.value, now])]
    if status is Status.EXPIRED:
        return [(f"{column} = ?", [status.value]), (f"{column} = ? AND expires_at <= ?", [Status.PENDING.value, now])]
    return [(f"{column} = ?", [status.value])]


def _list(
    connection: sqlite3.Connection,
    to: str | None,
    status: Status | None,
    after: Position | None,
    limit: int,
    now: float,
) -> list[Verification]:
    """Each range newest first, then the newest of them all."""
    position, position_args = paging.after(after)
    address, address_args = ("to_addr = ?", [to]) if to is not None else ("1", [])
    ranges = [
        (f"SELECT {_COLUMNS} FROM verifications WHERE {condition} AND {address} AND {position}"
         f" {paging.newest_first()}", [*args, *address_args, *position_args, limit])
        for condition, args in _ranges(status, to, now)
    ]  # fmt: skip
    sql, args = ranges[0]
    if len(ranges) > 1:
        sql = " UNION ALL ".join(f"SELECT * FROM ({part})" for part, _ in ranges) + f" {paging.newest_first()}"
        args = [arg for _, part_args in ranges for arg in part_args] + [limit]
    return [_verification(row) for row in connection.execute(sql, args)]


def _claim(
    connection: sqlite3.Connection, scope: str, key: str, fingerprint: str, now: float
) -> tuple[str, int, bytes] | None:
    row = connection.execute(
        "SELECT fingerprint, status, body, created_at FROM idempotency WHERE scope = ? AND key = ?", (scope, key)
    ).fetchone()
    if row is not None and (row[1] != IDEMPOTENCY_PENDING or row[3] > now - IDEMPOTENCY_CLAIM):
        return row[0], row[1], row[2]
    connection.execute(
        "INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?, ?, ?, ?)",
        (scope, key, fingerprint, IDEMPOTENCY_PENDING, b"", now),
    )
    return None


def _purge(connection: sqlite3.Connection, now: float) -> int:
    old = now - RETENTION
    removed = connection.execute(
        "DELETE FROM verifications WHERE updated_at < ? AND expires_at < ?", (old, old)
    ).rowcount
    removed += connection.execute("DELETE FROM idempotency WHERE created_at < ?", (old,)).rowcount
    removed += connection.execute("DELETE FROM attempts WHERE at < ?", (old,)).rowcount
    return removed


def _api_key(row: tuple) -> ApiKey:
    id, key_hash, name, scopes, created_at = row
    return ApiKey(id, name, frozenset(scopes.split()), created_at, key_hash)


class SqliteStore:
    def __init__(self, db: Database, queue: SqliteQueue) -> None:
        self.db = db
        self.queue = queue
        self.limits = LimitState()
        db.journals.append(self.limits)
        self._flushing: asyncio.Task[None] | None = None

    async def open(self, now: float) -> None:
        await self.db.run(self.limits.load, now)
        self._flushing = asyncio.create_task(self._flush_limits_forever())

    async def _flush_limits_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            try:
                await self.db.run(self.limits.flush, time.time())
            except StoreError as exc:
                log.warning("cannot write rate-limit state: %s", exc)

    async def start_verification(self, request: StartRequest, now: float) -> Started | Refused:
        result, enqueued = await self.db.run(_start, request, self.limits, now)
        if enqueued:
            self.queue.notify(enqueued)
        return result

    async def check_verification(
        self, lookup: Lookup, matches: Callable[[Verification], bool], now: float
    ) -> CheckResult | Refused | None:
        return await self.db.run(_check, lookup, matches, now)

    async def cancel_verification(self, id: str, now: float) -> Verification | Refused | None:
        return await self.db.run(_cancel, id, now)

    async def get_verification(self, id: str) -> Verification | None:
        return await self.db.run(_by_id, id)

    async def get_verifications(self, ids: list[str]) -> dict[str, Verification]:
        return await self.db.run(_get_many, ids) if ids else {}

    async def list_verifications(
        self, to: str | None, status: Status | None, after: Position | None, limit: int, now: float
    ) -> list[Verification]:
        return await self.db.run(_list, to, status, after, limit, now)

    async def add_key(self, key: ApiKey) -> None:
        await self.db.run(
            lambda c: c.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, NULL)",
                (key.id, key.key_hash, key.name, " ".join(sorted(key.scopes)), key.created_at),
            )
        )

    async def find_key(self, key_hash: str) -> ApiKey | None:
        row = await self.db.run(
            lambda c: c.execute(
                "SELECT id, key_hash, name, scopes, created_at FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL",
                (key_hash,),
            ).fetchone()
        )
        return _api_key(row) if row else None

    async def list_keys(self) -> list[ApiKey]:
        rows = await self.db.run(
            lambda c: c.execute(
                "SELECT id, key_hash, name, scopes, created_at FROM api_keys WHERE revoked_at IS NULL"
                " ORDER BY created_at"
            ).fetchall()
        )
        return [_api_key(row) for row in rows]

    async def revoke_key(self, id: str, now: float) -> bool:
        return await self.db.run(
            lambda c: (
                c.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, id)).rowcount
                == 1
            )
        )

    async def idempotent_claim(
        self, scope: str, key: str, fingerprint: str, now: float
    ) -> tuple[str, int, bytes] | None:
        return await self.db.run(_claim, scope, key, fingerprint, now)

    async def idempotent_put(
        self, scope: str, key: str, fingerprint: str, status: int, body: bytes, now: float
    ) -> None:
        await self.db.run(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?, ?, ?, ?)",
                (scope, key, fingerprint, status, body, now),
            )
        )

    async def idempotent_release(self, scope: str, key: str) -> None:
        await self.db.run(
            lambda c: c.execute(
                "DELETE FROM idempotency WHERE scope = ? AND key = ? AND status = ?",
                (scope, key, IDEMPOTENCY_PENDING),
            )
        )

    async def purge(self, now: float) -> int:
        return await self.db.run(_purge, now)

    async def ping(self) -> None:
        await self.db.run(lambda c: c.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        if self._flushing is not None:
            self._flushing.cancel()
        await self.db.run(self.limits.flush, time.time())
        self.db.close()
