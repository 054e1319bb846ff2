"""The Redis connection: one pooled client per process, the Lua scripts by name, and Redis failures as StoreError.

Every multi-key change runs as one Lua script, so it is atomic across all the processes that share the Redis. The
scripts address keys they compute (a job's stream from its lane), which a single Redis allows; to go beyond one
Redis, shard by key as ``docs/scaling.md`` describes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, ParamSpec, TypeVar

import redis.asyncio as redis
from redis.commands.core import AsyncScript
from redis.exceptions import BusyLoadingError, ConnectionError, ReadOnlyError, TimeoutError

from tidings.errors import StoreError

PREFIX = "tidings:"
RETRY_AFTER = 2
"""Seconds a caller is asked to wait while Redis is down or restarting."""

P = ParamSpec("P")
T = TypeVar("T")


CONNECTIONS = 64
"""Connections per process; a request waits for a free one (up to the socket timeout) rather than failing."""


def connect(url: str) -> redis.Redis:
    """Timeouts keep a request from hanging on a Redis that stopped answering: it gets 503 instead."""
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=CONNECTIONS, timeout=5, socket_timeout=5, socket_connect_timeout=2,
        health_check_interval=15,
    )  # fmt: skip
    return redis.Redis.from_pool(pool)  # the client owns the pool: closing it closes the connections


def guarded(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Redis down, restarting or read-only becomes ``StoreError``: the API answers 503 with Retry-After."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except (ConnectionError, TimeoutError, BusyLoadingError, ReadOnlyError, OSError) as exc:
            raise StoreError(f"Redis is unavailable: {exc}", retry_after=RETRY_AFTER) from exc

    return call


async def hashes(client: redis.Redis, keys: list[str]) -> list[dict[bytes, bytes]]:
    """Many hashes in one round trip (empty for a key that does not exist)."""
    async with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hgetall(key)
        return await pipe.execute()


class Scripts:
    """The Lua scripts in ``lua/``, each with the shared helpers of ``lib.lua`` in front, callable by name."""

    def __init__(self, client: redis.Redis) -> None:
        folder = resources.files(__package__).joinpath("lua")
        library = folder.joinpath("lib.lua").read_text()
        self._scripts: dict[str, AsyncScript] = {
            path.name.removesuffix(".lua"): client.register_script(library + path.read_text())
            for path in folder.iterdir()
            if path.name.endswith(".lua") and path.name != "lib.lua"
        }

    async def __call__(self, name: str, *args: Any, client: Any = None) -> Any:
        """Run a script with ``args`` as ARGV; dicts and lists go as JSON."""
        argv = [json.dumps(arg) if isinstance(arg, dict | list) else arg for arg in args]
        return await self._scripts[name](args=[PREFIX, *argv], client=client)
