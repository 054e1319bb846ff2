"""Counts per time bucket on Redis, shared by every node: a hash per bucket (``stats:<resolution>:<start>``) of
counts by name, added to with HINCRBY and gone when its TTL (``core.stats.KEPT``) runs out."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import redis.asyncio as redis

from tidings.backends.redis.client import PREFIX, guarded
from tidings.core.stats import KEPT


class RedisStats:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    @guarded
    async def add(self, counts: Mapping[tuple[int, str], int], resolution: int) -> None:
        by_bucket: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for (start, name), count in counts.items():
            by_bucket[start].append((name, count))
        async with self.client.pipeline(transaction=False) as pipe:
            for start, names in by_bucket.items():
                key = _key(resolution, start)
                for name, count in names:
                    pipe.hincrby(key, name, count)
                pipe.expireat(key, start + KEPT[resolution])
            await pipe.execute()

    @guarded
    async def read(self, resolution: int, since: float, until: float) -> dict[tuple[int, str], int]:
        starts = list(range(int(since // resolution) * resolution, int(until), resolution))
        starts = [start for start in starts if since <= start < until]
        async with self.client.pipeline(transaction=False) as pipe:
            for start in starts:
                pipe.hgetall(_key(resolution, start))
            found = await pipe.execute()
        return {
            (start, name.decode() if isinstance(name, bytes) else name): int(count)
            for start, names in zip(starts, found, strict=True)
            for name, count in names.items()
        }

    async def purge(self, now: float) -> int:
        """Nothing to do: every bucket expires by itself."""
        return 0


def _key(resolution: int, start: int) -> str:
    return f"{PREFIX}stats:{resolution}:{start}"
