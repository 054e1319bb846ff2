"""Twilio's official Python library, unchanged, against a running tidings: the calls an app written for Twilio Verify
makes, and the exceptions it branches on. The library blocks, so it runs in a thread beside the server's loop."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from tests.conftest import ROOT_KEY
from tests.helpers import TEST_CODE, TEST_NUMBER
from tests.twilio.conftest import ACCOUNT, CONFIG, LIMITS, SERVICE, twilio_client

NUMBER = "+447700900123"


async def call(function: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(function, *args, **kwargs)


async def refused(function: Any, *args: Any, **kwargs: Any) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        await call(function, *args, **kwargs)
    return caught.value


async def test_start_check_fetch_cancel(serve):
    api = await serve(CONFIG)
    client, http = twilio_client(api.base_url)
    service = client.verify.v2.services(SERVICE)

    started = await call(service.verifications.create, to=TEST_NUMBER, channel="sms")
    assert re.fullmatch(r"VE[0-9a-f]{32}", started.sid)
    assert (started.to, started.channel, started.status, started.valid) == (TEST_NUMBER, "sms", "pending", False)
    assert (started.account_sid, started.service_sid) == (ACCOUNT, SERVICE)
    assert started.date_created is not None and started.date_created.tzinfo is not None
    assert started.send_code_attempts[0]["channel"] == "SMS"

    wrong = await call(service.verification_checks.create, to=TEST_NUMBER, code="000000")
    assert (wrong.sid, wrong.status, wrong.valid) == (started.sid, "pending", False)

    fetched = await call(service.verifications(started.sid).fetch)
    assert (fetched.sid, fetched.status, fetched.to) == (started.sid, "pending", TEST_NUMBER)

    right = await call(service.verification_checks.create, verification_sid=started.sid, code=TEST_CODE)
    assert (right.status, right.valid) == ("approved", True)

    gone = await refused(service.verifications(started.sid).fetch)
    assert (gone.status, gone.code) == (404, 20404)
    again = await refused(service.verification_checks.create, to=TEST_NUMBER, code=TEST_CODE)
    assert (again.status, again.code) == (404, 20404)

    second = await call(service.verifications.create, to=TEST_NUMBER, channel="sms")
    assert second.sid != started.sid
    canceled = await call(service.verifications(second.sid).update, status="canceled")
    assert (canceled.status, canceled.valid) == ("canceled", False)
    assert (await refused(service.verification_checks.create, to=TEST_NUMBER, code=TEST_CODE)).code == 20404

    # The same verification is tidings' own, on /v1.
    read = await api.get(f"/v1/verifications/ver_{second.sid[2:]}")
    assert read.status == 200 and read.body["status"] == "canceled"
    assert {urlsplit(url).hostname for _, url in http.sent} == {"127.0.0.1"}
    assert len(http.sent) == 9


async def test_approve_without_a_code(serve):
    api = await serve(CONFIG)
    client, _ = twilio_client(api.base_url)
    service = client.verify.v2.services(SERVICE)
    started = await call(service.verifications.create, to=TEST_NUMBER, channel="sms")
    approved = await call(service.verifications(started.sid).update, status="approved")
    assert (approved.status, approved.valid) == ("approved", True)
    assert (await refused(service.verifications(started.sid).update, status="canceled")).code == 20404
    assert (await api.get(f"/v1/verifications/ver_{started.sid[2:]}")).body["status"] == "approved"


async def test_max_check_attempts_and_max_sends(serve):
    api = await serve(LIMITS)
    client, _ = twilio_client(api.base_url)
    service = client.verify.v2.services(SERVICE)

    first = await call(service.verifications.create, to=NUMBER, channel="sms")
    resent = await call(service.verifications.create, to=NUMBER, channel="sms")
    assert resent.sid == first.sid and len(resent.send_code_attempts) == 2
    sends = await refused(service.verifications.create, to=NUMBER, channel="sms")
    assert (sends.status, sends.code) == (429, 60203)
    assert "Max send attempts reached" in sends.msg

    assert (await call(service.verification_checks.create, to=NUMBER, code="0000")).status == "pending"
    last = await call(service.verification_checks.create, to=NUMBER, code="0000")
    assert (last.status, last.valid) == ("max_attempts_reached", False)
    checks = await refused(service.verification_checks.create, to=NUMBER, code="0000")
    assert (checks.status, checks.code) == (429, 60202)


async def test_bad_number_and_bad_credentials(serve):
    api = await serve(CONFIG)
    client, _ = twilio_client(api.base_url)
    bad = await refused(client.verify.v2.services(SERVICE).verifications.create, to="+1555", channel="sms")
    assert (bad.status, bad.code) == (400, 60200)
    assert "Invalid parameter: To" in bad.msg

    wrong_key, _ = twilio_client(api.base_url, key="tk_not-a-key")
    denied = await refused(wrong_key.verify.v2.services(SERVICE).verifications.create, to=TEST_NUMBER, channel="sms")
    assert (denied.status, denied.code) == (401, 20003)
    wrong_account, _ = twilio_client(api.base_url, account="AC" + "0" * 32)
    denied = await refused(wrong_account.verify.v2.services(SERVICE).verifications(f"VE{'0' * 32}").fetch)
    assert (denied.status, denied.code) == (401, 20003)

    other_service = await refused(client.verify.v2.services("VA" + "0" * 32).verifications.create, to=TEST_NUMBER,
                                  channel="sms")  # fmt: skip
    assert (other_service.status, other_service.code) == (404, 20404)
    call_channel = await refused(client.verify.v2.services(SERVICE).verifications.create, to=TEST_NUMBER,
                                 channel="call")  # fmt: skip
    assert (call_channel.status, call_channel.code) == (400, 60223)


class Rewrite(TwilioHttpClient):
    """docs/twilio.md's other way: an HTTP client that sends every Twilio URL to tidings, whatever region or edge
    the client was given (they rename the host before the HTTP client sees it)."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.hostname.endswith(".twilio.com"), url
        url = self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        assert urlsplit(url).hostname == "127.0.0.1", url
        return super().request(method, url, *args, **kwargs)


async def test_a_rewriting_http_client_survives_a_region(serve):
    api = await serve(CONFIG)
    client = Client(ACCOUNT, ROOT_KEY, region="au1", edge="sydney", http_client=Rewrite(api.base_url))
    started = await call(client.verify.v2.services(SERVICE).verifications.create, to=TEST_NUMBER, channel="sms")
    assert started.status == "pending"


async def test_on_redis_too(serve, redis_url):
    """Approving without a code is the store's atomic check step: on Redis, a script after deciding in Python."""
    api = await serve({**LIMITS, "database": redis_url})
    client, _ = twilio_client(api.base_url)
    service = client.verify.v2.services(SERVICE)
    started = await call(service.verifications.create, to=NUMBER, channel="sms")
    assert (await call(service.verification_checks.create, verification_sid=started.sid, code="0000")).valid is False
    approved = await call(service.verifications(started.sid).update, status="approved")
    assert (approved.status, approved.valid) == ("approved", True)
    assert (await refused(service.verifications(started.sid).fetch)).code == 20404
    assert (await call(service.verifications.create, to=NUMBER, channel="sms")).sid != started.sid
