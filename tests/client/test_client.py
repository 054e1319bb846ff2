"""``tidings.client`` against a real tidings: typed answers, typed errors, retries that never send twice, pages,
and a live stream that survives a dropped connection. ``SyncClient`` runs the same calls from a thread, as a Django
or Flask view would (a blocking call on the test's own loop would stop the server it calls)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest

from tests.client.conftest import KEY
from tests.helpers import TEST_CODE, TEST_NUMBER
from tidings.client import (
    AuthenticationFailed,
    Client,
    ConnectionFailed,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    SyncClient,
    Unavailable,
    Verification,
)


async def test_a_code_is_sent_checked_read_and_canceled(tidings):
    url, _ = await tidings()
    async with Client(url, KEY) as client:
        started = await client.verifications.start(to=TEST_NUMBER)
        assert isinstance(started, Verification) and started.status == "pending" and started.send_count == 1
        assert isinstance(started.expires_at, dt.datetime) and started.expires_at.tzinfo is not None
        wrong = await client.verifications.check(to=TEST_NUMBER, code="000000")
        assert (wrong.valid, wrong.status, wrong.attempts_left) == (False, "pending", 4)
        right = await client.verifications.check(id=started.id, code=TEST_CODE)
        assert (right.valid, right.status) == (True, "approved")
        assert (await client.verifications.get(started.id)).status == "approved"
        other = await client.verifications.start(to="+15005550007", channel="sms", code_length=8)
        assert (await client.verifications.cancel(other.id)).status == "canceled"


async def test_errors_carry_the_apis_code_status_and_retry_after(tidings):
    url, _ = await tidings({"verify": {"max_sends": 1, "resend_cooldown": 0}})
    async with Client(url, KEY, max_retries=0) as client:
        with pytest.raises(NotFound) as missing:
            await client.verifications.get("ver_00000000000000000000000000")
        assert (missing.value.code, missing.value.status) == ("verification_not_found", 404)
        with pytest.raises(InvalidRequest) as invalid:
            await client.verifications.start(to="not a number")
        assert (invalid.value.status, invalid.value.field) == (400, "to")
        await client.verifications.start(to="+447700900123")  # not a test number: limits hold
        with pytest.raises(RateLimited) as limited:
            await client.verifications.start(to="+447700900123")
        assert limited.value.code == "max_sends_reached" and limited.value.retry_after is not None
    async with Client(url, "tk_not-a-key") as client:
        with pytest.raises(AuthenticationFailed) as refused:
            await client.verifications.get("ver_x")
        assert refused.value.status == 401
    async with Client(url, KEY) as admin:
        sender = await admin.keys.create("app", ["send"])
    async with Client(url, sender.key) as client:
        with pytest.raises(PermissionDenied):
            await client.keys.list()


async def test_a_retry_after_an_answer_lost_sends_nothing_twice(tidings):
    """The server started the verification, then the answer was lost to a 503: the client asks again with the same
    Idempotency-Key and gets the first answer."""
    url, faults = await tidings()
    faults.after = [(503, {"Retry-After": "0"}), (502, {})]
    async with Client(url, KEY) as client:
        started = await client.verifications.start(to=TEST_NUMBER)
        assert started.send_count == 1, "one send, however many tries"
    posts = [key for method, path, key in faults.forwarded if method == "POST"]
    assert len(posts) == 3 and len(set(posts)) == 1


async def test_a_message_sent_again_under_its_key_says_it_was_a_replay(tidings):
    url, _ = await tidings()
    async with Client(url, KEY) as client:
        first = await client.messages.send(topic="none", body="hi", idempotency_key="batch-1")
        again = await client.messages.send(topic="none", body="hi", idempotency_key="batch-1")
    assert (first.replayed, again.replayed, again.id) == (False, True, first.id)


async def test_a_wait_longer_than_the_client_takes_is_raised_at_once(tidings):
    url, faults = await tidings()
    faults.after = [(429, {"Retry-After": "120"})]
    async with Client(url, KEY, max_wait=5) as client:
        began = time.monotonic()
        with pytest.raises(RateLimited) as limited:
            await client.verifications.start(to=TEST_NUMBER)
        assert limited.value.retry_after == 120 and time.monotonic() - began < 1


async def test_a_stream_that_never_opened_is_a_connection_error():
    async with Client("http://127.0.0.1:9", KEY) as client:
        with pytest.raises(ConnectionFailed):
            await anext(client.stream("ada"))


async def test_429_is_retried_after_what_the_server_asks_and_bounded(tidings):
    url, faults = await tidings()
    faults.after = [(429, {"Retry-After": "1"})]
    async with Client(url, KEY) as client:
        began = time.monotonic()
        await client.verifications.start(to=TEST_NUMBER)
        assert time.monotonic() - began >= 1.0
    faults.after = [(503, {"Retry-After": "0"})] * 3
    async with Client(url, KEY, max_retries=2) as client:
        with pytest.raises(Unavailable) as gave_up:
            await client.verifications.get("ver_x")
        assert gave_up.value.status == 503


async def test_a_server_that_is_not_there_is_a_connection_error():
    async with Client("http://127.0.0.1:9", KEY, max_retries=1, max_wait=0.01) as client:
        with pytest.raises(ConnectionFailed) as failed:
            await client.verifications.get("ver_x")
        assert failed.value.status == 0 and "127.0.0.1:9" in str(failed.value)


async def test_lists_are_iterators_over_every_page(tidings):
    url, _ = await tidings()
    async with Client(url, KEY) as client:
        for n in range(25):
            await client.subscribers.put(f"u{n:02d}", topics=["news"])
        sent = await client.messages.send(topic="news", body="hi", channels=["stream"])
        assert sent.recipients == 25
        deliveries = [d async for d in client.messages.deliveries(sent.id, limit=10)]
        assert sorted(d.subscriber_id for d in deliveries) == [f"u{n:02d}" for n in range(25)]
        message = await client.messages.get(sent.id)
        assert message.counts.queued + message.counts.delivered == 25


async def test_a_stream_resumes_after_a_dropped_connection(tidings):
    url, faults = await tidings()
    async with Client(url, KEY) as client:
        await client.subscribers.put("ada")
        events = client.stream("ada", reconnect_wait=0.05)
        first = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0.3)  # the stream is open
        one = await client.messages.send(to=["ada"], body="one", channels=["stream"])
        assert (await asyncio.wait_for(first, 5)).id == one.id
        faults.cut.set()  # the connection drops; a message is sent while the client is away
        await asyncio.sleep(0.1)
        faults.cut.clear()
        two = await client.messages.send(to=["ada"], body="two", channels=["stream"])
        event = await asyncio.wait_for(anext(events), 5)
        assert (event.id, event.body) == (two.id, "two"), "resumed after the last message seen: none lost"
        await events.aclose()


async def test_the_sync_client_makes_the_same_calls_from_blocking_code(tidings):
    url, _ = await tidings()

    def view() -> tuple:
        with SyncClient(url, KEY) as client:
            started = client.verifications.start(to=TEST_NUMBER)
            check = client.verifications.check(to=TEST_NUMBER, code=TEST_CODE)
            client.subscribers.put("bob", topics=["t"])
            sent = client.messages.send(topic="t", title="Hi", channels=["stream"])
            deliveries = list(client.messages.deliveries(sent.id))
            try:
                client.verifications.get("ver_00000000000000000000000000")
            except NotFound as exc:
                missing = exc.code
            return started, check, deliveries, missing

    started, check, deliveries, missing = await asyncio.to_thread(view)
    assert isinstance(started, Verification) and check.valid
    assert [d.subscriber_id for d in deliveries] == ["bob"]
    assert missing == "verification_not_found"


def test_the_environment_names_the_server_and_the_key(monkeypatch):
    monkeypatch.setenv("TIDINGS_URL", "http://tidings.internal:8000/")
    monkeypatch.setenv("TIDINGS_API_KEY", "tk_from_env")
    client = Client()
    assert client.base_url == "http://tidings.internal:8000"
    assert client._http.headers["Authorization"] == "Bearer tk_from_env"
