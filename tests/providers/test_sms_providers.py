"""Each SMS provider against its emulator: what is sent, and how every documented answer is read."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

import pytest

from tidings.core.types import Delivered, OutboundMessage, Permanent, Transient
from tidings.providers import aliyun, twilio, yunpian
from tidings.providers.registry import PROVIDERS
from tidings.testing import aliyun as aliyun_emulator
from tidings.testing import twilio as twilio_emulator
from tidings.testing import yunpian as yunpian_emulator
from tidings.testing.emulator import EMULATOR

SID, TOKEN = "AC" + "1" * 32, "token-1"
KEY_ID, KEY_SECRET = "key-id", "key-secret"


def message(to: str = "+8613800138000", text: str = "【Acme】您的验证码是123456") -> OutboundMessage:
    return OutboundMessage(to=to, text=text, idempotency_key="snd_1.1", params={"code": "123456", "app_name": "Acme"})


def make(name: str, url: str, http, **settings):
    cls = PROVIDERS[name]
    return cls(cls.Settings.model_validate({"base_url": url, **settings}), http)


PROVIDER_SETTINGS = {
    "twilio": {"account_sid": SID, "auth_token": TOKEN, "from": "+15005550006"},
    "yunpian": {"apikey": "k"},
    "aliyun": {"access_key_id": KEY_ID, "access_key_secret": KEY_SECRET, "sign_name": "Acme", "template_code": "SMS_1"},
}
EMULATORS = {
    "twilio": lambda **o: twilio_emulator.create_app(account_sid=SID, auth_token=TOKEN, **o),
    "yunpian": lambda **o: yunpian_emulator.create_app(apikey="k", **o),
    "aliyun": lambda **o: aliyun_emulator.create_app(access_key_id=KEY_ID, access_key_secret=KEY_SECRET, **o),
}


@pytest.mark.parametrize(
    ("name", "received_to"),
    [("twilio", "+8613800138000"), ("yunpian", "13800138000"), ("aliyun", "13800138000")],
)
async def test_delivered(run_app, http, name, received_to):
    app = EMULATORS[name]()
    provider = make(name, await run_app(app), http, **PROVIDER_SETTINGS[name])
    outcome = await provider.send(message())
    assert isinstance(outcome, Delivered) and outcome.provider_message_id
    [received] = app[EMULATOR].received
    assert received.to == received_to and "123456" in received.text
    assert received.id == "snd_1.1"


@pytest.mark.parametrize(
    ("name", "wrong", "error"),
    [
        ("twilio", {"auth_token": "wrong"}, "twilio_20003"),
        ("yunpian", {"apikey": "wrong"}, "yunpian_-1"),
        ("aliyun", {"access_key_secret": "wrong"}, "aliyun_SignatureDoesNotMatch"),
        ("aliyun", {"access_key_id": "nobody"}, "aliyun_InvalidAccessKeyId.NotFound"),
    ],
)
async def test_wrong_credentials_are_final(run_app, http, name, wrong, error):
    provider = make(name, await run_app(EMULATORS[name]()), http, **{**PROVIDER_SETTINGS[name], **wrong})
    outcome = await provider.send(message())
    assert isinstance(outcome, Permanent) and outcome.error == error


@pytest.mark.parametrize(
    ("name", "to", "error"),
    [
        ("twilio", "+1", "twilio_21211"),
        ("yunpian", "+1", "yunpian_2"),
        ("aliyun", "+1", "aliyun_isv.MOBILE_NUMBER_ILLEGAL"),
    ],
)
async def test_bad_numbers_are_final(run_app, http, name, to, error):
    provider = make(name, await run_app(EMULATORS[name]()), http, **PROVIDER_SETTINGS[name])
    outcome = await provider.send(message(to=to))
    assert isinstance(outcome, Permanent) and outcome.error == error


@pytest.mark.parametrize(
    ("name", "error", "retry_after"),
    [
        ("twilio", "twilio_20429", 1.0),
        ("yunpian", "yunpian_-50", None),
        ("aliyun", "aliyun_isv.BUSINESS_LIMIT_CONTROL", None),
    ],
)
async def test_rate_limits_and_system_errors_are_transient(run_app, http, name, error, retry_after):
    provider = make(name, await run_app(EMULATORS[name](failure_rate=1.0)), http, **PROVIDER_SETTINGS[name])
    outcome = await provider.send(message())
    assert isinstance(outcome, Transient) and outcome.error == error and outcome.retry_after == retry_after


@pytest.mark.parametrize("name", ["twilio", "yunpian", "aliyun"])
async def test_timeouts_and_refused_connections_are_transient(run_app, http, name):
    slow = make(name, await run_app(EMULATORS[name](latency=3.0)), http, **PROVIDER_SETTINGS[name])
    assert (await slow.send(message())).error == "timeout"
    closed = make(name, "http://127.0.0.1:9", http, **PROVIDER_SETTINGS[name])
    assert (await closed.send(message())).error == "connection_error"


async def test_yunpian_adds_the_signature(run_app, http):
    app = EMULATORS["yunpian"]()
    provider = make("yunpian", await run_app(app), http, apikey="k")
    outcome = await provider.send(message(text="Your code is 123456"))
    assert isinstance(outcome, Delivered)
    assert app[EMULATOR].received[0].text == "【Acme】Your code is 123456"


async def test_yunpian_number_frequency_limit_asks_to_wait(run_app, http):
    provider = make("yunpian", await run_app(EMULATORS["yunpian"](same_number_interval=60)), http, apikey="k")
    assert isinstance(await provider.send(message()), Delivered)
    outcome = await provider.send(message())
    assert isinstance(outcome, Transient) and outcome.error == "yunpian_33" and outcome.retry_after == 30.0


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (0, Delivered),
        (-5, Transient),
        (-50, Transient),
        (-53, Transient),
        (8, Transient),
        (9, Transient),
        (1, Permanent),
        (2, Permanent),
        (3, Permanent),
        (5, Permanent),
        (10, Permanent),
        (20, Permanent),
        (-1, Permanent),
        (-3, Permanent),
    ],
)
def test_yunpian_codes(code, kind):
    from tidings.providers.client import Response

    answer = Response(200 if code == 0 else 400, {}, f'{{"code": {code}, "msg": "m"}}'.encode())
    assert isinstance(yunpian.read_answer(answer), kind)


def test_aliyun_signature_matches_the_documented_algorithm():
    """Signature version 1.0, computed here independently from the documentation's recipe."""
    params = {
        "AccessKeyId": "testid",
        "Action": "SendSms",
        "Format": "XML",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }

    def encode(value: str) -> str:
        return quote(value, safe="").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")

    query = "&".join(f"{encode(k)}={encode(v)}" for k, v in sorted(params.items()))
    to_sign = "GET&%2F&" + encode(query)
    expected = base64.b64encode(hmac.new(b"testsecret&", to_sign.encode(), hashlib.sha1).digest()).decode()
    assert aliyun.sign("GET", params, "testsecret") == expected
    assert aliyun.string_to_sign("GET", params) == to_sign


async def test_aliyun_emulator_refuses_a_tampered_request(run_app, http):
    import datetime as dt
    import uuid

    url = await run_app(EMULATORS["aliyun"]())
    params = {
        "AccessKeyId": KEY_ID,
        "Action": "SendSms",
        "Format": "JSON",
        "PhoneNumbers": "13800138000",
        "SignName": "Acme",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": uuid.uuid4().hex,
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_1",
        "TemplateParam": '{"code":"1"}',
        "Timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Version": "2017-05-25",
    }
    params["Signature"] = aliyun.sign("POST", params, KEY_SECRET)
    params["PhoneNumbers"] = "13900139000"
    answer = await http.request("POST", url + "/", data=params)
    assert answer.json()["Code"] == "SignatureDoesNotMatch"


def test_twilio_reads_error_bodies():
    from tidings.providers.client import Response

    final = Response(400, {}, b'{"code": 21614, "message": "not a mobile number", "status": 400}')
    assert twilio.read_answer(final) == Permanent("twilio_21614", "not a mobile number")
    busy = Response(503, {"Retry-After": "7"}, b"<html>busy</html>")
    outcome = twilio.read_answer(busy)
    assert isinstance(outcome, Transient) and outcome.retry_after == 7.0


def test_secrets_do_not_print():
    provider = PROVIDERS["twilio"](PROVIDERS["twilio"].Settings.model_validate(PROVIDER_SETTINGS["twilio"]), None)
    assert TOKEN not in repr(provider)
    assert "123456" not in repr(message())
