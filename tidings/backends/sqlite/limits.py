"""Rate-limit state for the process that owns the database: kept in memory, written back every second.

Every start of a verification passes several limits; reading and writing each one's TAT in SQLite would double the
cost of a send. Only this process uses the file, so memory is authoritative; a crash forgets at most the last
second of counting. The state is changed inside the database's transactions, so it is a ``Journal``: a change
undone in the database is undone here too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from tidings.core import abuse, ratelimit
from tidings.core.otp import Refused

FLUSH_EVERY = 1.0


class LimitState:
    def __init__(self) -> None:
        self.tats: dict[str, float] = {}
        self._dirty: set[str] = set()
        self._undo: list[Callable[[], None]] = []

    def mark(self) -> int:
        return len(self._undo)

    def rollback_to(self, mark: int) -> None:
        while len(self._undo) > mark:
            self._undo.pop()()

    def commit(self) -> None:
        self._undo.clear()

    def load(self, connection: sqlite3.Connection, now: float) -> None:
        self.tats = dict(connection.execute("SELECT key, tat FROM rate_limits WHERE tat > ?", (now,)).fetchall())

    def consume(self, limits: list[ratelimit.Limit], now: float) -> Refused | None:
        """Apply every limit or none (see ``ratelimit.check_all``); a refusal says which limit and for how long."""
        if not limits:
            return None
        decision = ratelimit.check_all(self.tats, limits, now)
        if not decision.allowed:
            assert decision.hit is not None
            return abuse.refusal(decision.hit, decision.retry_after)
        previous = {key: self.tats.get(key) for key in decision.updates}
        clean = decision.updates.keys() - self._dirty
        self._undo.append(lambda: self._restore(previous, clean))
        self.tats.update(decision.updates)
        self._dirty.update(decision.updates)
        return None

    def _restore(self, previous: dict[str, float | None], clean: set[str]) -> None:
        for key, tat in previous.items():
            if tat is None:
                self.tats.pop(key, None)
            else:
                self.tats[key] = tat
        self._dirty -= clean

    def flush(self, connection: sqlite3.Connection, now: float) -> None:
        """Write changed TATs; forget (and delete) the ones that no longer limit anything."""
        written = set(self._dirty)
        if written:
            connection.executemany(
                "INSERT OR REPLACE INTO rate_limits VALUES (?, ?)", [(key, self.tats[key]) for key in written]
            )
            self._dirty.clear()
        expired = {key: tat for key, tat in self.tats.items() if tat <= now}
        if expired:
            for key in expired:
                del self.tats[key]
            connection.execute("DELETE FROM rate_limits WHERE tat <= ?", (now,))
        self._undo.append(lambda: self._unflush(written, expired))

    def _unflush(self, written: set[str], expired: dict[str, float]) -> None:
        self._dirty |= written
        self.tats.update(expired)
