"""Counts per time bucket in SQLite: one row per resolution, bucket and name, added to in place."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from tidings.backends.sqlite.db import Database
from tidings.core.stats import KEPT


class SqliteStats:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, counts: Mapping[tuple[int, str], int], resolution: int) -> None:
        rows = [(resolution, start, name, count) for (start, name), count in counts.items()]
        await self.db.run(_add, rows)

    async def read(self, resolution: int, since: float, until: float) -> dict[tuple[int, str], int]:
        return {(start, name): count for start, name, count in await self.db.run(_read, resolution, since, until)}

    async def purge(self, now: float) -> int:
        return await self.db.run(_purge, now)


def _add(connection: sqlite3.Connection, rows: list[tuple[int, int, str, int]]) -> None:
    connection.executemany(
        "INSERT INTO stats VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET count = count + excluded.count", rows
    )


def _read(connection: sqlite3.Connection, resolution: int, since: float, until: float) -> list[tuple[int, str, int]]:
    return connection.execute(
        "SELECT bucket, name, count FROM stats WHERE resolution = ? AND bucket >= ? AND bucket < ?",
        (resolution, since, until),
    ).fetchall()


def _purge(connection: sqlite3.Connection, now: float) -> int:
    return sum(
        connection.execute("DELETE FROM stats WHERE resolution = ? AND bucket < ?", (resolution, now - kept)).rowcount
        for resolution, kept in KEPT.items()
    )
