"""The messages service: a message fans out into deliveries and their jobs in one step; a leased delivery job
becomes the call its channel makes, or a reason not to make it."""

from __future__ import annotations

import json
import time

import pytest

from tidings.core.outcomes import Drop
from tidings.core.push import ChannelType, MessageStatus, WebhookCall
from tidings.core.settings import Settings
from tidings.core.types import OutboundMessage
from tidings.errors import InvalidInput, NotFound
from tidings.services.messages import MessageInput, Messages
from tidings.services.subscribers import SubscriberInput, Subscribers, WebhookInput

HOOK = "https://8.8.8.8/in"
"""Checked, never called: the service only prepares what the webhook channel sends."""


@pytest.fixture
async def services(backend, sealer) -> tuple[Messages, Subscribers]:
    settings = Settings.model_validate({"verify": {"sms_providers": ["yunpian", "twilio"]}})
    people = Subscribers(backend.push, sealer, allow_private=False, region=None)
    hook = (WebhookInput(HOOK),)
    given = SubscriberInput(phone="+447700900123", webhooks=hook, channel_order=(ChannelType.WEBHOOK,))
    await people.put("ada", given)
    return Messages(settings, backend.push, people), people


def message(**fields) -> MessageInput:
    return MessageInput(**{"to": ["ada"], "topic": None, "title": "Hi", "body": "there", "data": None,
                           "channels": None, **fields})  # fmt: skip


async def test_a_message_reaches_every_channel_and_its_jobs_carry_their_rules(services, backend):
    messages, _ = services
    sent, unknown = await messages.send(message(to=["ada", "nobody"]))
    assert sent.recipients == 1 and unknown == ["nobody"]
    _, counts = await messages.get(sent.id)
    assert counts.queued == 3, "the stream, the webhook, the phone"
    [sms] = await backend.queue.lease("yunpian", 10, time.time(), 30)
    assert sms.payload["chain"] == ["yunpian", "twilio"] and sms.payload["max_attempts"] == 10
    [hook] = await backend.queue.lease("webhook", 10, time.time(), 30)
    assert "chain" not in hook.payload, "one webhook lane: nothing to fail over to"


async def test_a_leased_job_becomes_its_channel_call(services, backend):
    messages, people = services
    sent, _ = await messages.send(message(data={"k": "v"}))
    [hook] = await backend.queue.lease("webhook", 10, time.time(), 30)
    [sms] = await backend.queue.lease("yunpian", 10, time.time(), 30)
    [call] = await messages.prepare([hook], time.time())
    assert isinstance(call, WebhookCall) and call.id == hook.id and call.url == HOOK
    assert call.secret == (await people.get("ada")).webhooks[0].secret, "signed with the secret, unsealed"
    assert json.loads(call.body) | {"subscriber_id": "ada"} == json.loads(call.body)
    [text] = await messages.prepare([sms], time.time())
    assert isinstance(text, OutboundMessage) and text.text == "Hi: there" and text.idempotency_key == sms.id
    [gone] = await messages.prepare([sms], sent.expires_at + 1)
    assert gone == Drop("expired", failed=False)


async def test_what_cannot_be_sent_is_refused(services):
    messages, _ = services
    with pytest.raises(InvalidInput):
        await messages.send(message(send_at=time.time() + 400 * 86400))
    with pytest.raises(NotFound):
        await messages.get("msg_" + "0" * 32)
    assert await messages.retry((await messages.send(message()))[0].id) == 0, "nothing failed yet"


async def test_a_large_topic_is_answered_first_and_its_deliveries_written_once(backend, sealer):
    """Beyond ``push.fanout_after`` subscribers, the message is accepted with a ``fanout`` job and no deliveries;
    the job writes them, and running it again (after a crash kept it from being settled) writes nothing more."""
    settings = Settings.model_validate({"push": {"fanout_after": 2}})
    people = Subscribers(backend.push, sealer, allow_private=False, region=None)
    for name in ("a", "b", "c"):
        await people.put(name, SubscriberInput(topics=("big",)))
    messages = Messages(settings, backend.push, people)
    sent, _ = await messages.send(message(to=None, topic="big", channels=[ChannelType.STREAM]))
    assert (sent.recipients, sent.expanding) == (3, True)
    stored, counts = await messages.get(sent.id)
    assert stored.expanding and counts.queued == 0
    queued = await backend.push.list_messages(MessageStatus.QUEUED, None, 10)
    assert [m.id for m, _ in queued] == [sent.id], "listed as queued while its deliveries are not written"
    assert await backend.push.list_messages(MessageStatus.DONE, None, 10) == []
    [job] = await backend.queue.lease("fanout", 10, time.time(), lease_for=30)
    assert (job.kind, job.ref) == ("fanout", sent.id)
    await messages.expand(sent.id)
    await messages.expand(sent.id)
    stored, counts = await messages.get(sent.id)
    assert not stored.expanding and stored.recipients == 3 and counts.queued == 3
    rows = await backend.push.list_deliveries(sent.id, None, 0, 100)
    assert sorted(d.subscriber_id for _, d in rows) == ["a", "b", "c"]


async def test_a_topic_within_the_limit_is_written_with_the_message(services):
    messages, people = services
    await people.put("bob", SubscriberInput(topics=("small",)))
    sent, _ = await messages.send(message(to=None, topic="small", channels=[ChannelType.STREAM]))
    assert not sent.expanding and sent.recipients == 1
