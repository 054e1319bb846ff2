"""Newest-first lists of verifications, messages and subscribers on Redis.

Each list is a sorted set of ids scored by creation time, written by the script that writes the record, with one
``ZADD``: ``vers`` (``start.lua``, for a new verification), ``msgs`` (``create_message.lua``), ``subs`` and
``subs:topic:<topic>`` (``put_subscriber.lua``, ``delete_subscriber.lua``). Equal scores are ordered by id, as
SQLite orders ``(created_at, id)``. Verifications and messages expire by TTL and leave their entries behind: a list
skips an entry whose record is gone and removes it (``unindex.lua``, which checks again, atomically), and the purges
trim what the records' retention left (``purge.lua`` for messages, ``trim_verifications`` here). A filter (status,
address) is applied to the records read, newest first, until the page is full.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as redis

from tidings.backends.redis.client import PREFIX, Scripts, text
from tidings.ports import Position

log = logging.getLogger("tidings.redis")
T = TypeVar("T")

VERIFICATIONS = "vers"
MESSAGES = "msgs"
SUBSCRIBERS = "subs"
INDEXED = "lists:indexed"
"""Set once what was written before these lists existed is in them (``index_existing``)."""
LARGEST_READ = 2000
"""Index entries read in one round trip at most, while a filter leaves most of them out."""


def topic_index(topic: str) -> str:
    """The index of a topic's subscribers (``topic:<topic>``, the set a message to a topic reads, is unordered)."""
    return f"{SUBSCRIBERS}:topic:{topic}"


async def newest_first(
    client: redis.Redis,
    scripts: Scripts,
    index: str,
    family: str,
    after: Position | None,
    limit: int,
    read: Callable[[list[str]], Awaitable[dict[str, T | None]]],
    topic: str = "",
) -> list[T]:
    """Up to ``limit`` items of ``index`` after ``after``, newest first. ``read`` gives, for each id, its item, or
    None to leave it out (a filter); an id missing from its answer has no record (``family`` + id) any more, and
    its entry is removed once the page is read (not before: it would move the entries the next read counts)."""
    top, seen_at_top = math.inf if after is None else after.created_at, 0
    found: list[T] = []
    gone: list[str] = []
    size = limit
    while len(found) < limit:
        batch: list[tuple[bytes, float]] = await client.zrevrangebyscore(  # type: ignore[assignment]
            PREFIX + index, "+inf" if top == math.inf else repr(top), "-inf", start=seen_at_top, num=size,
            withscores=True,
        )  # fmt: skip
        entries = [(text(member), float(score)) for member, score in batch]
        wanted = [id for id, score in entries if after is None or (score, id) < (after.created_at, after.id)]
        items = await read(wanted) if wanted else {}
        for id in wanted:
            if id not in items:
                gone.append(id)
            elif (item := items[id]) is not None:
                found.append(item)
        if len(entries) < size:
            break
        # The next read starts below the last entry: at its score, past those of that score already read.
        last = entries[-1][1]
        at_last = sum(1 for _, score in entries if score == last)
        top, seen_at_top = last, (seen_at_top + at_last if last == top else at_last)
        size = min(max(size * 4, limit - len(found)), LARGEST_READ)
    if gone:
        await scripts("unindex", index, family, topic, gone)
    return found[:limit]


async def trim_verifications(client: redis.Redis, scripts: Scripts) -> int:
    """Remove the entries of ``vers`` whose verification expired, read from the oldest a batch at a time until a
    batch holds one still kept (verifications expire about in the order they were made); returns how many went."""
    removed = 0
    while True:
        oldest = [text(id) for id in await client.zrange(PREFIX + VERIFICATIONS, 0, 499)]
        if not oldest:
            return removed
        gone = int(await scripts("unindex", VERIFICATIONS, "ver:", "", oldest))
        removed += gone
        if gone < len(oldest):
            return removed


async def index_existing(client: redis.Redis) -> None:
    """Put into the lists, once for a Redis, what was written before they existed: subscribers (kept until
    deleted) and the verifications and messages still kept. Nodes that start together may both do it: adding an
    entry twice changes nothing, and an entry whose record went meanwhile is removed when a list meets it."""
    if await client.exists(PREFIX + INDEXED):
        return
    subscribers = [key async for key in client.scan_iter(match=f"{PREFIX}sub:*", count=1000)]
    for start in range(0, len(subscribers), 500):
        keys = [text(key) for key in subscribers[start : start + 500]]
        async with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(key, "created_at", "topics")
            found = await pipe.execute()
        async with client.pipeline(transaction=False) as pipe:
            for key, (created_at, topics) in zip(keys, found, strict=True):
                if created_at is None:
                    continue
                id = key.removeprefix(f"{PREFIX}sub:")
                pipe.zadd(PREFIX + SUBSCRIBERS, {id: float(created_at)})
                for topic in _topics(topics):
                    pipe.zadd(PREFIX + topic_index(topic), {id: float(created_at)})
            await pipe.execute()
    verifications = [text(key) async for key in client.scan_iter(match=f"{PREFIX}ver:*", count=1000)]
    await _index_by_creation(client, VERIFICATIONS, verifications, f"{PREFIX}ver:")
    messages = [text(id) async for id, _ in client.zscan_iter(f"{PREFIX}messages")]
    await _index_by_creation(client, MESSAGES, [f"{PREFIX}msg:{id}" for id in messages], f"{PREFIX}msg:")
    await client.set(PREFIX + INDEXED, "1")
    if subscribers or verifications or messages:
        log.info(
            "listed what was kept before lists existed: %d subscribers, %d verifications, %d messages",
            len(subscribers), len(verifications), len(messages),
        )  # fmt: skip


def _topics(raw: bytes | None) -> list[str]:
    return list(json.loads(raw)) if raw else []


async def _index_by_creation(client: redis.Redis, index: str, keys: list[str], family: str) -> None:
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        async with client.pipeline(transaction=False) as pipe:
            for key in chunk:
                pipe.hget(key, "created_at")
            found = await pipe.execute()
        entries = {key.removeprefix(family): float(at) for key, at in zip(chunk, found, strict=True) if at}
        if entries:
            await client.zadd(PREFIX + index, entries)
