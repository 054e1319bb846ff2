"""The contract suite's part on lists (``list_verifications``, ``list_subscribers``, ``list_messages``): newest first
by ``(created_at, id)``, paged after a position, filtered, the same on every backend."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from tests.helpers import verification
from tidings.backends import Backend
from tidings.core.outcomes import Ack, Attempt
from tidings.core.push import ChannelType, Delivery, Message, MessageStatus, Subscriber, fan_out
from tidings.core.types import Channel, Job, Status
from tidings.ports import Lookup, Position, StartRequest

SMS_ONLY = (ChannelType.SMS,)


async def every_page(fetch: Callable[[Position | None, int], Awaitable[list[Any]]], limit: int) -> list[Any]:
    """Page after page, each after the last item of the one before, until one is not full."""
    items: list[Any] = []
    after = None
    while True:
        page = await fetch(after, limit)
        assert len(page) <= limit
        items += page
        if len(page) < limit:
            return items
        last = page[-1][0] if isinstance(page[-1], tuple) else page[-1]
        after = Position(last.created_at, last.id)


def newest_first(items: list[Any]) -> list[str]:
    return [item.id for item in sorted(items, key=lambda item: (item.created_at, item.id), reverse=True)]


async def start(backend: Backend, id: str, to: str, at: float) -> None:
    fresh = verification(id, to=to, now=at)
    await backend.store.start_verification(StartRequest(to, Channel.SMS, fresh, [], None), at)


# Verifications.


async def test_verifications_come_newest_first_each_once_on_pages_of_any_size(backend):
    now = time.time()
    made = []
    # Three made in the same instant: they are ordered by id, and a page may end between them.
    for n, at in enumerate([now - 50, now - 40, now - 40, now - 40, now - 30, now - 20, now - 10]):
        made.append(verification(f"ver_{n}", to=f"+861380013800{n}", now=at))
        await start(backend, f"ver_{n}", f"+861380013800{n}", at)
    for limit in (1, 2, 3, 7, 100):
        listed = await every_page(lambda after, limit: backend.store.list_verifications(None, None, after, limit, now),
                                  limit)  # fmt: skip
        assert [v.id for v in listed] == newest_first(made), limit
    assert await backend.store.list_verifications(None, None, Position(now - 40, "ver_2"), 2, now) == [
        await backend.store.get_verification("ver_1"),
        await backend.store.get_verification("ver_0"),
    ], "after a position: strictly after it, ties by id"


async def test_verifications_are_found_by_address_and_by_status_as_it_reads_now(backend):
    now = time.time()
    ada, bob = "+8613800138000", "+8613800138001"
    await start(backend, "ver_old", ada, now - 700)  # expired by now: stored pending still
    await start(backend, "ver_canceled", ada, now - 30)
    await backend.store.cancel_verification("ver_canceled", now - 30)
    await start(backend, "ver_approved", bob, now - 20)
    await backend.store.check_verification(Lookup(id="ver_approved"), lambda v: True, now - 20)
    await start(backend, "ver_pending", ada, now - 10)

    async def ids(to: str | None = None, status: Status | None = None, at: float = now) -> list[str]:
        return [v.id for v in await backend.store.list_verifications(to, status, None, 100, at)]

    assert await ids(ada) == ["ver_pending", "ver_canceled", "ver_old"]
    assert await ids(bob) == ["ver_approved"]
    assert await ids("+8613800138999") == []
    assert await ids(status=Status.PENDING) == ["ver_pending"]
    assert await ids(status=Status.EXPIRED) == ["ver_old"], "a pending one past its expiry reads expired"
    assert await ids(status=Status.CANCELED) == ["ver_canceled"]
    assert await ids(status=Status.APPROVED) == ["ver_approved"]
    assert await ids(status=Status.FAILED) == []
    assert await ids(ada, Status.EXPIRED) == ["ver_old"] and await ids(bob, Status.EXPIRED) == []
    assert await ids(status=Status.EXPIRED, at=now + 600) == ["ver_pending", "ver_old"]
    assert await ids(status=Status.PENDING, at=now + 600) == []
    [stored] = await backend.store.list_verifications(ada, Status.EXPIRED, None, 100, now)
    assert stored.status is Status.PENDING, "as stored: the caller settles what it shows"
    page = await backend.store.list_verifications(ada, None, None, 2, now)
    rest = await backend.store.list_verifications(ada, None, Position(page[-1].created_at, page[-1].id), 2, now)
    assert [v.id for v in page + rest] == ["ver_pending", "ver_canceled", "ver_old"]


# Subscribers.


def subscriber(id: str, at: float, topics: tuple[str, ...] = ("news",)) -> Subscriber:
    return Subscriber(id, at, at, phone="+8613800138000", topics=topics, channel_order=(ChannelType.SMS,))


async def test_subscribers_come_newest_first_by_creation_and_by_topic(backend):
    now = time.time()
    made = [
        subscriber("ada", now - 50),
        subscriber("bob", now - 40, ("news", "sports")),
        subscriber("cy", now - 40, ("sports",)),
        subscriber("di", now - 40),
        subscriber("eve", now - 30, ()),
        subscriber("a:b", now - 20),
    ]
    for s in made:
        await backend.push.put_subscriber(s)
    for limit in (1, 2, 4, 100):
        listed = await every_page(lambda after, limit: backend.push.list_subscribers(None, after, limit), limit)
        assert [s.id for s in listed] == newest_first(made), limit
        news = await every_page(lambda after, limit: backend.push.list_subscribers("news", after, limit), limit)
        assert [s.id for s in news] == ["a:b", "di", "bob", "ada"], limit
    assert [s.id for s in await backend.push.list_subscribers("sports", None, 100)] == ["cy", "bob"]
    assert await backend.push.list_subscribers("nobody", None, 100) == []

    # A replacement keeps its place (its creation) and moves it between topics; a deletion takes it out.
    await backend.push.put_subscriber(replace(subscriber("ada", now, ("sports",)), created_at=now))
    assert [s.id for s in await backend.push.list_subscribers(None, None, 100)][-1] == "ada"
    assert [s.id for s in await backend.push.list_subscribers("sports", None, 100)] == ["cy", "bob", "ada"]
    assert [s.id for s in await backend.push.list_subscribers("news", None, 100)] == ["a:b", "di", "bob"]
    assert await backend.push.delete_subscriber("bob")
    assert "bob" not in [s.id for s in await backend.push.list_subscribers(None, None, 100)]
    assert [s.id for s in await backend.push.list_subscribers("sports", None, 100)] == ["cy", "ada"]
    [found] = await backend.push.list_subscribers("news", Position(now - 20, "a:b"), 1)
    assert found == await backend.push.get_subscriber("di"), "the whole subscriber, as get reads it"


# Messages.


def plan(message: Message, subscribers: list[Subscriber]) -> tuple[Message, list[Delivery], list[Job]]:
    deliveries = fan_out(message, subscribers, lambda m, n: f"dlv_{m}.{n}", message.created_at)
    jobs = [Job(d.id, "delivery", message.id, "sms") for d in deliveries if d.channel is ChannelType.SMS]
    return replace(message, recipients=len(subscribers)), deliveries, jobs


async def send(backend: Backend, id: str, to: list[str], at: float) -> None:
    message = Message(id, None, "x", None, "normal", at, at + 600, channels=SMS_ONLY)
    await backend.push.create_message(message, to, plan)


async def test_messages_come_newest_first_with_their_counts_and_by_status(backend):
    now = time.time()
    for id in ("a", "b"):
        await backend.push.put_subscriber(subscriber(id, now - 100))
    await send(backend, "msg_nobody", [], now - 40)  # no recipients: nothing queued, so done
    await send(backend, "msg_one", ["a"], now - 30)
    await send(backend, "msg_both", ["a", "b"], now - 30)
    await send(backend, "msg_last", ["b"], now - 10)
    leased = await backend.queue.lease("sms", 10, time.time(), lease_for=30)
    settled = [next(job for job in leased if job.ref == ref) for ref in ("msg_both", "msg_last")]
    await backend.queue.settle([(job, Ack(), Attempt(job, "sms", "ok", None, now)) for job in settled], now)

    expected = ["msg_last", "msg_one", "msg_both", "msg_nobody"]
    for limit in (1, 3, 100):
        listed = await every_page(lambda after, limit: backend.push.list_messages(None, after, limit), limit)
        assert [m.id for m, _ in listed] == expected, limit
        for message, counts in listed:
            assert (message, counts) == await backend.push.get_message(message.id)

    async def ids(status: MessageStatus) -> list[str]:
        return [m.id for m, _ in await backend.push.list_messages(status, None, 100)]

    assert await ids(MessageStatus.DONE) == ["msg_last", "msg_nobody"]
    assert await ids(MessageStatus.SENDING) == ["msg_both"], "one delivered, one queued"
    assert await ids(MessageStatus.QUEUED) == ["msg_one"]
    [(both, counts)] = await backend.push.list_messages(MessageStatus.SENDING, Position(now - 20, "msg_x"), 1)
    assert both.id == "msg_both" and (counts.queued, counts.delivered) == (1, 1)
