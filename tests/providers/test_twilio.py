"""Twilio against its emulator: the request it builds, and how every documented answer is read."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tidings.core.types import Delivered, OutboundMessage, Permanent, Transient
from tidings.outbound.client import Response
from tidings.providers import twilio
from tidings.providers.twilio import Twilio
from tidings.testing import twilio as emulator

SID, TOKEN, SENDER = "AC" + "1" * 32, "token-1", "+15005550006"


def message(to: str = "+8613800138000", text: str = "Your Acme code is 123456") -> OutboundMessage:
    return OutboundMessage(to=to, text=text, idempotency_key="snd_1.1", params={"code": "123456"})


def settings(url: str, **changes: str) -> dict[str, str]:
    return {"base_url": url, "account_sid": SID, "auth_token": TOKEN, "from": SENDER, **changes}


@pytest.fixture
async def twilio_app(emulate):
    async def start(**options):
        return await emulate(emulator.create_app(account_sid=SID, auth_token=TOKEN, **options))

    return start


@pytest.mark.parametrize(
    ("changes", "to"),
    [({}, "+8613800138000"), ({"messaging_service_sid": "MG" + "2" * 32}, "+14155550100")],
)
async def test_delivered(twilio_app, provider, changes, to):
    sms = await twilio_app()
    outcome = await provider(Twilio, **settings(sms.url, **changes)).send(message(to=to))
    assert isinstance(outcome, Delivered) and outcome.provider_message_id.startswith("SM")
    [received] = sms.received
    assert (received.to, received.text, received.id) == (to, "Your Acme code is 123456", "snd_1.1")


@pytest.mark.parametrize(
    ("changes", "to", "text", "error"),
    [
        ({"auth_token": "wrong"}, "+8613800138000", "code 1", "twilio_20003"),
        ({"account_sid": "AC" + "9" * 32}, "+8613800138000", "code 1", "twilio_20003"),
        ({}, "+1", "code 1", "twilio_21211"),
        ({}, "8613800138000", "code 1", "twilio_21211"),
        ({"from": "not a sender!"}, "+8613800138000", "code 1", "twilio_21212"),
        ({}, "+8613800138000", "x" * 1601, "twilio_21617"),
    ],
)
async def test_refusals_are_final(twilio_app, provider, changes, to, text, error):
    sms = await twilio_app()
    outcome = await provider(Twilio, **settings(sms.url, **changes)).send(message(to=to, text=text))
    assert isinstance(outcome, Permanent) and outcome.error == error
    assert sms.received == []


async def test_too_many_requests_is_transient(twilio_app, provider):
    sms = await twilio_app(failure_rate=1.0)
    outcome = await provider(Twilio, **settings(sms.url)).send(message())
    assert outcome == Transient("twilio_20429", "Too Many Requests", 1.0)


async def test_timeouts_and_refused_connections_are_transient(twilio_app, provider, closed_url):
    slow = await twilio_app(latency=2.0)
    assert (await provider(Twilio, **settings(slow.url)).send(message())).error == "timeout"
    assert (await provider(Twilio, **settings(closed_url)).send(message())).error == "connection_error"


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (201, {}, b'{"sid": "SM1"}', Delivered("SM1")),
        (200, {}, b"not json", Delivered(None)),
        (
            400,
            {},
            b'{"code": 21614, "message": "not a mobile number"}',
            Permanent("twilio_21614", "not a mobile number"),
        ),
        (400, {}, b'{"code": 21610, "message": "unsubscribed"}', Permanent("twilio_21610", "unsubscribed")),
        (400, {}, b'{"code": 21408, "message": "region"}', Permanent("twilio_21408", "region")),
        (404, {}, b'{"code": 20404, "message": "not found"}', Permanent("twilio_20404", "not found")),
        (429, {}, b'{"code": 20429, "message": "busy"}', Transient("twilio_20429", "busy")),
        (500, {}, b'{"code": 20500, "message": "oops"}', Transient("twilio_20500", "oops")),
        (503, {"Retry-After": "7"}, b"<html>busy</html>", Transient("http_503", "<html>busy</html>", 7.0)),
    ],
)
def test_answers(status, headers, body, expected):
    assert twilio.read_answer(Response(status, headers, body)) == expected


def test_settings_need_a_sender_and_keep_the_token_secret():
    with pytest.raises(ValidationError, match="from"):
        Twilio.Settings.model_validate({"account_sid": SID, "auth_token": TOKEN})
    configured = Twilio(Twilio.Settings.model_validate(settings("http://127.0.0.1")), None)
    assert TOKEN not in repr(configured)
