"""Aliyun dysms against its emulator: the signature (checked on a published vector and recomputed here from the
documented recipe), the emulator's own checks, and how dysms codes are read."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import uuid
from urllib.parse import quote

import pytest

from tidings.core.types import Delivered, OutboundMessage, Permanent, Transient
from tidings.outbound.client import Response
from tidings.providers import aliyun
from tidings.providers.aliyun import Aliyun
from tidings.testing import aliyun as emulator

KEY_ID, KEY_SECRET = "key-id", "key-secret"
TEMPLATES = {
    "SMS_1": "您的验证码为：${code}，请勿泄露于他人！",
    "SMS_2": "${app_name}验证码${code}，${minutes}分钟内有效",
}


def message(to: str = "+8613800138000") -> OutboundMessage:
    params = {"code": "123456", "app_name": "Acme", "minutes": "10"}
    return OutboundMessage(to=to, text="【Acme】您的验证码是123456", idempotency_key="snd_1.1", params=params)


def settings(url: str, **changes) -> dict:
    base = {"access_key_id": KEY_ID, "access_key_secret": KEY_SECRET, "sign_name": "Acme", "template_code": "SMS_1"}
    return {"base_url": url, **base, **changes}


@pytest.fixture
async def aliyun_app(emulate):
    async def start(**options):
        app = emulator.create_app(KEY_ID, KEY_SECRET, sign_names={"Acme"}, templates=TEMPLATES, **options)
        return await emulate(app)

    return start


def independent_signature(method: str, params: dict[str, str], secret: str) -> str:
    """The documented recipe, written out apart from the provider's code."""

    def encode(value: str) -> str:
        return quote(value, safe="").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")

    query = "&".join(f"{encode(k)}={encode(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}&{encode('/')}&{encode(query)}"
    return base64.b64encode(hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()).decode()


DOCUMENTED = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
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


def test_signature_matches_the_published_example():
    assert aliyun.sign("GET", DOCUMENTED, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert aliyun.sign("GET", DOCUMENTED, "testSecret") == independent_signature("GET", DOCUMENTED, "testSecret")


@pytest.mark.parametrize("value", ["a b", "a*b", "a~b", "a+b", "a/b:c", "验证码", '{"code":"1 2"}'])
def test_signature_encoding(value):
    params = {**DOCUMENTED, "TemplateParam": value}
    assert aliyun.percent_encode(value) == quote(value, safe="").replace("+", "%20").replace("%7E", "~")
    assert "%20" in aliyun.percent_encode(" ") and aliyun.percent_encode("*~") == "%2A~"
    assert aliyun.sign("POST", params, "s") == independent_signature("POST", params, "s")


@pytest.mark.parametrize(("to", "received_to"), [("+8613800138000", "13800138000"), ("+85291234567", "85291234567")])
async def test_delivered(aliyun_app, provider, to, received_to):
    sms = await aliyun_app()
    outcome = await provider(Aliyun, **settings(sms.url)).send(message(to))
    assert isinstance(outcome, Delivered) and outcome.provider_message_id.endswith("^0")
    [received] = sms.received
    assert (received.to, received.text, received.id) == (
        received_to,
        "【Acme】您的验证码为：123456，请勿泄露于他人！",
        "snd_1.1",
    )


async def test_template_params_are_chosen(aliyun_app, provider):
    sms = await aliyun_app()
    chosen = settings(sms.url, template_code="SMS_2", template_params=["code", "app_name", "minutes"])
    assert isinstance(await provider(Aliyun, **chosen).send(message()), Delivered)
    assert sms.received[0].text == "【Acme】Acme验证码123456，10分钟内有效"
    outcome = await provider(Aliyun, **settings(sms.url, template_code="SMS_2")).send(message())
    assert isinstance(outcome, Permanent) and outcome.error == "aliyun_isv.TEMPLATE_MISSING_PARAMETERS"


@pytest.mark.parametrize(
    ("changes", "to", "error"),
    [
        ({"access_key_secret": "wrong"}, "+8613800138000", "aliyun_SignatureDoesNotMatch"),
        ({"access_key_id": "nobody"}, "+8613800138000", "aliyun_InvalidAccessKeyId.NotFound"),
        ({}, "+1", "aliyun_isv.MOBILE_NUMBER_ILLEGAL"),
        ({"sign_name": "Other"}, "+8613800138000", "aliyun_isv.SMS_SIGNATURE_ILLEGAL"),
        ({"template_code": "SMS_9"}, "+8613800138000", "aliyun_isv.SMS_TEMPLATE_ILLEGAL"),
    ],
)
async def test_refusals_are_final(aliyun_app, provider, changes, to, error):
    sms = await aliyun_app()
    outcome = await provider(Aliyun, **settings(sms.url, **changes)).send(message(to))
    assert isinstance(outcome, Permanent) and outcome.error == error
    assert sms.received == []


async def test_flow_control_is_transient(aliyun_app, provider):
    throttled = await aliyun_app(failure_rate=1.0)
    outcome = await provider(Aliyun, **settings(throttled.url)).send(message())
    assert isinstance(outcome, Transient) and outcome.error == "aliyun_Throttling.User"
    per_number = await aliyun_app(same_number_interval=60)
    sender = provider(Aliyun, **settings(per_number.url))
    assert isinstance(await sender.send(message()), Delivered)
    outcome = await sender.send(message())
    assert outcome == Transient("aliyun_isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1", 60.0)


async def test_timeouts_and_refused_connections_are_transient(aliyun_app, provider, closed_url):
    slow = await aliyun_app(latency=2.0)
    assert (await provider(Aliyun, **settings(slow.url)).send(message())).error == "timeout"
    assert (await provider(Aliyun, **settings(closed_url)).send(message())).error == "connection_error"


def signed_request(**changes: str) -> dict[str, str]:
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
        "Timestamp": aliyun.timestamp(),
        "Version": "2017-05-25",
        **changes,
    }
    return {**params, "Signature": independent_signature("POST", params, KEY_SECRET)}


async def test_emulator_refuses_what_dysms_refuses(aliyun_app, http):
    sms = await aliyun_app()

    async def code(params: dict[str, str], method: str = "POST") -> str:
        if method == "GET":
            answer = await http.request("GET", sms.url + "/", params=params)
        else:
            answer = await http.request("POST", sms.url + "/", data=params)
        return answer.json()["Code"]

    tampered = {**signed_request(), "PhoneNumbers": "13900139000"}
    assert await code(tampered) == "SignatureDoesNotMatch"
    assert await code(signed_request(), method="GET") == "SignatureDoesNotMatch"  # signed for POST
    replayed = signed_request()
    assert await code(replayed) == "OK"
    assert await code(replayed) == "SignatureNonceUsed"
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await code(signed_request(Timestamp=old)) == "InvalidTimeStamp.Expired"
    assert await code(signed_request(TemplateParam="{not json")) == "isv.INVALID_JSON_PARAM"
    assert await code(signed_request(TemplateParam='{"code": 1}')) == "isv.INVALID_JSON_PARAM"
    missing = signed_request()
    del missing["SignName"]
    assert await code(missing) == "MissingSignName"
    assert len(sms.received) == 1


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, '{"Code": "OK", "Message": "OK", "BizId": "9^0"}', Delivered("9^0")),
        (200, '{"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发小时级流控Permits:5"}', 3600.0),
        (200, '{"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发天级流控Permits:10"}', 86400.0),
        (200, '{"Code": "isp.SYSTEM_ERROR", "Message": "isp.SYSTEM_ERROR"}', Transient),
        (503, '{"Code": "ServiceUnavailable", "Message": "busy"}', Transient),
        (200, '{"Code": "isv.AMOUNT_NOT_ENOUGH", "Message": "账户余额不足"}', Permanent),
        (200, '{"Code": "isv.BLACK_KEY_CONTROL_LIMIT", "Message": "黑名单管控"}', Permanent),
        (200, '{"Code": "isp.RAM_PERMISSION_DENY", "Message": "RAM权限DENY"}', Permanent),
        (502, "<html>bad gateway</html>", Transient),
        (200, "<html>?</html>", Transient),
    ],
)
def test_answers(status, body, expected):
    outcome = aliyun.read_answer(Response(status, {}, body.encode()))
    if isinstance(expected, float):
        assert isinstance(outcome, Transient) and outcome.retry_after == expected
    elif isinstance(expected, type):
        assert isinstance(outcome, expected)
    else:
        assert outcome == expected
