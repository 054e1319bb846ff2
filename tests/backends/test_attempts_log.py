"""The log of attempts, tailed by ``GET /v1/events``: every try in order, read on from a cursor, from every process."""

from __future__ import annotations

import time

from tests.helpers import enqueue, job
from tidings.core.outcomes import Ack, Attempt, Reschedule


async def test_the_log_is_read_on_from_a_cursor(backend):
    _, start = await backend.queue.attempts_after(None, 10)
    assert await backend.queue.attempts_after(start, 10) == ([], start)
    await enqueue(backend, [job("a"), job("b")])
    a, b = await backend.queue.lease("sms", 10, time.time(), lease_for=30)
    now = time.time()
    await backend.queue.settle([(a, Reschedule(now, "sms", 1), Attempt(a, "sms", "transient", "http_503", now))], now)
    await backend.queue.settle([(b, Ack(), Attempt(b, "sms", "delivered", None, now))], now)
    first, cursor = await backend.queue.attempts_after(start, 1)
    assert [(e.job, e.outcome, e.error, e.provider, e.kind) for e in first] == [
        ("a", "transient", "http_503", "sms", "test")
    ]
    rest, end = await backend.queue.attempts_after(cursor, 10)
    assert [(e.job, e.outcome, e.error) for e in rest] == [("b", "delivered", None)]
    assert abs(rest[0].at - now) < 1e-3
    assert await backend.queue.attempts_after(end, 10) == ([], end)
    assert (await backend.queue.attempts_after(None, 10))[1] == end, "a new reader starts after the last"


async def test_the_failed_tries_of_a_verification_are_kept_by_its_id(backend):
    await enqueue(backend, [job("a"), job("b")])
    a, b = await backend.queue.lease("sms", 10, time.time(), lease_for=30)
    now = time.time()
    settled = [
        (a, Reschedule(now, "sms", 1), Attempt(a, "sms", "transient", "http_503", now)),
        (b, Ack(), Attempt(b, "sms", "delivered", None, now)),
    ]
    await backend.queue.settle(settled, now)
    [again] = await backend.queue.lease("sms", 10, now + 1, lease_for=30)
    later = now + 1
    await backend.queue.settle([(again, Ack(), Attempt(again, "yunpian", "permanent", "yunpian_2", later))], later)
    failures = await backend.queue.failures("a")
    assert [(f.provider, f.outcome, f.error) for f in failures] == [
        ("sms", "transient", "http_503"),
        ("yunpian", "permanent", "yunpian_2"),
    ]
    assert await backend.queue.failures("b") == [], "a delivered try is not a failure"
    assert await backend.queue.failures("nothing") == []
