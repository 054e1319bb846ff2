"""Backends implement the ports in ``tidings.ports``; ``open_backend`` picks one from the database URL."""

from __future__ import annotations

import fcntl
import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from tidings.backends.local import LocalNodes, LocalRelay
from tidings.backends.redis import open_redis
from tidings.backends.redis.client import redacted
from tidings.backends.redis.nodes import RedisNodes, RedisRelay
from tidings.backends.redis.stats import RedisStats
from tidings.backends.sqlite.db import Database
from tidings.backends.sqlite.push import SqlitePush
from tidings.backends.sqlite.queue import SqliteQueue
from tidings.backends.sqlite.stats import SqliteStats
from tidings.backends.sqlite.store import SqliteStore, schema
from tidings.core.settings import StreamsSettings
from tidings.errors import BackendError
from tidings.ports import Nodes, PushStore, Queue, Relay, Stats, Store

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


@dataclass
class Backend:
    name: str
    store: Store
    queue: Queue
    push: PushStore
    stats: Stats
    secret: str
    """The server secret that seals codes at rest."""
    relay: Relay = field(default_factory=LocalRelay)
    nodes: Nodes = field(default_factory=LocalNodes)


def sqlite_path(url: str) -> Path:
    """``sqlite:///./tidings.db`` is relative to the working directory; ``sqlite:////var/lib/t.db`` is absolute."""
    if not url.startswith("sqlite:///"):
        raise BackendError(
            f"unsupported database URL {redacted(url)!r}: use sqlite:///path/to/file.db or redis://host:port/db"
        )
    path = url.removeprefix("sqlite:///")
    if not path or path == ":memory:":
        raise BackendError("the SQLite database must be a file, so that queued jobs survive a restart")
    return Path(path)


@asynccontextmanager
async def open_backend(
    url: str, secret: str | None = None, streams: StreamsSettings | None = None
) -> AsyncIterator[Backend]:
    """The backend the database URL names: ``sqlite:///file`` or ``redis://host:port/db``."""
    if url.startswith(REDIS_SCHEMES):
        streams = streams or StreamsSettings()
        async with open_redis(url, secret, streams.cache_age, streams.cache_size) as parts:
            yield Backend(
                "redis", parts.store, parts.queue, parts.push, RedisStats(parts.client), parts.secret,
                RedisRelay(parts.client), RedisNodes(parts.client),
            )  # fmt: skip
        return
    path = sqlite_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(path):
        db = Database(str(path))
        db.start(schema())
        queue = SqliteQueue(db)
        store = SqliteStore(db, queue)
        try:
            await queue.open(time.time())
            await store.open(time.time())
            push = SqlitePush(db, queue)
            yield Backend("sqlite", store, queue, push, SqliteStats(db), secret or _secret_beside(path))
        finally:
            await store.close()


class _exclusive:
    """One process owns an SQLite database, so that it can void a crashed predecessor's leases at start."""

    def __init__(self, path: Path) -> None:
        self.path = path.with_name(path.name + ".lock")
        self.file: TextIO | None = None

    def __enter__(self) -> None:
        self.file = file = open(self.path, "a")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            raise BackendError(
                f"another tidings process is using {self.path.with_suffix('')}; SQLite serves one process "
                "(use Redis to run several)"
            ) from None

    def __exit__(self, *exc: object) -> None:
        assert self.file is not None
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def _secret_beside(path: Path) -> str:
    """A random server secret kept in ``<database>.secret`` (mode 0600), made on first start."""
    secret_path = path.with_name(path.name + ".secret")
    try:
        return secret_path.read_text().strip()
    except FileNotFoundError:
        pass
    value = secrets.token_urlsafe(32)
    fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(value + "\n")
    return value
