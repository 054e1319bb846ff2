"""Web Push against the push service emulator: encryption the browser can undo, VAPID the service accepts, and the
service's answers read as outcomes."""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid.jwt import sign

from tests.conftest import free_port
from tidings.channels import webpush
from tidings.channels.webpush import GONE, WebPush, application_server_key, vapid_key
from tidings.core import b64
from tidings.core.push import PushCall
from tidings.core.types import Delivered, Permanent, Transient
from tidings.outbound.client import HttpClient
from tidings.testing import webpush as emulator
from tidings.testing.emulator import EMULATOR, Emulator
from tidings.testing.webpush import PUSH_SERVICE, BrowserSubscription, PushService

KEY = vapid_key("test-secret")
SUBJECT = "mailto:ops@example.com"


@dataclass
class Service:
    url: str
    push: PushService
    state: Emulator

    def subscribe(self, bound: bool = True) -> BrowserSubscription:
        return self.push.subscribe(self.url, application_server_key(KEY) if bound else None)


@pytest.fixture
def service(run_app):
    async def start(**options: Any) -> Service:
        app = emulator.create_app(**options)
        return Service(await run_app(app), app[PUSH_SERVICE], app[EMULATOR])

    return start


def call(subscription: BrowserSubscription, payload: bytes = b'{"title": "Hello"}', **fields: Any) -> PushCall:
    keys = {"endpoint": subscription.endpoint, "p256dh": subscription.p256dh, "auth": subscription.auth}
    return PushCall(id="dlv_1", payload=payload, **{**keys, **fields})


def padded(text: str) -> str:
    return text + "=" * (-len(text) % 4)


@pytest.mark.parametrize("pad", [False, True])
async def test_delivered_and_decrypted_by_the_browser(service, http, pad):
    push = await service()
    browser = push.subscribe()
    payload = json.dumps({"title": "Café", "body": "x" * 3000}).encode()
    keys = {"p256dh": padded(browser.p256dh), "auth": padded(browser.auth)} if pad else {}
    outcome = await WebPush(http, KEY, SUBJECT).send(call(browser, payload, urgency="high", **keys))
    assert isinstance(outcome, Delivered)
    assert outcome.provider_message_id and outcome.provider_message_id.startswith(f"{push.url}/m/")
    assert browser.messages == [payload]
    [received] = push.state.received
    assert (received.to, received.text) == (browser.endpoint, payload.decode())


async def test_each_message_has_its_own_sender_key(service, http):
    push = await service()
    browser = push.subscribe()
    sender = WebPush(http, KEY, SUBJECT)
    bodies = [webpush.encrypt(call(browser)) for _ in range(2)]
    assert bodies[0][21:86] != bodies[1][21:86]  # the key id of aes128gcm is the sender's public key
    for _ in range(2):
        assert isinstance(await sender.send(call(browser)), Delivered)
    assert browser.messages == [b'{"title": "Hello"}'] * 2


def test_vapid_key_follows_the_secret():
    assert KEY.private_numbers() == vapid_key("test-secret").private_numbers()
    assert application_server_key(vapid_key("another-secret")) != application_server_key(KEY)
    public = base64.urlsafe_b64decode(padded(application_server_key(KEY)))
    assert len(public) == 65 and public[0] == 4
    assert "=" not in application_server_key(KEY)


async def test_subscription_gone(service, http):
    push = await service()
    sender = WebPush(http, KEY, SUBJECT)
    by_endpoint, by_token = push.subscribe(), push.subscribe()
    push.push.unsubscribe(by_endpoint.endpoint)
    push.push.unsubscribe(by_token.token)
    for browser in (by_endpoint, by_token):
        outcome = await sender.send(call(browser))
        assert isinstance(outcome, Permanent) and outcome.error == GONE
    unknown = call(by_token, endpoint=f"{push.url}/push/never-subscribed")
    outcome = await sender.send(unknown)
    assert isinstance(outcome, Permanent) and outcome.error == GONE
    assert push.state.received == []


async def test_rate_limited_is_transient(service, http):
    push = await service(fail_first=1, retry_after=7)
    browser = push.subscribe()
    sender = WebPush(http, KEY, SUBJECT)
    outcome = await sender.send(call(browser))
    assert isinstance(outcome, Transient) and (outcome.error, outcome.retry_after) == ("http_429", 7.0)
    assert isinstance(await sender.send(call(browser)), Delivered)


async def test_unreachable_push_service_is_transient(http):
    browser = PushService().subscribe(f"http://127.0.0.1:{free_port()}")
    outcome = await WebPush(http, KEY, SUBJECT).send(call(browser))
    assert isinstance(outcome, Transient) and outcome.error == "connection_error"


def not_on_curve() -> str:
    return b64.encode(b"\x04" + bytes(range(64)))


def compressed(browser: BrowserSubscription) -> str:
    point = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), base64.urlsafe_b64decode(padded(browser.p256dh))
    )
    return b64.encode(point.public_bytes(Encoding.X962, PublicFormat.CompressedPoint))


@pytest.mark.parametrize(
    "fields",
    [
        lambda b: {"p256dh": "not base64!"},
        lambda b: {"p256dh": "", "auth": ""},
        lambda b: {"p256dh": not_on_curve()},
        lambda b: {"p256dh": compressed(b)},
        lambda b: {"auth": b64.encode(os.urandom(8))},
        lambda b: {"auth": "ä" * 22},
        lambda b: {"endpoint": "not a url"},
        lambda b: {"endpoint": "ftp://push.example.com/x"},
    ],
)
async def test_bad_subscription_keys(service, http, fields):
    push = await service()
    browser = push.subscribe()
    outcome = await WebPush(http, KEY, SUBJECT).send(call(browser, **fields(browser)))
    assert isinstance(outcome, Permanent) and outcome.error == "invalid_subscription"
    assert push.state.requests == 0


async def test_too_large_is_not_sent(service, http):
    push = await service()
    outcome = await WebPush(http, KEY, SUBJECT).send(call(push.subscribe(), os.urandom(4096)))
    assert isinstance(outcome, Permanent) and outcome.error == "payload_too_large"
    assert push.state.requests == 0


async def test_vapid_header_signed_once_per_push_service(service, http, monkeypatch):
    signed: list[dict[str, Any]] = []

    def counting(claims: dict[str, Any], key: ec.EllipticCurvePrivateKey) -> str:
        signed.append(claims)
        return sign(claims, key)

    clock = SimpleNamespace(time=time.time)
    monkeypatch.setattr(webpush, "sign", counting)
    monkeypatch.setattr(webpush, "time", clock)
    first, second = await service(), await service()
    sender = WebPush(http, KEY, SUBJECT)
    for push in (first, first, second, first):
        assert isinstance(await sender.send(call(push.subscribe())), Delivered)
    assert [claims["aud"] for claims in signed] == [first.url, second.url]
    assert signed[0]["sub"] == SUBJECT and signed[0]["exp"] == pytest.approx(time.time() + 12 * 3600, abs=5)
    clock.time = lambda: time.time() + webpush.CACHE_SECONDS + 1
    assert isinstance(await sender.send(call(first.subscribe())), Delivered)
    assert len(signed) == 3


def test_subject_must_be_a_contact():
    with pytest.raises(ValueError, match="VAPID subject"):
        WebPush(HttpClient(), KEY, "ops@example.com")


# The emulator refuses what a push service refuses.


def vapid(aud: str, key: ec.EllipticCurvePrivateKey = KEY, k: str | None = None, **claims: Any) -> str:
    claims = {"aud": aud, "exp": int(time.time()) + 3600, "sub": SUBJECT, **claims}
    claims = {name: value for name, value in claims.items() if value is not None}
    return f"vapid t={sign(claims, key)}, k={k or application_server_key(key)}"


def headers(browser: BrowserSubscription, aud: str, **changes: str | None) -> dict[str, str]:
    sent = {"TTL": "60", "Content-Encoding": "aes128gcm", "Authorization": vapid(aud), **changes}
    return {name: value for name, value in sent.items() if value is not None}


def encrypted(browser: BrowserSubscription, payload: bytes = b"hi") -> bytes:
    return webpush.encrypt(call(browser, payload))


OTHER = ec.generate_private_key(ec.SECP256R1())
REFUSALS = [
    (401, lambda url: {"Authorization": None}),
    (401, lambda url: {"Authorization": "Bearer abc"}),
    (401, lambda url: {"Authorization": "vapid t=not.a.jwt, k=" + application_server_key(KEY)}),
    (401, lambda url: {"Authorization": vapid(url, key=OTHER, k=application_server_key(KEY))}),
    (403, lambda url: {"Authorization": vapid(url, key=OTHER)}),
    (403, lambda url: {"Authorization": vapid("https://push.example.net")}),
    (403, lambda url: {"Authorization": vapid(url.replace("127.0.0.1", "localhost"))}),
    (403, lambda url: {"Authorization": vapid(url, exp=int(time.time()) - 10)}),
    (403, lambda url: {"Authorization": vapid(url, exp=int(time.time()) + 25 * 3600)}),
    (403, lambda url: {"Authorization": vapid(url, sub="")}),
    (400, lambda url: {"TTL": None}),
    (400, lambda url: {"TTL": "soon"}),
    (400, lambda url: {"Content-Encoding": "aesgcm"}),
    (400, lambda url: {"Urgency": "urgent"}),
]


@pytest.mark.parametrize(("status", "changes"), REFUSALS)
async def test_emulator_refuses(service, status, changes):
    push = await service()
    browser = push.subscribe()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            browser.endpoint, data=encrypted(browser), headers=headers(browser, push.url, **changes(push.url))
        ) as answer,
    ):
        assert answer.status == status, await answer.text()
    assert browser.messages == [] and push.state.received == []


async def test_emulator_takes_the_rfc_examples_header_forms(service):
    push = await service()
    browser = push.subscribe(bound=False)
    compact = vapid(push.url, key=OTHER).replace(", k=", ",k=")
    async with aiohttp.ClientSession() as session:
        for authorization in (compact, vapid(push.url)):
            sent = headers(browser, push.url, Authorization=authorization, Topic="news")
            async with session.post(browser.endpoint, data=encrypted(browser), headers=sent) as answer:
                assert answer.status == 201 and answer.headers["Location"]
    assert [(r.to, r.text, r.id) for r in push.state.received] == [(browser.endpoint, "hi", "news")] * 2


@pytest.mark.parametrize(
    ("status", "body"),
    [(413, lambda b: os.urandom(4097)), (400, lambda b: os.urandom(200)), (400, lambda b: b"")],
)
async def test_emulator_refuses_body(service, status, body):
    push = await service()
    browser = push.subscribe()
    async with (
        aiohttp.ClientSession() as session,
        session.post(browser.endpoint, data=body(browser), headers=headers(browser, push.url)) as answer,
    ):
        assert answer.status == status


async def test_emulator_subscribe_over_http(service, http):
    push = await service()
    async with aiohttp.ClientSession() as session, session.post(f"{push.url}/_emulator/subscribe") as answer:
        subscription = await answer.json()
    sent = PushCall("dlv_1", subscription["endpoint"], **subscription["keys"], payload=b"over http")
    assert isinstance(await WebPush(http, KEY, SUBJECT).send(sent), Delivered)
    assert [r.text for r in push.state.received] == ["over http"]
