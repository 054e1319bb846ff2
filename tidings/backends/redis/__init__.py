"""The Redis backend: every port on one Redis shared by any number of API and worker processes."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import redis.asyncio as redis

from tidings.backends.redis import lists
from tidings.backends.redis.client import PREFIX, Scripts, connect, redacted, text
from tidings.backends.redis.push import RedisPush
from tidings.backends.redis.queue import RedisQueue
from tidings.backends.redis.store import RedisStore
from tidings.errors import BackendError

log = logging.getLogger("tidings.redis")
WAIT_AT_START = 30.0
"""Seconds a starting process waits for Redis to answer before it gives up."""


@dataclass
class RedisParts:
    client: redis.Redis
    store: RedisStore
    queue: RedisQueue
    push: RedisPush
    secret: str


@asynccontextmanager
async def open_redis(url: str, secret: str | None, cache_age: float, cache_size: int) -> AsyncIterator[RedisParts]:
    client = connect(url)
    try:
        await _wait_for(client, url)
        await _warn_if_not_durable(client)
        scripts = Scripts(client)
        queue = RedisQueue(client, scripts)
        store = RedisStore(client, scripts, queue)
        push = RedisPush(client, scripts, queue, cache_age, cache_size)
        await queue.open()
        await lists.index_existing(client)
        try:
            yield RedisParts(client, store, queue, push, secret or await _shared_secret(client))
        finally:
            await queue.close()
    finally:
        await client.aclose()


async def _wait_for(client: redis.Redis, url: str) -> None:
    """A Redis still starting is waited for; one that refuses this client (password, database number) is not."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + WAIT_AT_START
    where = redacted(url)
    while True:
        try:
            await client.ping()
            return
        except (redis.AuthenticationError, redis.ResponseError) as exc:
            raise BackendError(f"Redis at {where} refuses this client: {exc}") from exc
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            if loop.time() > give_up:
                raise BackendError(f"Redis at {where} does not answer: {exc}") from exc
            log.warning("waiting for Redis at %s: %s", where, exc)
            await asyncio.sleep(1)


async def _warn_if_not_durable(client: redis.Redis) -> None:
    """Work acknowledged to callers lives in Redis: without the append-only file a Redis restart loses it."""
    try:
        appendonly = (await client.config_get("appendonly")).get("appendonly")
    except redis.ResponseError:  # CONFIG is often disabled on managed Redis
        return
    if appendonly != "yes":
        log.warning(
            "Redis runs without appendonly: queued work accepted by tidings is lost if Redis restarts "
            "(set appendonly yes and appendfsync everysec, see docs/scaling.md)"
        )


async def _shared_secret(client: redis.Redis) -> str:
    """Every node must seal with the same secret; without ``secret_key`` the first node makes one in Redis."""
    log.warning("no secret_key is configured: using one kept in Redis; configure secret_key on every node instead")
    await client.set(PREFIX + "secret", secrets.token_urlsafe(32), nx=True)
    return text(await client.get(PREFIX + "secret"))
