"""What only the Redis backend has to show: several consumers on one queue, a lost consumer group, and rate limits
computed in Lua that agree with ``core.ratelimit``."""

from __future__ import annotations

import random
import time

import pytest
import redis.asyncio as redis

from tests.helpers import enqueue, job, verification
from tidings.backends import open_backend
from tidings.core import ratelimit
from tidings.core.otp import Refused
from tidings.core.outcomes import Ack, Reschedule
from tidings.core.ratelimit import Limit
from tidings.core.types import Channel
from tidings.ports import Started, StartRequest


@pytest.fixture
async def two(redis_url):
    """Two processes' view of one Redis, each with its own consumer name."""
    async with open_backend(redis_url, "s") as first, open_backend(redis_url, "s") as second:
        second.queue.consumer = first.queue.consumer + "-other"
        yield first, second


async def test_a_job_is_leased_by_one_consumer_until_its_lease_runs_out(two):
    first, second = two
    now = time.time()
    await enqueue(first, [job("a"), job("b")])
    assert len(await first.queue.lease("sms", 1, now, lease_for=10)) == 1
    [other] = await second.queue.lease("sms", 10, now, lease_for=10)
    assert await second.queue.lease("sms", 10, now + 5, lease_for=10) == []
    assert other.id == "b"
    taken_over = await second.queue.lease("sms", 10, now + 11, lease_for=10)
    assert sorted(j.id for j in taken_over) == ["a", "b"], "both leases ran out"
    await second.queue.settle([(j, Ack(), None) for j in taken_over], now + 11)
    assert await first.queue.depth() == {}
    assert await first.queue.lease("sms", 10, now + 30, lease_for=10) == []


async def test_a_worker_whose_lease_ran_out_records_nothing(two):
    first, second = two
    now = time.time()
    await enqueue(first, [job("a")])
    [late] = await first.queue.lease("sms", 10, now, lease_for=10)
    [taken_over] = await second.queue.lease("sms", 10, now + 11, lease_for=10)
    await second.queue.settle([(taken_over, Ack(), None)], now + 11)
    await first.queue.settle([(late, Reschedule(now + 12, "sms", 1), None)], now + 12)
    assert await first.queue.depth() == {}, "the job is not brought back"


async def test_a_lost_consumer_group_is_made_again_and_no_job_is_skipped(two, redis_url):
    first, _ = two
    now = time.time()
    await enqueue(first, [job("a"), job("b")])
    assert len(await first.queue.lease("sms", 1, now, lease_for=10)) == 1
    client = redis.Redis.from_url(redis_url)
    await client.xgroup_destroy("tidings:q:sms:0", "workers")
    await client.aclose()
    again = await first.queue.lease("sms", 10, now, lease_for=10)
    assert sorted(j.id for j in again) == ["a", "b"], "at least once: the leased job comes back too"


async def test_limits_in_lua_agree_with_core(redis_url):
    limits = [
        Limit("per_number_hour", "n", 3, 10.0),
        Limit("per_ip_hour", "ip", 5, 20.0),
        Limit("budget", "country", 8, 60.0, "budget_exhausted"),
    ]
    rng = random.Random(7)
    tats: dict[str, float] = {}
    now = time.time()
    async with open_backend(redis_url, "s") as backend:
        for n in range(300):
            now += rng.choice([0.0, 0.5, 1.0, 3.0])
            chosen = rng.sample(limits, rng.randint(1, 3))
            fresh = verification(f"ver_{n}", to=f"+86138{n:08d}", now=now)
            result = await backend.store.start_verification(
                StartRequest(fresh.to, Channel.SMS, fresh, chosen, None), now
            )
            expected = ratelimit.check_all(tats, chosen, now)
            if expected.allowed:
                tats.update(expected.updates)
                assert isinstance(result, Started), (n, result)
            else:
                assert isinstance(result, Refused) and result.error == expected.hit.error, (n, result)
                assert result.retry_after == pytest.approx(expected.retry_after, abs=1e-6)
