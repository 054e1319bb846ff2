"""Twilio Verify v2's wire format, pinned over raw HTTP: form bodies and Basic auth in; field names, content types,
status codes, dates, sids and Twilio-shaped errors out, for every way a request can go wrong."""

from __future__ import annotations

import asyncio
import base64
import io
import re
from typing import Any

import aiohttp
import pytest

from tests.conftest import ROOT_KEY, merge
from tests.helpers import TEST_CODE, TEST_NUMBER
from tests.twilio.conftest import ACCOUNT, COMPAT, CONFIG, SERVICE

DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
BASE = f"/v2/Services/{SERVICE}"
VERIFICATION_FIELDS = [
    "sid", "service_sid", "account_sid", "to", "channel", "status", "valid", "date_created", "date_updated",
    "lookup", "amount", "payee", "send_code_attempts", "sna", "url",
]  # fmt: skip
CHECK_FIELDS = [
    "sid", "service_sid", "account_sid", "to", "channel", "status", "valid", "amount", "payee",
    "sna_attempts_error_codes", "date_created", "date_updated",
]  # fmt: skip


def basic(username: str = ACCOUNT, password: str = ROOT_KEY) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


class Twilio:
    """A caller speaking Twilio's wire format to tidings, as a hand-written client would."""

    def __init__(self, base_url: str) -> None:
        self.session = aiohttp.ClientSession(base_url)

    async def call(
        self, method: str, path: str, form: dict[str, str] | None = None, *, headers: dict[str, str] | None = None,
        data: Any = None,
    ) -> tuple[int, Any, Any]:  # fmt: skip
        sent = basic() if headers is None else headers
        async with self.session.request(method, path, data=form if data is None else data, headers=sent) as answer:
            body = await answer.json(content_type=None) if await answer.read() else None
            return answer.status, body, answer.headers


@pytest.fixture
async def twilio(serve):
    async def start(config: dict[str, Any] = CONFIG) -> tuple[Twilio, Any]:
        api = await serve(config)
        caller = Twilio(api.base_url)
        opened.append(caller)
        return caller, api

    opened: list[Twilio] = []
    yield start
    for caller in opened:
        await caller.session.close()


def assert_twilio_error(status: int, body: Any, headers: Any, want_status: int, want_code: int) -> None:
    assert status == want_status, body
    assert headers["Content-Type"] == "application/json"
    assert list(body) == ["code", "message", "more_info", "status"]
    assert body["code"] == want_code and body["status"] == want_status
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{want_code}"
    assert isinstance(body["message"], str) and body["message"]


async def test_the_verification_resource(twilio):
    caller, api = await twilio()
    status, body, headers = await caller.call("POST", f"{BASE}/Verifications", {"To": TEST_NUMBER, "Channel": "sms"})
    assert status == 201 and headers["Content-Type"] == "application/json"
    assert list(body) == VERIFICATION_FIELDS
    sid = body["sid"]
    assert re.fullmatch(r"VE[0-9a-f]{32}", sid)
    assert body["service_sid"] == SERVICE and body["account_sid"] == ACCOUNT
    assert (body["to"], body["channel"], body["status"], body["valid"]) == (TEST_NUMBER, "sms", "pending", False)
    assert DATE.fullmatch(body["date_created"]) and DATE.fullmatch(body["date_updated"])
    assert (body["lookup"], body["amount"], body["payee"], body["sna"]) == ({}, None, None, None)
    [attempt] = body["send_code_attempts"]
    assert list(attempt) == ["time", "channel", "attempt_sid"]
    assert attempt["time"] == body["date_created"] and attempt["channel"] == "SMS"
    assert re.fullmatch(r"VL[0-9a-f]{32}", attempt["attempt_sid"])
    assert body["url"] == f"{api.base_url.rstrip('/')}{BASE}/Verifications/{sid}"
    assert "X-Request-Id" in headers

    status, fetched, headers = await caller.call("GET", f"{BASE}/Verifications/{sid}")
    assert status == 200 and fetched == body
    upper = "VE" + sid[2:].upper()  # Twilio's hex is of either case
    assert (await caller.call("GET", f"{BASE}/Verifications/{upper}"))[1]["sid"] == sid

    native = await api.get(f"/v1/verifications/ver_{sid[2:]}")
    assert native.status == 200 and native.body["to"] == TEST_NUMBER


async def test_the_verification_check_resource(twilio):
    caller, _ = await twilio()
    sid = (await caller.call("POST", f"{BASE}/Verifications", {"To": TEST_NUMBER, "Channel": "sms"}))[1]["sid"]
    status, wrong, headers = await caller.call("POST", f"{BASE}/VerificationCheck", {"To": TEST_NUMBER, "Code": "0000"})
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert list(wrong) == CHECK_FIELDS
    assert (wrong["sid"], wrong["status"], wrong["valid"]) == (sid, "pending", False)
    assert wrong["sna_attempts_error_codes"] == [] and DATE.fullmatch(wrong["date_updated"])

    status, right, _ = await caller.call(
        "POST", f"{BASE}/VerificationCheck", {"VerificationSid": sid, "Code": TEST_CODE}
    )
    assert status == 200 and (right["status"], right["valid"]) == ("approved", True)
    for method, path, form in [
        ("POST", "VerificationCheck", {"VerificationSid": sid, "Code": TEST_CODE}),
        ("GET", f"Verifications/{sid}", None),
        ("POST", f"Verifications/{sid}", {"Status": "canceled"}),
    ]:
        status, body, headers = await caller.call(method, f"{BASE}/{path}", form)
        assert_twilio_error(status, body, headers, 404, 20404)
        assert body["message"] == f"The requested resource /Services/{SERVICE}/{path} was not found"


async def test_cancel_and_approve(twilio):
    caller, _ = await twilio()
    sid = (await caller.call("POST", f"{BASE}/Verifications", {"To": TEST_NUMBER, "Channel": "sms"}))[1]["sid"]
    status, body, _ = await caller.call("POST", f"{BASE}/Verifications/{sid}", {"Status": "canceled"})
    assert status == 200 and list(body) == VERIFICATION_FIELDS and body["status"] == "canceled"
    sid = (await caller.call("POST", f"{BASE}/Verifications", {"To": TEST_NUMBER, "Channel": "sms"}))[1]["sid"]
    status, body, _ = await caller.call("POST", f"{BASE}/Verifications/{sid}", {"Status": "approved"})
    assert status == 200 and (body["status"], body["valid"]) == ("approved", True)
    for form in ({"Status": "pending"}, {}):
        assert_twilio_error(*await caller.call("POST", f"{BASE}/Verifications/{sid}", form), 400, 60200)


async def test_authentication(twilio):
    caller, _ = await twilio()
    path, form = f"{BASE}/Verifications", {"To": TEST_NUMBER, "Channel": "sms"}
    for headers in [
        {},
        {"Authorization": f"Bearer {ROOT_KEY}"},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Basic " + base64.b64encode(ACCOUNT.encode()).decode()},
        basic(password="tk_wrong"),
        basic(username="AC" + "0" * 32),
        basic(password=""),
    ]:
        status, body, answer_headers = await caller.call("POST", path, form, headers=headers)
        assert_twilio_error(status, body, answer_headers, 401, 20003)
        assert answer_headers["WWW-Authenticate"] == 'Basic realm="Twilio API"'


async def test_a_key_without_the_send_scope(twilio):
    caller, api = await twilio()
    read_only = (await api.post("/v1/keys", {"name": "reader", "scopes": ["read"]})).body["key"]
    sender = (await api.post("/v1/keys", {"name": "sender", "scopes": ["send"]})).body["key"]
    path, form = f"{BASE}/Verifications", {"To": TEST_NUMBER, "Channel": "sms"}
    assert_twilio_error(*await caller.call("POST", path, form, headers=basic(password=read_only)), 401, 20003)
    assert (await caller.call("POST", path, form, headers=basic(password=sender)))[0] == 201


@pytest.mark.parametrize(
    ("form", "status", "code", "names"),
    [
        ({"Channel": "sms"}, 400, 60200, "To"),
        ({"To": TEST_NUMBER}, 400, 60200, "Channel"),
        ({"To": "+1555", "Channel": "sms"}, 400, 60200, "To"),
        ({"To": "not an address", "Channel": "email"}, 400, 60200, "To"),
        ({"To": TEST_NUMBER, "Channel": "fax"}, 400, 60200, "Channel"),
        ({"To": TEST_NUMBER, "Channel": "whatsapp"}, 400, 60223, "whatsapp"),
        ({"To": TEST_NUMBER, "Channel": "sms", "Locale": "not a locale"}, 400, 60200, "Locale"),
        ({"To": TEST_NUMBER, "Channel": "sms", "CustomFriendlyName": "Bank\nCall +44"}, 400, 60200,
         "CustomFriendlyName"),
        ({"To": TEST_NUMBER, "Channel": "sms", "DeviceIp": "300.1.1.1"}, 400, 60200, "DeviceIp"),
        ({"To": TEST_NUMBER, "Channel": "sms", "RiskCheck": "maybe"}, 400, 60200, "RiskCheck"),
        ({"To": TEST_NUMBER, "Channel": "sms", "RiskCheck": "disable"}, 403, 60204, "RiskCheck"),
        ({"To": TEST_NUMBER, "Channel": "sms", "CustomCode": "1234"}, 403, 60204, "CustomCode"),
        ({"To": TEST_NUMBER, "Channel": "sms", "Amount": "9.99"}, 403, 60204, "Amount"),
        ({"To": TEST_NUMBER, "Channel": "sms", "RateLimits": '{"k": "v"}'}, 403, 60204, "RateLimits"),
        ({"To": TEST_NUMBER, "Channel": "sms", "AppHash": "He42w354ol9"}, 403, 60204, "AppHash"),
        ({"To": TEST_NUMBER, "Channel": "email", "ChannelConfiguration": "{}"}, 403, 60204, "ChannelConfiguration"),
    ],
)  # fmt: skip
async def test_start_refusals(twilio, form, status, code, names):
    caller, _ = await twilio()
    answer = await caller.call("POST", f"{BASE}/Verifications", form)
    assert_twilio_error(*answer, status, code)
    assert names in answer[1]["message"]


async def test_parameters_twilio_does_not_know_are_ignored_and_known_ones_taken_once(twilio):
    caller, _ = await twilio()
    path = f"{BASE}/Verifications"
    form = {"To": TEST_NUMBER, "Channel": "sms", "Locale": "zh-CN", "RiskCheck": "enable", "DeviceIp": "2001:db8::1",
            "CustomFriendlyName": "Acme", "FavouriteColour": "blue"}  # fmt: skip
    assert (await caller.call("POST", path, form))[0] == 201
    twice = await caller.call("POST", path, data=f"To={TEST_NUMBER.replace('+', '%2B')}&To=%2B15005550007&Channel=sms")
    assert_twilio_error(*twice, 400, 60200)


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"Code": TEST_CODE}, 60200),
        ({"To": TEST_NUMBER}, 60200),
        ({"To": TEST_NUMBER, "Code": "123"}, 60200),
        ({"To": TEST_NUMBER, "Code": "12345678901"}, 60200),
        ({"VerificationSid": "VE123", "Code": TEST_CODE}, 60200),
        ({"To": "+1555", "Code": TEST_CODE}, 60200),
        ({"To": TEST_NUMBER, "Code": TEST_CODE, "Amount": "1"}, 60204),
        ({"To": "+447700900999", "Code": TEST_CODE}, 20404),
        ({"VerificationSid": "VE" + "0" * 32, "Code": TEST_CODE}, 20404),
    ],
)
async def test_check_refusals(twilio, form, code):
    caller, _ = await twilio()
    await caller.call("POST", f"{BASE}/Verifications", {"To": TEST_NUMBER, "Channel": "sms"})
    status = {60200: 400, 60204: 403, 20404: 404}[code]
    assert_twilio_error(*await caller.call("POST", f"{BASE}/VerificationCheck", form), status, code)


async def test_custom_code_where_the_operator_allows_it(twilio):
    caller, _ = await twilio(
        merge(COMPAT, {"twilio_compat": {"allow_custom_code": True}, "verify": {"resend_cooldown": 0}})
    )
    number, path = "+447700900555", f"{BASE}/Verifications"
    assert_twilio_error(*await caller.call("POST", path, {"To": number, "Channel": "sms", "CustomCode": "12"}), 400,
                        60200)  # fmt: skip
    started = await caller.call("POST", path, {"To": number, "Channel": "sms", "CustomCode": "A1b2C3"})
    assert started[0] == 201
    # A start while that one is pending resends it, with its first code, as every start does (docs/twilio.md).
    resent = await caller.call("POST", path, {"To": number, "Channel": "sms", "CustomCode": "999999"})
    assert resent[0] == 201 and resent[1]["sid"] == started[1]["sid"] and len(resent[1]["send_code_attempts"]) == 2
    status, body, _ = await caller.call("POST", f"{BASE}/VerificationCheck", {"To": number, "Code": "A1b2C3"})
    assert status == 200 and body["status"] == "approved" and body["sid"] == started[1]["sid"]


async def test_rate_limits_country_and_channel_map_to_twilio_codes(twilio):
    verify = {"allowed_countries": ["GB"], "resend_cooldown": 0, "email_providers": []}
    caller, _ = await twilio(merge(COMPAT, {"limits": {"per_number_hour": 1}, "verify": verify}))
    path, form = f"{BASE}/Verifications", {"To": "+447700900777", "Channel": "sms"}
    assert (await caller.call("POST", path, form))[0] == 201
    status, body, headers = await caller.call("POST", path, form)  # a resend, over the number's limit
    assert_twilio_error(status, body, headers, 429, 20429)
    assert int(headers["Retry-After"]) >= 1
    assert_twilio_error(*await caller.call("POST", path, {"To": "+8613800138000", "Channel": "sms"}), 403, 60605)
    email = await caller.call("POST", path, {"To": "ada@example.com", "Channel": "email"})
    assert_twilio_error(*email, 400, 60223)


async def test_paths_methods_and_bodies(twilio):
    caller, _ = await twilio()
    assert_twilio_error(*await caller.call("GET", "/v2/Services"), 404, 20404)
    assert_twilio_error(*await caller.call("PUT", "/v2/Nothing/Here", headers={}), 404, 20404)
    assert_twilio_error(*await caller.call("GET", "/v2", headers={}), 404, 20404)
    assert_twilio_error(*await caller.call("GET", f"{BASE}/Verifications/not-a-sid"), 404, 20404)
    assert_twilio_error(*await caller.call("GET", f"/v2/Services/VA{'0' * 32}/Verifications/VE{'0' * 32}"), 404,
                        20404)  # fmt: skip
    status, body, headers = await caller.call("GET", f"{BASE}/Verifications")
    assert_twilio_error(status, body, headers, 405, 20004)
    assert headers["Allow"] == "POST"
    assert_twilio_error(*await caller.call("DELETE", f"{BASE}/Verifications/VE{'0' * 32}"), 405, 20004)
    as_json = await caller.call(
        "POST", f"{BASE}/Verifications", data=b'{"To": "+15005550006", "Channel": "sms"}',
        headers={**basic(), "Content-Type": "application/json"},
    )  # fmt: skip
    assert_twilio_error(*as_json, 400, 60200)
    too_large = await caller.call("POST", f"{BASE}/Verifications", data=io.BytesIO(b"To=" + b"1" * (3 * 1024 * 1024)),
                                  headers={**basic(), "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert_twilio_error(*too_large, 413, 20413)
    not_utf8 = await caller.call("POST", f"{BASE}/Verifications", data=b"To=%ff&Channel=sms",
                                 headers={**basic(), "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert_twilio_error(*not_utf8, 400, 60200)
    status, _, headers = await caller.call("HEAD", f"{BASE}/Verifications/VE{'0' * 32}")
    assert status == 404 and headers["Content-Type"] == "application/json"


async def test_off_until_configured(serve):
    api = await serve()
    answer = await api.post(f"{BASE}/Verifications", key=None, headers=basic())
    assert answer.status == 404 and answer.error == "not_found", "without [twilio_compat], /v2 is not tidings'"
    assert not [path for path in (await api.get("/openapi.json", key=None)).body["paths"] if path.startswith("/v2")]


async def test_not_in_the_openapi_document(twilio):
    _, api = await twilio()
    document = (await api.get("/openapi.json", key=None)).body
    assert not [path for path in document["paths"] if path.startswith("/v2")]


async def test_a_revoked_key(twilio):
    caller, api = await twilio()
    created = (await api.post("/v1/keys", {"name": "app", "scopes": ["send"]})).body
    path, form = f"{BASE}/Verifications", {"To": TEST_NUMBER, "Channel": "sms"}
    assert (await caller.call("POST", path, form, headers=basic(password=created["key"])))[0] == 201
    assert (await api.call("DELETE", f"/v1/keys/{created['id']}")).status in (200, 204)
    assert_twilio_error(*await caller.call("POST", path, form, headers=basic(password=created["key"])), 401, 20003)


async def test_public_url_names_the_resource(twilio):
    caller, _ = await twilio(merge(CONFIG, {"twilio_compat": {"public_url": "https://verify.example.com/"}}))
    body = (await caller.call("POST", f"{BASE}/Verifications", {"To": TEST_NUMBER, "Channel": "sms"}))[1]
    assert body["url"] == f"https://verify.example.com{BASE}/Verifications/{body['sid']}"


async def test_a_body_that_does_not_arrive(twilio):
    _, api = await twilio(merge(CONFIG, {"body_timeout": 0.2}))
    host, port = api.base_url.removeprefix("http://").rstrip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"POST {BASE}/Verifications HTTP/1.1\r\nHost: x\r\nAuthorization: {basic()['Authorization']}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nTo=%2B1"
    )
    writer.write(head.encode())
    answer = await asyncio.wait_for(reader.read(), 5)  # answered, then the connection is closed
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ") and b'"code":20408' in answer
