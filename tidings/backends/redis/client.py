"""The Redis connection: one pooled client per process, the Lua scripts by name, and Redis failures as StoreError.

Every multi-key change runs as one Lua script, so it is atomic across all the processes that share the Redis. The
scripts address keys they compute (a job's stream from its lane), which a single Redis allows; to go beyond one
Redis, shard by key as ``docs/scaling.md`` describes.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from collections.abc import Callable, Coroutine
from importlib import resources
from typing import Any, ParamSpec, TypeVar

import redis.asyncio as redis
from pydantic_core import to_json
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.connection import HiredisRespSerializer, parse_url
from redis.exceptions import (
    BusyLoadingError,
    ConnectionError,
    NoScriptError,
    ReadOnlyError,
    ResponseError,
    TimeoutError,
)
from yarl import URL

from tidings.errors import StoreError
from tidings.runtime.batching import TurnBatch

log = logging.getLogger("tidings.redis")
PREFIX = "tidings:"
RETRY_AFTER = 2
"""Seconds a caller is asked to wait while Redis is down or restarting."""

UNAVAILABLE = ("OOM", "MASTERDOWN", "NOREPLICAS", "LOADING", "TRYAGAIN", "CLUSTERDOWN")
"""Redis's answers for "not now" (out of memory under noeviction, no master, ...): 503, not a bug."""

P = ParamSpec("P")
T = TypeVar("T")


CONNECTIONS = 64
"""Connections per process; a request waits for a free one (up to the socket timeout) rather than failing."""


class _PackedInC:
    """redis-py's asyncio connection packs a command in Python, joining its whole buffer again for each argument:
    80 µs for a script call of forty arguments here, a tenth of a verification's cost to the API. Its sync client
    packs with hiredis, already a dependency, in 22 µs; this gives the asyncio connection that packer."""

    _packer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        return self._packer.pack(*args)


def check_url(url: str) -> None:
    """Raise ``ValueError`` for a URL redis-py cannot use, or would read as database 0 although it names another
    (``redis://host/abc``); redis-py itself says nothing until the first command, or nothing at all."""
    try:
        parse_url(url)
    except ValueError as exc:
        # redis-py's reason may quote the URL, password and all, when a / ? or # in the password cut it short.
        reason = "percent-encode any / ? # or @ in its password" if "@" in url else str(exc)
        raise ValueError(f"{redacted(url)} is not a usable Redis URL: {reason}") from None
    parsed = URL(url)
    database = parsed.path.strip("/")
    if parsed.scheme in ("redis", "rediss") and database and not database.isdigit() and "db" not in parsed.query:
        raise ValueError(f"{redacted(url)}: the Redis database must be a number, as in redis://host:6379/0")


def redacted(url: str) -> str:
    """The URL as messages and logs may show it: without its password, wherever it was written."""
    try:
        parsed = URL(url)
    except ValueError:  # too malformed to take apart: show none of it
        return "the database URL"
    if parsed.password:
        parsed = parsed.with_password("***")
    if "password" in parsed.query:
        parsed = parsed.update_query(password="***")
    return str(parsed)


def connect(url: str) -> redis.Redis:
    """Timeouts keep a request from hanging on a Redis that stopped answering: it gets 503 instead.

    After a Redis restart every pooled connection is dead, and redis-py, by default, finds that out by failing the
    next command on each (a burst of requests got 503 long after Redis was back). A connection idle for a second is
    pinged before use, and a command whose connection turns out closed is sent once more on a new one. A command
    can run twice only if Redis died while running it, and then the delivery ids let receivers drop the repeat. A
    command that timed out is not sent again: a Redis that hangs gets a 503 after one socket timeout, not two."""
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=CONNECTIONS, timeout=5, socket_timeout=5, socket_connect_timeout=2,
        health_check_interval=1, retry=Retry(NoBackoff(), 1, (ConnectionError,)), retry_on_error=[ConnectionError],
    )  # fmt: skip
    connection = pool.connection_class  # TCP, TLS or a Unix socket, as the URL says
    pool.connection_class = type(connection.__name__, (_PackedInC, connection), {})
    return redis.Redis.from_pool(pool)  # the client owns the pool: closing it closes the connections


def guarded(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Redis down, restarting or read-only becomes ``StoreError``: the API answers 503 with Retry-After."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except (ConnectionError, TimeoutError, BusyLoadingError, ReadOnlyError, OSError) as exc:
            raise StoreError(f"Redis is unavailable: {exc}", retry_after=RETRY_AFTER) from exc
        except ResponseError as exc:
            if not str(exc).startswith(UNAVAILABLE):
                raise
            raise StoreError(f"Redis cannot take writes: {exc}", retry_after=RETRY_AFTER) from exc

    return call


def text(answer: object) -> str:
    """A text answer of this client. Its answers are bytes (it never sets ``decode_responses``), but redis-py gives
    one signature to every mode and option (bytes or text, with or without scores), so answers are checked here,
    once, rather than cast at every call."""
    return raw(answer).decode()


def raw(answer: object) -> bytes:
    if not isinstance(answer, bytes):
        raise TypeError(f"Redis answered {type(answer).__name__} where bytes were expected")
    return answer


async def hash_at(client: redis.Redis, key: str) -> dict[bytes, bytes]:
    """One hash (empty when the key does not exist), as bytes (see ``text``)."""
    found: dict[bytes, bytes] = await client.hgetall(key)  # type: ignore[assignment]
    return found


async def hashes(client: redis.Redis, keys: list[str]) -> list[dict[bytes, bytes]]:
    """Many hashes in one round trip (empty for a key that does not exist)."""
    async with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hgetall(key)
        return await pipe.execute()


async def listen_forever(
    client: redis.Redis, channel: str, handle: Callable[[bytes], None], missed: Callable[[], None]
) -> None:
    """Hand every message published on ``channel`` to ``handle``, until cancelled. Pub/sub keeps nothing for a
    subscriber that was away: after Redis comes back, ``missed`` is called once subscribed again."""
    subscribed_before = False
    while True:
        try:
            async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(channel)
                if subscribed_before:
                    missed()
                subscribed_before = True
                # A lost subscription must end this loop, to be told to ``missed``, not be mended out of sight by
                # the retry that commands have (see ``connect``).
                connection = pubsub.connection
                assert connection is not None
                retry, connection.retry = connection.retry, Retry(NoBackoff(), 0)
                try:
                    async for message in pubsub.listen():
                        handle(message["data"])
                finally:
                    connection.retry = retry
        except (ConnectionError, TimeoutError, OSError) as exc:
            log.warning("lost the Redis channel %s (%s); subscribing again", channel, exc)
            await asyncio.sleep(1)


class Scripts:
    """The Lua scripts in ``lua/``, each with the shared helpers of ``lib.lua`` in front, callable by name.

    Calls made in the same turn of the event loop go to Redis in one pipeline, so a burst of concurrent requests
    costs one round trip and one socket write rather than one each (as the SQLite backend commits a burst in one
    transaction). Each script still runs atomically on its own.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        folder = resources.files(__package__).joinpath("lua")
        library = folder.joinpath("lib.lua").read_text()
        self._sources = {
            path.name.removesuffix(".lua"): library + path.read_text()
            for path in folder.iterdir()
            if path.name.endswith(".lua") and path.name != "lib.lua"
        }
        self._shas = {name: hashlib.sha1(source.encode()).hexdigest() for name, source in self._sources.items()}
        self._batch: TurnBatch[tuple[str, list[Any]], Any] = TurnBatch(self._execute)

    async def __call__(self, name: str, *args: Any) -> Any:
        """Run a script with ``args`` as ARGV; dicts and lists go as JSON, encoded by pydantic's Rust encoder in a
        quarter of the standard library's time (a start's plan is the API's largest argument)."""
        argv = [PREFIX, *(to_json(arg) if isinstance(arg, (dict, list)) else arg for arg in args)]
        return await self._batch((name, argv))

    async def _execute(self, batch: list[tuple[str, list[Any]]], again: bool = True) -> list:
        async with self.client.pipeline(transaction=False) as pipe:
            for name, argv in batch:
                pipe.evalsha(self._shas[name], 0, *argv)
            results = await pipe.execute(raise_on_error=False)
        missing = [index for index, result in enumerate(results) if isinstance(result, NoScriptError)]
        if again and missing:
            # A Redis that restarted (or was told SCRIPT FLUSH) has forgotten the scripts: load them, and run again
            # only the calls that did not run (the others did, and must not run twice).
            for source in self._sources.values():
                await self.client.script_load(source)
            rerun = await self._execute([batch[index] for index in missing], again=False)
            for index, result in zip(missing, rerun, strict=True):
                results[index] = result
        return results
