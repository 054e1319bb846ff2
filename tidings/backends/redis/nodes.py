"""Across nodes: the live-stream relay over Redis pub/sub, and the registry of live processes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict

import redis.asyncio as redis

from tidings.backends.redis.client import PREFIX, guarded, listen_forever, text
from tidings.ports import Deliver, Node

CHANNEL = PREFIX + "hub"


class RedisRelay:
    """Every process that holds connections subscribes to one channel and keeps the events for its own
    subscribers. A worker publishes an event only after it is in the stream cache, so a client that connects
    meanwhile finds it there (the ``Listener`` drops what it gets both ways)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    @guarded
    async def publish(self, message_id: str, event: bytes, subscriber_ids: list[str]) -> None:
        # Ids hold no newline (the API checks them), so the event needs no escaping.
        await self.client.publish(CHANNEL, f"{message_id}\n{json.dumps(subscriber_ids)}\n".encode() + event)

    async def run(self, deliver: Deliver, lost: Callable[[], None]) -> None:
        def handle(data: bytes) -> None:
            message_id, ids, event = data.split(b"\n", 2)
            deliver(message_id.decode(), event, json.loads(ids))

        await listen_forever(self.client, CHANNEL, handle, lost)


class RedisNodes:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    @guarded
    async def beat(self, node: Node, ttl: float) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(f"{PREFIX}node:{node.id}", json.dumps(asdict(node)), px=int(ttl * 1000))
            pipe.zadd(f"{PREFIX}nodes", {node.id: node.seen_at + ttl})
            await pipe.execute()

    @guarded
    async def live(self, now: float) -> list[Node]:
        await self.client.zremrangebyscore(f"{PREFIX}nodes", "-inf", now)
        ids = await self.client.zrange(f"{PREFIX}nodes", 0, -1)
        found = await self.client.mget([f"{PREFIX}node:{text(id)}" for id in ids]) if ids else []
        return sorted((Node(**json.loads(node)) for node in found if node), key=lambda node: (node.role, node.id))
