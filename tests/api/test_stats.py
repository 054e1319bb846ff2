"""``GET /v1/stats`` through the server, after real traffic: codes started, approved and failed, deliveries by
channel, sends by provider, on SQLite and on Redis (two nodes counting into one set of buckets)."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from tests.conftest import merge
from tests.helpers import TEST_CODE, TEST_CONFIG, TEST_NUMBER, eventually, finished
from tests.push.conftest import receiver, subscribe  # noqa: F401 - a fixture these tests use

FAST = merge(TEST_CONFIG, {"stats": {"flush_every": 0.05}})


async def totals(api, **query) -> dict:
    answer = await api.get("/v1/stats?" + "&".join(f"{k}={v}" for k, v in query.items()))
    assert answer.status == 200, answer.body
    return answer.body["totals"]


async def test_the_counts_follow_the_traffic(serve, receiver):  # noqa: F811
    good, bad = await receiver(), await receiver(status=404)
    api = await serve(FAST)
    for number in ("+447700900001", "+447700900002", TEST_NUMBER):
        assert (await api.post("/v1/verifications", {"to": number})).status == 201
    assert (await api.post("/v1/verifications", {"to": TEST_NUMBER})).status == 201, "a resend is not a new code"
    assert (await api.post("/v1/verifications/check", {"to": TEST_NUMBER, "code": TEST_CODE})).body["valid"]
    await subscribe(api, good, ["a", "b"], topics=["t"])
    await subscribe(api, bad, ["c"], topics=["t"])
    sent = await api.post("/v1/messages", {"topic": "t", "body": "hi", "channels": ["webhook", "stream"]})
    await finished(api, sent.body["id"])

    async def counted() -> bool:
        found = await totals(api)
        return found["deliveries"].get("webhook") == {"delivered": 2, "failed": 1} and found["sends"].get("console")

    await eventually(counted)
    found = await totals(api)
    assert found["verifications"] == {"started": 3, "approved": 1, "failed": 0}
    assert found["deliveries"]["stream"] == {"delivered": 3, "failed": 0}
    assert found["sends"]["console"] == {"ok": 2, "error": 0}
    assert found["sends"]["webhook"] == {"ok": 2, "error": 1}, found


async def test_buckets_are_contiguous_and_the_count_is_in_its_own(serve):
    api = await serve(FAST)
    sent_at = dt.datetime.now(dt.UTC)
    assert (await api.post("/v1/verifications", {"to": TEST_NUMBER})).status == 201
    now = dt.datetime.now(dt.UTC)
    since = (now - dt.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def counted() -> bool:
        body = (await api.get(f"/v1/stats?since={since}&step=120")).body
        return body["totals"]["verifications"]["started"] == 1

    await eventually(counted)
    body = (await api.get(f"/v1/stats?since={since}&step=120")).body
    assert body["step"] == 120 and len(body["buckets"]) in (5, 6)
    starts = [dt.datetime.fromisoformat(bucket["at"]) for bucket in body["buckets"]]
    assert all(b - a == dt.timedelta(seconds=120) for a, b in itertools.pairwise(starts))
    [holding] = [bucket for bucket in body["buckets"] if bucket["verifications"]["started"]]
    at = dt.datetime.fromisoformat(holding["at"])
    assert holding["verifications"]["started"] == 1
    assert at <= now and sent_at < at + dt.timedelta(seconds=120), "the bucket of the moment it was counted"


async def test_two_nodes_count_into_the_same_buckets(serve, redis_url):
    first = await serve(merge(FAST, {"database": redis_url}))
    second = await serve(merge(FAST, {"database": redis_url}))
    for api in (first, second):
        assert (await api.post("/v1/verifications", {"to": TEST_NUMBER})).status == 201
        await api.post("/v1/verifications/check", {"to": TEST_NUMBER, "code": TEST_CODE})

    async def both() -> bool:
        return (await totals(first))["verifications"]["approved"] == 2

    await eventually(both)
    assert (await totals(second))["verifications"] == {"started": 2, "approved": 2, "failed": 0}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("step=30", "step"),
        ("step=90", "step"),
        ("step=abc", "step"),
        ("since=yesterday", "since"),
        ("since=2030-01-01T00:00:00", "since"),
        ("since=2030-01-01T00:00:00Z&until=2029-01-01T00:00:00Z", "since"),
        ("since=2020-01-01T00:00:00Z&until=2020-03-01T00:00:00Z&step=3600", "since"),
        ("since=2020-01-01T00:00:00Z&until=2020-01-03T00:00:00Z&step=60", "step"),
        ("since=2020-01-01T00:00:00Z&until=2020-01-01T12:00:00Z&step=60", "step"),
        ("color=red", "color"),
    ],
)
async def test_what_cannot_be_answered_is_refused_naming_the_field(serve, query, field):
    api = await serve()
    answer = await api.get(f"/v1/stats?{query}")
    assert answer.status == 400 and answer.body["error"]["field"] == field, answer.body


async def test_a_month_comes_by_the_hour(serve):
    api = await serve(FAST)
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = (await api.get(f"/v1/stats?since={since}&step=3600")).body
    assert body["step"] == 3600 and 720 <= len(body["buckets"]) <= 722


async def test_stats_need_the_read_scope(serve):
    api = await serve()
    sender = (await api.post("/v1/keys", {"name": "s", "scopes": ["send"]})).body["key"]
    assert (await api.get("/v1/stats", key=sender)).status == 403
    assert (await api.get("/v1/stats", key=None)).status == 401
