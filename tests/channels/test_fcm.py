"""The FCM channel against the FCM emulator: the OAuth grant, the HTTP v1 message, and every answer's reading."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import google.auth.jwt
import pytest
from cryptography.hazmat.primitives import serialization

from tidings.channels.fcm import SCOPE, Fcm, FcmSettings, ServiceAccount
from tidings.core.push import MobileCall
from tidings.core.types import Delivered, Permanent, Transient
from tidings.outbound.client import HttpClient
from tidings.testing import fcm as emulator
from tidings.testing.emulator import EMULATOR

TOKEN = "fcm-token:" + "a" * 140


def call(token: str = TOKEN, **fields) -> MobileCall:
    defaults = {"title": "Hello", "body": "World", "data": None, "priority": "normal", "ttl": 3600}
    return MobileCall(id="dlv_1.0", token=token, environment="production", **{**defaults, **fields})


@pytest.fixture(scope="module")
def account() -> dict:
    """One key for the module: making an RSA key takes a while."""
    return emulator.make_service_account("http://placeholder/token")


@pytest.fixture
async def service(run_app, account):
    app = emulator.create_app(service_account=account)
    base = await run_app(app)
    return app, base


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient(timeout=2.0)
    yield client
    await client.close()


def channel(app, base: str, http: HttpClient, **account_changes) -> Fcm:
    info = {**app[emulator.FCM].service_account_for(base), **account_changes}
    return Fcm(FcmSettings(base_url=base, service_account=json.dumps(info)), http)


async def test_a_notification_goes_as_an_fcm_v1_message(service, http):
    app, base = service
    fcm = channel(app, base, http)
    data = {"k": "v", "n": 3, "nested": {"a": [1, 2]}}
    outcome = await fcm.send(call(data=data, priority="high", collapse_key="news", sound="default", badge=4))
    assert isinstance(outcome, Delivered) and outcome.provider_message_id.startswith("projects/tidings-test/messages/")
    [sent] = app[emulator.FCM].messages
    assert sent == {
        "token": TOKEN,
        "notification": {"title": "Hello", "body": "World"},
        "data": {"k": "v", "n": "3", "nested": '{"a":[1,2]}'},
        "android": {"priority": "HIGH", "ttl": "3600s", "collapse_key": "news", "notification": {"sound": "default"}},
    }


async def test_one_access_token_serves_every_send_until_it_nears_expiry(service, http):
    app, base = service
    fcm = channel(app, base, http)
    outcomes = await asyncio.gather(*(fcm.send(call()) for _ in range(50)))
    assert all(isinstance(outcome, Delivered) for outcome in outcomes)
    assert app[emulator.FCM].tokens_issued == 1, "fifty sends waiting for a token fetch it once"
    app[emulator.FCM].access_tokens.clear()  # Google forgot it (revoked, or expired early): 401, a new one, sent
    assert isinstance(await fcm.send(call()), Delivered)
    assert app[emulator.FCM].tokens_issued == 2


async def test_a_token_about_to_expire_is_replaced_before_use(run_app, account, http):
    app = emulator.create_app(service_account=account, token_ttl=61)  # kept until a minute before: one second
    base = await run_app(app)
    fcm = channel(app, base, http)
    assert isinstance(await fcm.send(call()), Delivered)
    await asyncio.sleep(1.1)
    assert isinstance(await fcm.send(call()), Delivered)
    assert app[emulator.FCM].tokens_issued == 2


def test_the_grant_assertion_passes_google_auths_own_checks(account):
    """google-auth is what Google's own client libraries verify these JWTs with."""
    token_uri = "http://127.0.0.1:1/token"
    assertion = ServiceAccount({**account, "token_uri": token_uri}).assertion(time.time())
    public = serialization.load_pem_private_key(account["private_key"].encode(), None).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = google.auth.jwt.decode(assertion, certs={account["private_key_id"]: pem.decode()}, audience=token_uri)
    assert claims["iss"] == account["client_email"] and claims["scope"] == SCOPE
    assert claims["exp"] - claims["iat"] == 3600


@pytest.mark.parametrize(
    ("token", "error", "final"),
    [
        ("dead", "UNREGISTERED", True),
        ("not a token!", "INVALID_ARGUMENT", True),
        (emulator.THIRD_PARTY_AUTH_ERROR + "x", "THIRD_PARTY_AUTH_ERROR", True),
    ],
)
async def test_refusals_of_the_token_are_final_and_named(service, http, token, error, final):
    app, base = service
    app[emulator.FCM].kill("dead")
    outcome = await channel(app, base, http).send(call(token=token))
    assert isinstance(outcome, Permanent) and outcome.error == error
    if error == "THIRD_PARTY_AUTH_ERROR":
        assert "APNs key" in outcome.message, "an operator is told what to fix"


async def test_a_bad_message_is_not_a_dead_token(service, http):
    """FCM's INVALID_ARGUMENT about anything but the token must not cost the subscriber its token."""
    app, base = service
    outcome = await channel(app, base, http).send(call(data={"k": "v" * 5000}))
    assert outcome == Permanent("payload_too_large", "the message is over 4096 bytes")


async def test_quota_and_outages_are_retried_honouring_retry_after(run_app, account, http):
    app = emulator.create_app(service_account=account, fail_first=2, retry_after=7)
    base = await run_app(app)
    fcm = channel(app, base, http)
    first, second, third = [await fcm.send(call()) for _ in range(3)]
    assert first == Transient("QUOTA_EXCEEDED", first.message, 7.0)
    assert isinstance(second, Transient) and second.error == "UNAVAILABLE"
    assert isinstance(third, Delivered)
    app[EMULATOR].outage(5)
    assert (await fcm.send(call())).error == "UNAVAILABLE"


async def test_a_token_of_another_project_says_so(service, http):
    app, base = service
    outcome = await channel(app, base, http, project_id="another-project").send(call())
    assert isinstance(outcome, Permanent) and outcome.error == "SENDER_ID_MISMATCH"
    assert "service_account" in outcome.message


async def test_a_key_google_refuses_fails_the_sends_for_good(service, http):
    app, base = service
    other = emulator.make_service_account("http://placeholder/token")
    fcm = channel(app, base, http, private_key=other["private_key"])
    outcome = await fcm.send(call())
    assert isinstance(outcome, Permanent) and outcome.error == "invalid_grant"


async def test_a_token_endpoint_that_is_down_is_worth_retrying(http, account):
    info = {**account, "token_uri": "http://127.0.0.1:9/token"}  # nothing listens on the discard port
    fcm = Fcm(FcmSettings(base_url="http://127.0.0.1:9", service_account=json.dumps(info)), http)
    outcome = await fcm.send(call())
    assert isinstance(outcome, Transient) and outcome.error == "connection_error"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "give service_account_file"),
        ({"service_account": "{", "service_account_file": None}, "not JSON"),
        ({"service_account": '{"project_id": "p"}'}, "lacks client_email, private_key, token_uri"),
        ({"service_account_file": "/nonexistent/sa.json"}, "cannot read"),
    ],
)
def test_a_service_account_that_cannot_be_used_is_a_start_up_error(fields, message):
    with pytest.raises(ValueError, match=message):
        FcmSettings(**fields)
