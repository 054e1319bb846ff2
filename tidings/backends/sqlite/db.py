"""One SQLite connection on one thread, with group commit.

Every operation is a plain function ``fn(connection, *args)`` that runs inside a transaction on the database
thread. Operations are serialised, which is what makes a check-and-update atomic without locks, and the thread
commits all the operations that queued up while it was busy in one transaction, so a burst of API requests costs
one commit rather than one each. aiosqlite runs one statement per round trip and commits each transaction on its
own, which is why this small executor is written here instead.

An operation that raises must not take the others of its group down with it. A savepoint around each one would
cost a third of a typical operation, so the group first runs without them; only when one raises is the transaction
rolled back and the group run again, each operation in its own savepoint. An operation may therefore run twice, so
it changes nothing outside the database except state registered as a ``Journal``, which is rolled back with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from tidings.errors import StoreError

T = TypeVar("T")
log = logging.getLogger("tidings.sqlite")

_MAX_GROUP = 512
_STOP = object()


class Journal(Protocol):
    """Memory that operations change alongside the database, undone when their changes are."""

    def mark(self) -> int:
        """A point to roll back to."""

    def rollback_to(self, mark: int) -> None: ...

    def commit(self) -> None:
        """The changes since the last commit are durable: forget how to undo them."""


class _Raised(Exception):
    """An operation raised in a group run without savepoints."""


class Database:
    def __init__(self, path: str, *, synchronous: str = "NORMAL") -> None:
        self.path = path
        self._synchronous = synchronous
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self.journals: list[Journal] = []

    def start(self, schema: str) -> None:
        self._thread = threading.Thread(target=self._serve, args=(schema,), name="tidings-sqlite", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise StoreError(f"cannot open {self.path}: {self._failure}", retry_after=5) from self._failure

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)`` in the next group transaction and return what it returns."""
        if self._thread is None or not self._thread.is_alive():
            raise StoreError("the database is closed", retry_after=5)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._inbox.put((fn, args, future, loop))
        return await future

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._inbox.put(_STOP)
            self._thread.join()

    def _serve(self, schema: str) -> None:
        try:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={self._synchronous}")
            connection.execute("PRAGMA busy_timeout=5000")
            connection.executescript(schema)
        except BaseException as exc:  # reported to start()
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                first = self._inbox.get()
                if first is _STOP:
                    return
                group = [first]
                while len(group) < _MAX_GROUP:
                    try:
                        item = self._inbox.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        self._inbox.put(_STOP)
                        break
                    group.append(item)
                self._run_group(connection, group)
        finally:
            connection.close()

    def _run_group(self, connection: sqlite3.Connection, group: list[Any]) -> None:
        try:
            try:
                results = self._transaction(connection, group, savepoints=False)
            except _Raised as raised:
                if len(group) == 1:
                    results = [(group[0][2], False, raised.__cause__)]
                else:
                    results = self._transaction(connection, group, savepoints=True)
        except sqlite3.Error as exc:
            log.error("commit failed: %s", exc)
            error = StoreError(f"the database failed: {exc}", retry_after=5)
            results = [(future, False, error) for _, _, future, _ in group]
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for (_, _, _, loop), result in zip(group, results, strict=True):
            by_loop.setdefault(loop, []).append(result)
        for loop, outcomes in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed; nobody is waiting any more
                loop.call_soon_threadsafe(_resolve, outcomes)

    def _transaction(
        self, connection: sqlite3.Connection, group: list[Any], *, savepoints: bool
    ) -> list[tuple[asyncio.Future[Any], bool, Any]]:
        """Run the group in one transaction. With ``savepoints`` an operation that raises is undone alone and gets
        its exception; without, the whole transaction is undone and ``_Raised`` raised."""
        results: list[tuple[asyncio.Future[Any], bool, Any]] = []
        try:
            connection.execute("BEGIN IMMEDIATE")
            for fn, args, future, _ in group:
                if not savepoints:
                    try:
                        results.append((future, True, fn(connection, *args)))
                    except Exception as exc:
                        raise _Raised from exc
                    continue
                marks = [journal.mark() for journal in self.journals]
                connection.execute("SAVEPOINT op")
                try:
                    value = fn(connection, *args)
                except Exception as exc:
                    connection.execute("ROLLBACK TO op")
                    for journal, mark in zip(self.journals, marks, strict=True):
                        journal.rollback_to(mark)
                    results.append((future, False, exc))
                else:
                    results.append((future, True, value))
                connection.execute("RELEASE op")
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            for journal in self.journals:
                journal.rollback_to(0)
            raise
        for journal in self.journals:
            journal.commit()
        return results


def _resolve(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in outcomes:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
