"""What only the Redis lists have to show: reading on past many entries of one instant, entries whose record
expired (skipped, removed, trimmed by the purge), and what was written before the lists existed (indexed once)."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import redis.asyncio as redis

from tests.backends.test_contract_lists import send, start, subscriber
from tidings.backends import open_backend
from tidings.backends.redis import lists
from tidings.backends.redis.client import PREFIX, Scripts
from tidings.core.types import Status
from tidings.ports import Position


@pytest.fixture
async def client(redis_url):
    connection = redis.Redis.from_url(redis_url)
    yield connection
    await connection.aclose()


@pytest.fixture
async def backend(redis_url):
    async with open_backend(redis_url, "s") as opened:
        yield opened


async def test_a_filtered_list_reads_on_past_many_entries_of_one_instant(client):
    """Batches end inside a run of equal scores; the next read starts past what was read of it, and a filter
    that leaves most entries out makes the reads grow."""
    members = {f"m{n:03d}": float(n // 40) for n in range(200)}  # five instants, forty entries each
    await client.zadd(PREFIX + "test", members)
    scripts = Scripts(client)

    async def read(ids: list[str]) -> dict[str, str | None]:
        return {id: id if int(id[1:]) % 7 == 0 else None for id in ids}

    expected = sorted((m for m in members if int(m[1:]) % 7 == 0), key=lambda m: (members[m], m), reverse=True)
    for limit in (1, 2, 5, 100):
        got: list[str] = []
        after = None
        while True:
            page = await lists.newest_first(client, scripts, "test", "none:", after, limit, read)
            got += page
            if len(page) < limit:
                break
            after = Position(members[page[-1]], page[-1])
        assert got == expected, limit


async def test_entries_whose_records_are_gone_are_skipped_and_removed(backend, client):
    now = time.time()
    for n in range(3):
        await start(backend, f"ver_{n}", f"+861380013800{n}", now - 10 + n)
        await backend.push.put_subscriber(subscriber(f"s{n}", now - 10 + n))
        await send(backend, f"msg_{n}", [], now - 10 + n)
    await backend.push.put_subscriber(subscriber("other", now, ("sports",)))
    await client.delete(f"{PREFIX}ver:ver_1", f"{PREFIX}msg:msg_1", f"{PREFIX}sub:s1")  # as a TTL would
    await client.zadd(f"{PREFIX}subs:topic:news", {"other": now})  # as if it had left the topic meanwhile

    for status in (None, Status.PENDING):
        verifications = await backend.store.list_verifications(None, status, None, 10, now)
        assert [v.id for v in verifications] == ["ver_2", "ver_0"]
    assert [m.id for m, _ in await backend.push.list_messages(None, None, 10)] == ["msg_2", "msg_0"]
    assert [s.id for s in await backend.push.list_subscribers(None, None, 10)] == ["other", "s2", "s0"]
    assert [s.id for s in await backend.push.list_subscribers("news", None, 10)] == ["s2", "s0"]
    assert await client.zrange(f"{PREFIX}vers", 0, -1) == [b"ver_0", b"ver_2"]
    assert await client.zrange(f"{PREFIX}msgs", 0, -1) == [b"msg_0", b"msg_2"]
    assert await client.zrange(f"{PREFIX}subs", 0, -1) == [b"s0", b"s2", b"other"]
    assert await client.zrange(f"{PREFIX}subs:topic:news", 0, -1) == [b"s0", b"s2"]


async def test_a_subscriber_written_again_meanwhile_keeps_its_entry(backend, client):
    """The entry of a record that was gone when read, but is there when its entry is removed, stays."""
    now = time.time()
    await backend.push.put_subscriber(subscriber("s0", now))
    assert await Scripts(client)("unindex", "subs", "sub:", "", ["s0"]) == 0
    assert await Scripts(client)("unindex", "subs:topic:news", "sub:", "news", ["s0"]) == 0
    assert [s.id for s in await backend.push.list_subscribers("news", None, 10)] == ["s0"]


async def test_the_purge_trims_the_list_of_verifications_that_expired(backend, client):
    now = time.time()
    for n in range(5):
        await start(backend, f"ver_{n}", f"+861380013800{n}", now - 10 + n)
    await client.delete(f"{PREFIX}ver:ver_0", f"{PREFIX}ver:ver_1", f"{PREFIX}ver:ver_3")
    assert await backend.store.purge(now) == 3
    assert await client.zrange(f"{PREFIX}vers", 0, -1) == [b"ver_2", b"ver_4"]
    assert [v.id for v in await backend.store.list_verifications(None, None, None, 10, now)] == ["ver_4", "ver_2"]


async def test_what_was_written_before_the_lists_is_listed(redis_url, client):
    now = time.time()
    async with open_backend(redis_url, "s") as backend:
        await start(backend, "ver_0", "+8613800138000", now)
        await backend.push.put_subscriber(replace(subscriber("s0", now), topics=("news", "sports")))
        await send(backend, "msg_0", [], now)
    indexes = ("vers", "msgs", "subs", "subs:topic:news", "subs:topic:sports", "lists:indexed")
    await client.delete(*[PREFIX + key for key in indexes])  # as a Redis written before the lists
    async with open_backend(redis_url, "s") as backend:
        assert [v.id for v in await backend.store.list_verifications(None, None, None, 10, now)] == ["ver_0"]
        assert [m.id for m, _ in await backend.push.list_messages(None, None, 10)] == ["msg_0"]
        assert [s.id for s in await backend.push.list_subscribers("news", None, 10)] == ["s0"]
        assert await client.zscore(f"{PREFIX}subs:topic:sports", "s0") == pytest.approx(now)
        await client.delete(f"{PREFIX}vers")
    async with open_backend(redis_url, "s") as backend:
        assert await backend.store.list_verifications(None, None, None, 10, now) == [], "indexed once only"
