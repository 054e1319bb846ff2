"""SQLite's group commit: operations queued together commit together, and one that raises is undone alone, in the
database and in the memory kept beside it."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from tidings.backends.sqlite.db import Database
from tidings.backends.sqlite.limits import LimitState
from tidings.core.ratelimit import Limit
from tidings.errors import StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS rate_limits (key TEXT PRIMARY KEY, tat REAL NOT NULL) WITHOUT ROWID;
"""
COOLDOWN = [Limit("resend_cooldown", "cool:+8613800138000", 1, 30.0)]


@pytest.fixture
def db(tmp_path):
    database = Database(str(tmp_path / "t.db"))
    database.start(SCHEMA)
    yield database
    database.close()


def insert(connection: sqlite3.Connection, text: str) -> int:
    return connection.execute("INSERT INTO notes (text) VALUES (?)", (text,)).lastrowid


def insert_then_fail(connection: sqlite3.Connection, text: str) -> None:
    insert(connection, text)
    raise ValueError("this operation fails after writing")


def notes(connection: sqlite3.Connection) -> list[str]:
    return [text for (text,) in connection.execute("SELECT text FROM notes ORDER BY id")]


async def in_one_group(db: Database, *operations: tuple) -> list:
    """Run the operations in one group: queued in the same turn of the event loop, they commit together."""
    return await asyncio.gather(*(db.run(fn, *args) for fn, *args in operations), return_exceptions=True)


async def test_operations_queued_in_one_turn_commit_in_one_transaction(db):
    statements: list[str] = []
    await db.run(lambda connection: connection.set_trace_callback(statements.append))
    await in_one_group(db, *[(insert, f"note {n}") for n in range(5)])
    await db.run(lambda connection: connection.set_trace_callback(None))
    group = statements[statements.index("COMMIT") + 1 :]
    assert group[0] == "BEGIN IMMEDIATE" and group[-2:] == ["COMMIT", "BEGIN IMMEDIATE"]
    assert len(group) == 5 + 3, group


async def test_an_operation_after_close_is_refused(db):
    db.close()
    with pytest.raises(StoreError, match="closed"):
        await db.run(notes)


async def test_one_failing_operation_leaves_the_rest_of_its_group(db):
    results = await in_one_group(
        db,
        (insert, "first"),
        (insert_then_fail, "undone"),
        (insert, "first"),  # a constraint violation, raised by SQLite inside the operation
        (insert, "last"),
    )
    assert isinstance(results[1], ValueError)
    assert isinstance(results[2], sqlite3.IntegrityError)
    assert isinstance(results[0], int) and isinstance(results[3], int)
    assert await db.run(notes) == ["first", "last"]


async def test_a_failing_operation_alone_is_undone(db):
    with pytest.raises(ValueError):
        await db.run(insert_then_fail, "undone")
    assert await db.run(notes) == []


async def test_memory_beside_the_database_is_undone_with_the_operation(db):
    limits = LimitState()
    db.journals.append(limits)

    def consume_then_fail(connection: sqlite3.Connection) -> None:
        assert limits.consume(COOLDOWN, 1000.0) is None
        raise ValueError("fails after counting a send")

    def consume(connection: sqlite3.Connection, now: float):
        return limits.consume(COOLDOWN, now)

    results = await in_one_group(db, (insert, "kept"), (consume_then_fail,), (insert, "kept too"))
    assert isinstance(results[1], ValueError)
    assert limits.tats == {}, "the failed operation's count is undone"
    assert await db.run(consume, 1000.0) is None, "so the next send is not refused by it"
    assert await db.run(consume, 1001.0) is not None, "while a send that did commit still counts"
    assert await db.run(notes) == ["kept", "kept too"]


async def test_limits_written_back_stay_dirty_when_their_write_is_undone(db):
    limits = LimitState()
    db.journals.append(limits)
    await db.run(lambda connection: limits.consume(COOLDOWN, 1000.0))

    def flush_then_fail(connection: sqlite3.Connection) -> None:
        limits.flush(connection, 1000.0)
        raise ValueError("fails after writing the limits back")

    with pytest.raises(ValueError):
        await db.run(flush_then_fail)
    await db.run(limits.flush, 1000.0)
    rows = await db.run(lambda connection: connection.execute("SELECT key FROM rate_limits").fetchall())
    assert rows == [(COOLDOWN[0].key,)]


async def test_the_write_ahead_log_stays_small_under_steady_writes(tmp_path):
    path = tmp_path / "wal.db"
    database = Database(str(path))
    database.start(SCHEMA)
    try:
        for turn in range(600):  # about 9 MB through the log, 50 notes a transaction
            await asyncio.gather(*(database.run(insert, f"{turn}.{n} " + "x" * 300) for n in range(50)))
            assert path.with_name("wal.db-wal").stat().st_size < 8_000_000
    finally:
        database.close()
    assert not path.with_name("wal.db-wal").exists(), "the last connection to close removes the log"
