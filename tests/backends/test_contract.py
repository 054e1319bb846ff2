"""The semantics every backend keeps, written once against the ports (``tidings.ports``) and run over each backend.

A new backend passes this suite before anything else uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace

import pytest

from tests.helpers import enqueue, job, verification
from tidings.core.otp import CheckResult, Refused
from tidings.core.outcomes import Ack, Attempt, Drop, Reschedule
from tidings.core.push import (
    SUBSCRIPTION_GONE,
    ApnsToken,
    ChannelType,
    Delivery,
    DeliveryStatus,
    FcmToken,
    Message,
    Subscriber,
    WebPushSubscription,
    fan_out,
)
from tidings.core.ratelimit import Limit
from tidings.core.types import PRIORITY_LOW, Channel, Job, Status
from tidings.ports import IDEMPOTENCY_PENDING, ApiKey, Lookup, Node, Started, StartRequest

# The queue.


async def test_due_jobs_are_leased_by_priority_and_hidden_while_leased(backend):
    now = time.time()
    await enqueue(backend, [job("bulk", priority=PRIORITY_LOW), job("code"), job("later", run_at=now + 60)])
    leased = await backend.queue.lease("sms", 10, now, lease_for=30)
    assert [j.id for j in leased] == ["code", "bulk"]
    assert await backend.queue.lease("sms", 10, now, lease_for=30) == []
    assert await backend.queue.lease("other", 10, now, lease_for=30) == []


async def test_a_lease_that_runs_out_gives_the_job_back(backend):
    now = time.time()
    await enqueue(backend, [job("a")])
    assert len(await backend.queue.lease("sms", 10, now, lease_for=5)) == 1
    assert await backend.queue.lease("sms", 10, now + 4, lease_for=5) == []
    [again] = await backend.queue.lease("sms", 10, now + 6, lease_for=5)
    assert again.id == "a"


async def test_settling_acks_reschedules_and_drops(backend):
    now = time.time()
    await enqueue(backend, [job("ok"), job("retry"), job("drop")])
    leased = {j.id: j for j in await backend.queue.lease("sms", 10, now, lease_for=30)}
    attempt = Attempt(leased["retry"], "sms", "transient", "timeout", now)
    await backend.queue.settle(
        [
            (leased["ok"], Ack("provider-id"), None),
            (leased["retry"], Reschedule(now + 10, "backup", 1), attempt),
            (leased["drop"], Drop("bad_number"), None),
        ],
        now,
    )
    assert await backend.queue.depth() == {"backup": 1}
    assert await backend.queue.lease("backup", 10, now + 5, lease_for=30) == []
    [retried] = await backend.queue.lease("backup", 10, now + 10, lease_for=30)
    assert (retried.id, retried.attempts) == ("retry", 1)


async def test_released_jobs_are_due_at_once_and_next_due_is_known(backend):
    now = time.time()
    await enqueue(backend, [job("a"), job("b", run_at=now + 100)])
    leased = await backend.queue.lease("sms", 10, now, lease_for=300)
    await backend.queue.release(leased)
    assert [j.id for j in await backend.queue.lease("sms", 10, time.time(), lease_for=300)] == ["a"]
    assert await backend.queue.next_due() == pytest.approx(now + 100, abs=1)


# Verifications: one atomic step each.


async def test_start_creates_then_resends_and_limits_are_atomic(backend):
    now = time.time()
    fresh = verification("ver_1", now=now)
    limit = Limit("per_number_hour", "+8613800138000", 1, 3600)
    sent = job("")
    first = await backend.store.start_verification(StartRequest(fresh.to, Channel.SMS, fresh, [limit], sent), now)
    assert isinstance(first, Started) and not first.resent
    second = await backend.store.start_verification(StartRequest(fresh.to, Channel.SMS, fresh, [limit], sent), now)
    assert isinstance(second, Refused) and second.error == "rate_limited"
    again = await backend.store.start_verification(StartRequest(fresh.to, Channel.SMS, fresh, [], sent), now + 31)
    assert isinstance(again, Started) and again.resent and again.verification.send_count == 2
    assert sum((await backend.queue.depth()).values()) == 2


async def test_a_start_after_a_finished_verification_makes_a_new_one(backend):
    now = time.time()
    first = verification("ver_old", now=now)
    await backend.store.start_verification(StartRequest(first.to, Channel.SMS, first, [], None), now)
    await backend.store.cancel_verification("ver_old", now)
    second = verification("ver_new", now=now)
    started = await backend.store.start_verification(StartRequest(second.to, Channel.SMS, second, [], None), now)
    assert isinstance(started, Started) and not started.resent and started.verification.id == "ver_new"
    again = await backend.store.start_verification(StartRequest(second.to, Channel.SMS, second, [], None), now + 31)
    assert isinstance(again, Started) and again.resent and again.verification.id == "ver_new"


async def test_concurrent_checks_count_every_attempt_and_approve_once(backend):
    now = time.time()
    fresh = verification("ver_2", now=now)
    await backend.store.start_verification(StartRequest(fresh.to, Channel.SMS, fresh, [], None), now)
    wrong = await asyncio.gather(
        *(backend.store.check_verification(Lookup(id="ver_2"), lambda v: False, now) for _ in range(8))
    )
    assert sum(isinstance(r, CheckResult) for r in wrong) == 5
    assert sum(isinstance(r, Refused) for r in wrong) == 3
    other = verification("ver_3", to="+8613800138001", now=now)
    await backend.store.start_verification(StartRequest(other.to, Channel.SMS, other, [], None), now)
    right = await asyncio.gather(
        *(backend.store.check_verification(Lookup(to=other.to), lambda v: True, now) for _ in range(10))
    )
    assert sum(isinstance(r, CheckResult) and r.valid for r in right) == 1


async def test_cancel_and_get(backend):
    now = time.time()
    fresh = verification("ver_4", now=now)
    await backend.store.start_verification(StartRequest(fresh.to, Channel.SMS, fresh, [], None), now)
    canceled = await backend.store.cancel_verification("ver_4", now)
    assert canceled.status is Status.CANCELED
    assert (await backend.store.get_verification("ver_4")).status is Status.CANCELED
    assert await backend.store.get_verification("ver_none") is None
    assert await backend.store.get_verifications(["ver_4", "ver_none"]) == {"ver_4": replace(canceled)}


async def test_keys_and_idempotency_records(backend):
    key = ApiKey("key_1", "app", frozenset({"send"}), time.time(), "hash-1")
    await backend.store.add_key(key)
    assert (await backend.store.find_key("hash-1")).id == "key_1"
    assert [k.id for k in await backend.store.list_keys()] == ["key_1"]
    assert await backend.store.revoke_key("key_1", time.time())
    assert await backend.store.find_key("hash-1") is None
    now = time.time()
    assert await backend.store.idempotent_claim("scope", "k", "fp", now) is None, "claimed"
    assert await backend.store.idempotent_claim("scope", "k", "fp", now) == ("fp", IDEMPOTENCY_PENDING, b"")
    await backend.store.idempotent_put("scope", "k", "fp", 201, b"{}", now)
    assert await backend.store.idempotent_claim("scope", "k", "other", now) == ("fp", 201, b"{}")
    await backend.store.idempotent_release("scope", "k")
    assert await backend.store.idempotent_claim("scope", "k", "fp", now) == ("fp", 201, b"{}"), "an answer stays"
    assert await backend.store.idempotent_claim("scope", "gone", "fp", now) is None
    await backend.store.idempotent_release("scope", "gone")
    assert await backend.store.idempotent_claim("scope", "gone", "fp", now) is None, "a released claim is free"
    await backend.store.idempotent_put("key_1:PUT:/v1/subscribers/p1:b", "c", "first", 201, b"{}", now)
    assert await backend.store.idempotent_claim("key_1:PUT:/v1/subscribers/p1", "b:c", "x", now) is None, "apart"


# Subscribers, messages and deliveries.


def subscriber(id: str, topics: tuple[str, ...] = ("news",)) -> Subscriber:
    return Subscriber(
        id, time.time(), time.time(), phone="+8613800138000", topics=topics, channel_order=(ChannelType.SMS,)
    )


def plan(message: Message, subscribers: list[Subscriber]) -> tuple[Message, list[Delivery], list]:
    deliveries = fan_out(message, subscribers, lambda m, n: f"dlv_{m}.{n}", time.time())
    jobs = [Job(d.id, "delivery", message.id, "sms") for d in deliveries if d.channel is ChannelType.SMS]
    return replace(message, recipients=len(subscribers)), deliveries, jobs


async def test_subscribers_are_replaced_whole(backend):
    stored, created = await backend.push.put_subscriber(subscriber("ada", ("news", "sports")))
    assert created and stored.topics == ("news", "sports")
    replaced, created = await backend.push.put_subscriber(replace(subscriber("ada", ("sports",)), created_at=0))
    assert not created and replaced.created_at == stored.created_at and replaced.topics == ("sports",)
    assert await backend.push.delete_subscriber("ada")
    assert await backend.push.get_subscriber("ada") is None
    assert not await backend.push.delete_subscriber("ada")


async def test_a_message_fans_out_to_a_topic_and_counts_its_deliveries(backend):
    for id in ("a", "b"):
        await backend.push.put_subscriber(subscriber(id))
    await backend.push.put_subscriber(subscriber("c", ("sports",)))
    message = Message("msg_1", "t", "b", None, "normal", time.time(), time.time() + 60, topic="news")
    created, unknown = await backend.push.create_message(message, None, plan)
    assert created.recipients == 2 and unknown == []
    _, counts = await backend.push.get_message("msg_1")
    assert counts.queued == 4 and counts.status.value == "queued"  # a stream and an SMS each
    by_id, unknown = await backend.push.create_message(replace(message, id="msg_2", topic=None), ["a", "zed"], plan)
    assert by_id.recipients == 1 and unknown == ["zed"]
    page = await backend.push.list_deliveries("msg_1", None, 0, 3)
    rest = await backend.push.list_deliveries("msg_1", None, page[-1][0], 3)
    assert len(page) == 3 and len(rest) == 1
    assert len({d.id for _, d in page + rest}) == 4


async def test_stream_cache_replays_after_a_message(backend):
    await backend.push.put_subscriber(subscriber("a"))
    now = time.time()
    for n in range(3):
        message = Message(f"msg_s{n}", None, str(n), None, "normal", now, now + 60, channels=(ChannelType.STREAM,))
        await backend.push.create_message(message, ["a"], plan)
        found, waiting = await backend.push.stream_context([message.id])
        assert found[message.id].body == str(n) and waiting == {message.id: ["a"]}
        await backend.push.record_stream(message.id, ["a"], now)
        assert (await backend.push.stream_context([message.id]))[1] == {message.id: []}
    replay = await backend.push.stream_since("a", "msg_s0", 10, now - 1)
    assert [m.id for m in replay] == ["msg_s1", "msg_s2"]
    assert [m.id for m in await backend.push.stream_since("a", None, 2, now - 1)] == ["msg_s1", "msg_s2"]
    assert await backend.push.stream_since("a", None, 10, now + 1) == []
    _, counts = await backend.push.get_message("msg_s2")
    assert counts.delivered == 1
    assert await backend.push.delete_subscriber("a")
    await backend.push.put_subscriber(subscriber("a"))
    assert await backend.push.stream_since("a", None, 10, now - 1) == [], "a new subscriber of that id starts afresh"


async def test_any_subscriber_id_has_a_stream_cache_of_its_own(backend):
    """Names that a backend might use for its own keys are subscribers' names like any other."""
    now = time.time()
    names = ["clock", "seq", "all", "a:b", "status"]
    for name in names:
        await backend.push.put_subscriber(subscriber(name))
    message = Message("msg_c0", None, "x", None, "normal", now, now + 60, channels=(ChannelType.STREAM,))
    await backend.push.create_message(message, names, plan)
    await backend.push.record_stream(message.id, names, now)
    for name in names:
        assert [m.id for m in await backend.push.stream_since(name, None, 10, now - 1)] == ["msg_c0"], name


async def test_failed_deliveries_are_queued_again_under_their_ids(backend):
    await backend.push.put_subscriber(subscriber("a"))
    message = Message("msg_f", None, "x", None, "normal", time.time(), time.time() + 60, channels=(ChannelType.SMS,))
    await backend.push.create_message(message, ["a"], plan)
    [leased] = await backend.queue.lease("sms", 10, time.time(), lease_for=30)
    attempt = Attempt(leased, "sms", "permanent", "bad_number", time.time())
    await backend.queue.settle([(leased, Drop("bad_number"), attempt)], time.time())
    [(_, failed)] = await backend.push.list_deliveries(None, DeliveryStatus.FAILED.value, 0, 10)
    assert (failed.id, failed.attempts, failed.last_error) == (leased.id, 1, "bad_number")
    jobs_for = lambda ds: [Job(d.id, "delivery", "msg_f", "sms") for d in ds]  # noqa: E731
    retried = await asyncio.gather(*(backend.push.retry_failed("msg_f", jobs_for, time.time()) for _ in range(2)))
    assert sorted(retried) == [0, 1], "two retries at once queue the delivery once"
    [again] = await backend.queue.lease("sms", 10, time.time(), lease_for=30)
    assert again.id == leased.id


def _plan_on(lane: str):
    def planned(message: Message, subscribers: list[Subscriber]) -> tuple[Message, list[Delivery], list]:
        deliveries = fan_out(message, subscribers, lambda m, n: f"dlv_{m}.{n}", time.time())
        return message, deliveries, [Job(d.id, "delivery", message.id, lane) for d in deliveries]

    return planned


async def _send_to(backend, channel: ChannelType, message_id: str) -> None:
    message = Message(message_id, None, "x", None, "normal", time.time(), time.time() + 60, channels=(channel,))
    await backend.push.create_message(message, ["a"], _plan_on(channel.value))


async def _settle_dead(backend, leased: Job, reason: str) -> None:
    """Settle a leased delivery as the service's ``reason`` says."""
    attempt = Attempt(leased, leased.lane, "permanent", reason, time.time())
    await backend.queue.settle([(leased, Drop(reason), attempt)], time.time())


async def test_a_push_subscription_that_is_gone_is_forgotten(backend):
    push = WebPushSubscription("https://push.example/gone", "key", "auth")
    await backend.push.put_subscriber(replace(subscriber("a"), webpush=(push,)))
    await _send_to(backend, ChannelType.WEBPUSH, "msg_g")
    [leased] = await backend.queue.lease("webpush", 10, time.time(), lease_for=30)
    await _settle_dead(backend, leased, SUBSCRIPTION_GONE)
    assert (await backend.push.get_subscriber("a")).webpush == ()


@pytest.mark.parametrize(("channel", "reason"), [(ChannelType.APNS, "Unregistered"), (ChannelType.FCM, "UNREGISTERED")])
async def test_a_dead_device_token_is_removed_and_reported_once(backend, channel, reason):
    if channel is ChannelType.APNS:
        devices = (ApnsToken("ab" * 32), ApnsToken("cd" * 32, "sandbox"))
    else:
        devices = (FcmToken("x:1"), FcmToken("y:2"))
    await backend.push.put_subscriber(replace(subscriber("a"), **{channel.value: devices}))
    await _send_to(backend, channel, "msg_d")
    await _send_to(backend, channel, "msg_e")
    leased = await backend.queue.lease(channel.value, 10, time.time(), lease_for=30)
    dead = [job for job in leased if job.id.endswith(".0")]  # each message's first delivery: the first token
    assert len(dead) == 2
    await _settle_dead(backend, dead[0], reason)
    assert getattr(await backend.push.get_subscriber("a"), channel.value) == devices[1:], "only the dead token goes"
    [report] = await backend.queue.lease("feedback", 10, time.time(), lease_for=30)
    assert (report.id, report.kind, report.ref) == ("fbk_" + dead[0].id[4:], "feedback", dead[0].id)
    assert (report.payload["reason"], report.payload["max_attempts"]) == (reason, 20)
    await _settle_dead(backend, dead[1], reason)  # the same token, dead in the other message: already gone
    assert await backend.queue.lease("feedback", 10, time.time(), lease_for=30) == []
    assert (await backend.queue.depth())["feedback"] == 1, "only the first report is queued"


SMS_ONLY = (ChannelType.SMS,)


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([(Ack(), "")], ("delivered", 1, None)),
        ([(Reschedule(0, "sms", 1), "http_503")], ("queued", 1, "http_503")),
        ([(Reschedule(0, "sms", 1), "http_503"), (Reschedule(0, "sms", 1), None)], ("queued", 1, "http_503")),
        ([(Reschedule(0, "sms", 1), "http_503"), (Ack(), "")], ("delivered", 2, None)),
        ([(Drop("bad_number"), "bad_number")], ("failed", 1, "bad_number")),
        ([(Drop("expired", failed=False), None)], ("expired", 0, "expired")),
    ],
)
async def test_a_delivery_follows_its_job_as_core_outcomes_says(backend, steps, expected):
    """Each backend applies ``core.outcomes.effect`` (SQLite in SQL, Redis in Lua): the same table holds for both."""
    await backend.push.put_subscriber(subscriber("a"))
    message = Message("msg_o", None, "x", None, "normal", time.time(), time.time() + 60, channels=SMS_ONLY)
    await backend.push.create_message(message, ["a"], plan)
    for settlement, error in steps:
        [leased] = await backend.queue.lease("sms", 10, time.time() + 1, lease_for=30)
        attempt = None if error is None else Attempt(leased, "sms", "x", error or None, time.time())
        await backend.queue.settle([(leased, settlement, attempt)], time.time())
    [(_, delivery)] = await backend.push.list_deliveries("msg_o", None, 0, 10)
    assert (delivery.status.value, delivery.attempts, delivery.last_error) == expected


@pytest.mark.parametrize(
    ("settlement", "status", "delivered"),
    [
        (Ack(), Status.PENDING, 1),
        (Drop("yunpian_2"), Status.FAILED, 0),
        (Drop("expired", failed=False), Status.PENDING, 0),
        (Reschedule(0, "sms", 1), Status.PENDING, 0),
    ],
)
async def test_a_verification_keeps_count_of_its_sends_as_core_outcomes_says(backend, settlement, status, delivered):
    now = time.time()
    send = Job("", "verification", "", "sms", run_at=now)
    request = StartRequest("+8613800138000", Channel.SMS, verification("ver_o", now=now), [], send)
    await backend.store.start_verification(request, now)
    [leased] = await backend.queue.lease("sms", 10, now, lease_for=30)
    await backend.queue.settle([(leased, settlement, Attempt(leased, "sms", "x", None, now))], now)
    found = await backend.store.get_verification("ver_o")
    assert (found.status, found.delivered_count) == (status, delivered)


# The nodes and the relay.


async def test_a_node_is_listed_while_it_reports_itself(backend):
    now = time.time()
    node = Node("node-a", "all", "host", 1, "0", now, now, streams=3, in_flight=2)
    await backend.nodes.beat(node, ttl=15)
    assert await backend.nodes.live(now + 1) == [node]
    assert await backend.nodes.live(now + 16) == [], "silent past its time-to-live"


async def test_the_relay_hands_every_published_event_to_the_processes_listening(backend):
    got: list[tuple[str, bytes, list[str]]] = []
    arrived = asyncio.Event()

    def deliver(message_id: str, event: bytes, subscriber_ids: list[str]) -> None:
        got.append((message_id, event, subscriber_ids))
        arrived.set()

    running = asyncio.create_task(backend.relay.run(deliver, lambda: None))
    try:
        for _ in range(100):  # until it listens: a pub/sub subscription takes a round trip
            await backend.relay.publish("msg_r", b'{"body": "x"}', ["a", "b"])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), 0.05)
                break
        assert got[0] == ("msg_r", b'{"body": "x"}', ["a", "b"])
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


# What is left of the ports: purges keep what is within its retention, and the rest.


async def test_a_purge_keeps_what_is_within_its_retention(backend):
    now = time.time()
    send = Job("", "verification", "", "sms", run_at=now)
    await backend.store.start_verification(
        StartRequest("+8613800138000", Channel.SMS, verification("ver_p", now=now), [], send), now
    )
    await backend.push.put_subscriber(subscriber("a"))
    message = Message("msg_p", None, "x", None, "normal", now, now + 60, channels=SMS_ONLY)
    await backend.push.create_message(message, ["a"], plan)
    assert await backend.store.purge(now + 60) >= 0
    assert await backend.push.purge(now + 60, retention=3600, cache_age=3600) >= 0
    assert await backend.store.get_verification("ver_p") is not None
    assert await backend.push.get_message("msg_p") is not None
    await backend.store.ping()


async def test_a_batch_of_delivery_jobs_finds_its_context_in_one_read(backend):
    await backend.push.put_subscriber(subscriber("a"))
    message = Message("msg_x", "t", "b", None, "normal", time.time(), time.time() + 60, channels=SMS_ONLY)
    await backend.push.create_message(message, ["a"], plan)
    [leased] = await backend.queue.lease("sms", 10, time.time(), lease_for=30)
    context = await backend.push.delivery_context([leased.id, "dlv_unknown"])
    assert list(context.deliveries) == [leased.id] and context.deliveries[leased.id].subscriber_id == "a"
    assert list(context.messages) == ["msg_x"] and context.messages["msg_x"].body == "b"
    assert list(context.subscribers) == ["a"]


async def test_the_queue_counts_what_it_holds_and_wakes_a_waiter_when_work_arrives(backend):
    waiting = asyncio.create_task(backend.queue.wait_for_work(10))
    await asyncio.sleep(0)  # it waits now
    before = backend.queue.queued
    await enqueue(backend, [job("w1"), job("w2")])
    await asyncio.wait_for(waiting, 5)
    assert backend.queue.queued == before + 2
    assert await backend.queue.depth() == {"sms": 2}


async def test_a_message_written_twice_keeps_its_first_deliveries_and_jobs(backend):
    """A fan-out job that runs twice (its lease ran out while it wrote) must not send anything twice."""
    await backend.push.put_subscriber(subscriber("a", ("big",)))
    message = Message("msg_w", None, "x", None, "normal", time.time(), time.time() + 60, topic="big",
                      channels=(ChannelType.SMS,))  # fmt: skip
    await backend.push.create_message(message, None, plan)
    await backend.push.create_message(message, None, plan)
    assert len(await backend.queue.lease("sms", 10, time.time(), lease_for=30)) == 1
    _, counts = await backend.push.get_message("msg_w")
    assert counts.queued == 1
    assert await backend.push.count_topic("big") == 1 and await backend.push.count_topic("none") == 0
