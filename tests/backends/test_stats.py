"""The counts behind ``GET /v1/stats``, held by each backend to one behaviour: added to (by many processes at once on
Redis), read by bucket and resolution, and forgotten when too old."""

from __future__ import annotations

import asyncio
import time

from tidings.core.stats import HOUR, KEPT, MINUTE


async def test_counts_add_up_per_bucket_and_name(backend):
    now = int(time.time()) // HOUR * HOUR
    await backend.stats.add({(now, "verifications.started"): 2, (now + 60, "sends.twilio.ok"): 1}, MINUTE)
    await backend.stats.add({(now, "verifications.started"): 3}, MINUTE)
    await backend.stats.add({(now, "verifications.started"): 5}, HOUR)
    assert await backend.stats.read(MINUTE, now, now + 120) == {
        (now, "verifications.started"): 5,
        (now + 60, "sends.twilio.ok"): 1,
    }
    assert await backend.stats.read(MINUTE, now + 60, now + 120) == {(now + 60, "sends.twilio.ok"): 1}
    assert await backend.stats.read(HOUR, now, now + HOUR) == {(now, "verifications.started"): 5}


async def test_many_writers_at_once_lose_nothing(backend):
    now = int(time.time()) // MINUTE * MINUTE
    await asyncio.gather(*(backend.stats.add({(now, "deliveries.webhook.delivered"): 1}, MINUTE) for _ in range(50)))
    assert await backend.stats.read(MINUTE, now, now + 60) == {(now, "deliveries.webhook.delivered"): 50}


async def test_old_buckets_are_forgotten(backend):
    now = time.time()
    old = int(now - KEPT[MINUTE] - 600) // MINUTE * MINUTE
    recent = int(now) // MINUTE * MINUTE
    await backend.stats.add({(old, "a.b.c"): 1, (recent, "a.b.c"): 1}, MINUTE)
    await backend.stats.purge(now)
    assert await backend.stats.read(MINUTE, old - 60, recent + 60) == {(recent, "a.b.c"): 1}
