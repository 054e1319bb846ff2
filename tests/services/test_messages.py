"""The messages service: a message fans out into deliveries and their jobs in one step; a leased delivery job
becomes the call its channel makes, or a reason not to make it."""

from __future__ import annotations

import json
import time

import pytest

from tidings.core.outcomes import Drop
from tidings.core.push import ChannelType, WebhookCall
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
