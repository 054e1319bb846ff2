"""Subscribers, messages, deliveries and the live streams' message cache in Redis.

A message, its deliveries and their jobs are written by one script, so a message is accepted whole or not at all.
Deliveries carry a sequence number, the paging cursor, and are indexed by message and by status; each message
keeps its counts by status, updated as its deliveries change. Messages and deliveries expire by TTL a retention
period after their message does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import redis.asyncio as redis

from tidings.backends.redis import lists
from tidings.backends.redis.client import PREFIX, Scripts, guarded, hashes, text
from tidings.backends.redis.queue import RedisQueue, queued_job
from tidings.core.push import (
    RETENTION,
    ChannelType,
    Counts,
    Delivery,
    DeliveryStatus,
    Message,
    MessageStatus,
    Subscriber,
    message_status,
)
from tidings.core.records import message_from_record, message_record, subscriber_from_record, subscriber_record
from tidings.core.types import Job
from tidings.ports import DeliveryContext, Fanout, Position

_DELIVERY_FIELDS = ("id", "message_id", "subscriber_id", "channel", "target", "status", "attempts", "last_error",
                    "created_at", "updated_at")  # fmt: skip


def _delivery_fields(delivery: Delivery) -> list[str]:
    flat = []
    for name in _DELIVERY_FIELDS:
        value = getattr(delivery, name)
        if value is not None:
            flat += [name, repr(value) if isinstance(value, float) else str(value)]
    return flat


def _delivery(found: dict[bytes, bytes]) -> tuple[int, Delivery]:
    text = {key.decode(): value.decode() for key, value in found.items()}
    delivery = Delivery(
        text["id"], text["message_id"], text["subscriber_id"], ChannelType(text["channel"]), text["target"],
        DeliveryStatus(text["status"]), int(text["attempts"]), text.get("last_error"), float(text["created_at"]),
        float(text["updated_at"]),
    )  # fmt: skip
    return int(text["seq"]), delivery


def _subscriber(id: str, found: dict[bytes, bytes]) -> Subscriber:
    return subscriber_from_record(
        id, float(found[b"created_at"]), float(found[b"updated_at"]), json.loads(found[b"record"])
    )


def _message(id: str, found: dict[bytes, bytes]) -> Message:
    return message_from_record(
        id, float(found[b"created_at"]), float(found[b"expires_at"]), int(found[b"recipients"]),
        json.loads(found[b"record"]),
    )  # fmt: skip


class RedisPush:
    def __init__(
        self, client: redis.Redis, scripts: Scripts, queue: RedisQueue, cache_age: float, cache_size: int
    ) -> None:
        self.client = client
        self.scripts = scripts
        self.queue = queue
        self.cache_age = cache_age
        self.cache_size = cache_size

    async def _subscribers(self, ids: list[str]) -> dict[str, Subscriber]:
        found = await hashes(self.client, [f"{PREFIX}sub:{id}" for id in ids])
        return {id: _subscriber(id, hash) for id, hash in zip(ids, found, strict=True) if hash}

    async def _messages(self, ids: list[str]) -> dict[str, Message]:
        found = await hashes(self.client, [f"{PREFIX}msg:{id}" for id in ids])
        return {id: _message(id, hash) for id, hash in zip(ids, found, strict=True) if hash}

    async def _deliveries(self, ids: list[str]) -> list[tuple[int, Delivery]]:
        return [_delivery(hash) for hash in await hashes(self.client, [f"{PREFIX}dlv:{id}" for id in ids]) if hash]

    @guarded
    async def put_subscriber(self, subscriber: Subscriber) -> tuple[Subscriber, bool]:
        created_at, created = await self.scripts(
            "put_subscriber", subscriber.id, json.dumps(subscriber_record(subscriber)),
            repr(subscriber.created_at), repr(subscriber.updated_at), list(subscriber.topics),
        )  # fmt: skip
        return replace(subscriber, created_at=float(created_at)), bool(created)

    @guarded
    async def get_subscriber(self, id: str) -> Subscriber | None:
        return (await self._subscribers([id])).get(id)

    @guarded
    async def delete_subscriber(self, id: str) -> bool:
        return bool(await self.scripts("delete_subscriber", id))

    @guarded
    async def list_subscribers(self, topic: str | None, after: Position | None, limit: int) -> list[Subscriber]:
        """From the topic's list, whose subscribers are checked to be in it still."""

        async def read(ids: list[str]) -> dict[str, Subscriber | None]:
            found = await self._subscribers(ids)
            return {id: s for id, s in found.items() if topic is None or topic in s.topics}

        index = lists.SUBSCRIBERS if topic is None else lists.topic_index(topic)
        return await lists.newest_first(self.client, self.scripts, index, "sub:", after, limit, read, topic or "")

    async def _recipients(self, message: Message, to: list[str] | None) -> tuple[list[Subscriber], list[str]]:
        if to is None:
            to = sorted(text(id) for id in await self.client.smembers(f"{PREFIX}topic:{message.topic}"))
        wanted = list(dict.fromkeys(to))
        if message.channels == (ChannelType.STREAM,):
            # For the live stream alone only the recipients' ids matter: their records are not read.
            async with self.client.pipeline(transaction=False) as pipe:
                for id in wanted:
                    pipe.exists(f"{PREFIX}sub:{id}")
                known = {id for id, exists in zip(wanted, await pipe.execute(), strict=True) if exists}
            found = {id: Subscriber(id, 0.0, 0.0) for id in known}
        else:
            found = await self._subscribers(wanted)
        return [found[id] for id in wanted if id in found], [id for id in to if id not in found]

    @guarded
    async def create_message(self, message: Message, to: list[str] | None, plan: Fanout) -> tuple[Message, list[str]]:
        subscribers, unknown = await self._recipients(message, to)
        message, deliveries, jobs = plan(message, subscribers)
        record = {
            "id": message.id, "record": json.dumps(message_record(message)), "created_at": repr(message.created_at),
            "expires_at": repr(message.expires_at), "recipients": message.recipients,
            "ttl": max(1, int(message.expires_at - message.created_at + RETENTION)),
        }  # fmt: skip
        queued = await self.scripts(
            "create_message", record, [_delivery_fields(d) for d in deliveries], [queued_job(j) for j in jobs],
            repr(message.created_at),
        )  # fmt: skip
        self.queue.notify(queued)
        return message, unknown

    @guarded
    async def count_topic(self, topic: str) -> int:
        count: int = await self.client.scard(f"{PREFIX}topic:{topic}")
        return count

    @guarded
    async def get_message(self, id: str) -> tuple[Message, Counts] | None:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(f"{PREFIX}msg:{id}")
            pipe.hgetall(f"{PREFIX}msg:{id}:counts")
            found, counts = await pipe.execute()
        if not found:
            return None
        return _message(id, found), Counts(**{key.decode(): int(value) for key, value in counts.items()})

    @guarded
    async def list_messages(
        self, status: MessageStatus | None, after: Position | None, limit: int
    ) -> list[tuple[Message, Counts]]:
        async def read(ids: list[str]) -> dict[str, tuple[Message, Counts] | None]:
            async with self.client.pipeline(transaction=False) as pipe:
                for id in ids:
                    pipe.hgetall(f"{PREFIX}msg:{id}")
                    pipe.hgetall(f"{PREFIX}msg:{id}:counts")
                found = await pipe.execute()
            answer: dict[str, tuple[Message, Counts] | None] = {}
            for id, record, counted in zip(ids, found[::2], found[1::2], strict=True):
                if record:  # else it expired: no answer for it, and its entry goes
                    counts = Counts(**{key.decode(): int(value) for key, value in counted.items()})
                    message = _message(id, record)
                    shown = message_status(message, counts)
                    answer[id] = (message, counts) if status in (None, shown) else None
            return answer

        return await lists.newest_first(self.client, self.scripts, lists.MESSAGES, "msg:", after, limit, read)

    @guarded
    async def list_deliveries(
        self, message_id: str | None, status: str | None, after: int, limit: int
    ) -> list[tuple[int, Delivery]]:
        """From the narrowest index; by message and status, the message's deliveries are read and filtered."""
        if message_id is not None:
            index = f"{PREFIX}msg:{message_id}:dlv"
        else:
            index = f"{PREFIX}dlv:status:{status}" if status is not None else f"{PREFIX}dlv:all"
        page: list[tuple[int, Delivery]] = []
        while len(page) < limit:
            batch: list[tuple[bytes, float]] = await self.client.zrangebyscore(  # type: ignore[assignment]
                index, f"({after}", "+inf", start=0, num=max(limit, 100), withscores=True
            )
            if not batch:
                break
            rows = await self._deliveries([id.decode() for id, _ in batch])
            after = int(batch[-1][1])
            page += [row for row in rows if status is None or row[1].status.value == status]
        return page[:limit]

    @guarded
    async def retry_failed(self, message_id: str, jobs_for: Callable[[list[Delivery]], list[Job]], now: float) -> int:
        failed = [d for _, d in await self.list_deliveries(message_id, DeliveryStatus.FAILED.value, 0, 1 << 30)]
        jobs = jobs_for(failed)
        retried = await self.scripts("retry_failed", message_id, [queued_job(job) for job in jobs], repr(now))
        self.queue.notify(retried)
        return retried

    @guarded
    async def delivery_context(self, ids: list[str]) -> DeliveryContext:
        deliveries = {d.id: d for _, d in await self._deliveries(ids)}
        messages = await self._messages(list({d.message_id for d in deliveries.values()}))
        subscribers = await self._subscribers(list({d.subscriber_id for d in deliveries.values()}))
        return DeliveryContext(deliveries, messages, subscribers)

    @guarded
    async def stream_context(self, message_ids: list[str]) -> tuple[dict[str, Message], dict[str, list[str]]]:
        async with self.client.pipeline(transaction=False) as pipe:
            for id in message_ids:
                pipe.zrange(f"{PREFIX}msg:{id}:waiting", 0, -1)
            waiting = await pipe.execute()
        async with self.client.pipeline(transaction=False) as pipe:
            for ids in waiting:
                for id in ids:
                    pipe.hget(f"{PREFIX}dlv:{id.decode()}", "subscriber_id")
            subscribers = iter(await pipe.execute())
        recipients = {
            id: [s.decode() for s in (next(subscribers) for _ in ids) if s]
            for id, ids in zip(message_ids, waiting, strict=True)
        }
        return await self._messages(message_ids), recipients

    @guarded
    async def record_stream(self, message_id: str, subscriber_ids: list[str], now: float) -> None:
        await self.scripts("record_stream", message_id, subscriber_ids, repr(now), repr(self.cache_age),
                           self.cache_size)  # fmt: skip

    @guarded
    async def stream_since(self, subscriber_id: str, since: str | None, limit: int, not_before: float) -> list[Message]:
        """The newest ``limit`` cached messages after ``since``, oldest first; an unknown ``since`` replays the
        whole cache: better a duplicate than a gap."""
        cache = f"{PREFIX}cache:{subscriber_id}"
        lowest = int(not_before * 1e6)
        bound = str(lowest)
        if since is not None:
            score = await self.client.zscore(cache, since)
            if score is not None and score >= lowest:
                bound = f"({int(score)}"
        ids = await self.client.zrevrangebyscore(cache, "+inf", bound, start=0, num=limit)
        wanted = [text(id) for id in reversed(ids)]
        found = await self._messages(wanted)
        return [found[id] for id in wanted if id in found]

    @guarded
    async def purge(self, now: float, retention: float, cache_age: float) -> int:
        """Take expired deliveries out of the global indexes (their records and caches expire by TTL)."""
        removed, messages = 0, 1
        while messages:
            messages, entries = await self.scripts("purge", repr(now), 100)
            removed += entries
        return removed
