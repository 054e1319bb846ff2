"""Phones through the whole server: one message reaches a webhook, a browser, a live stream, an iPhone and an Android
phone, each delivery with its own status; dead tokens leave their subscriber and are reported to
``push.feedback_url``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import ROOT_KEY
from tests.helpers import eventually, finished, next_event
from tests.push.conftest import SECRET
from tidings.services.feedback import feedback_secret
from tidings.testing import apns, fcm, webpush

IPHONE = "a1" * 32
ANDROID = "android-token:" + "b" * 140
KEY = ec.generate_private_key(ec.SECP256R1())
PEM = KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()


@pytest.fixture
async def apple() -> AsyncIterator[apns.Apns]:
    service = apns.Apns(team_id="TEAM", key_id="KEY", public_key=KEY.public_key(), topic="com.example.app")
    await service.start()
    yield service
    await service.close()


@pytest.fixture
async def phones(run_app, receiver, apple):
    """The push services and a receiver (for a webhook channel and the feedback), and tidings configured for them."""
    google = fcm.create_app()
    google_url = await run_app(google)
    hooks = await receiver()
    config = {
        "providers": {
            "apns": {"base_url": apple.base_url, "sandbox_url": apple.base_url, "team_id": "TEAM", "key_id": "KEY",
                     "private_key": PEM, "topic": "com.example.app"},
            "fcm": {"base_url": google_url,
                    "service_account": json.dumps(google[fcm.FCM].service_account_for(google_url))},
        },
        "push": {"feedback_url": f"{hooks.url}/hook/feedback", "feedback_secret": SECRET},
    }  # fmt: skip
    return config, google, hooks


def mobile(token_apns: str = IPHONE, token_fcm: str = ANDROID) -> list[dict[str, Any]]:
    return [{"type": "apns", "token": token_apns}, {"type": "fcm", "token": token_fcm}]


async def test_one_message_reaches_every_kind_of_channel(serve, run_app, phones, apple):
    config, google, hooks = phones
    api = await serve(config)
    browser_service = webpush.create_app()
    browser_url = await run_app(browser_service)
    key = (await api.get("/v1/webpush/key", key=None)).body["public_key"]
    browser = browser_service[webpush.PUSH_SERVICE].subscribe(browser_url, application_server_key=key)
    channels = [
        hooks.channel("ada"),
        {"type": "webpush", "endpoint": browser.endpoint, "keys": {"p256dh": browser.p256dh, "auth": browser.auth}},
        *mobile(),
    ]
    put = await api.call("PUT", "/v1/subscribers/ada", {"channels": channels})
    assert put.status == 201, put.body
    assert put.body["channels"][2:] == [
        {"type": "apns", "token": IPHONE, "environment": "production"},
        {"type": "fcm", "token": ANDROID},
    ]
    headers = {"Authorization": f"Bearer {ROOT_KEY}"}
    async with api.session.get("/v1/subscribers/ada/stream", headers=headers) as stream:
        sent = await api.post(
            "/v1/messages",
            {"to": ["ada"], "title": "Hi", "body": "there", "data": {"order": 7}, "collapse_key": "orders",
             "badge": 1, "sound": "default", "priority": "high"},
        )  # fmt: skip
        assert sent.status == 202, sent.body
        assert json.loads((await next_event(stream)).split(b"data:", 1)[1])["title"] == "Hi"
    done = await finished(api, sent.body["id"])
    assert done["counts"] == {"queued": 0, "delivered": 5, "failed": 0, "expired": 0}
    deliveries = (await api.get(f"/v1/messages/{sent.body['id']}/deliveries")).body["deliveries"]
    assert sorted(d["channel"] for d in deliveries) == ["apns", "fcm", "stream", "webhook", "webpush"]
    assert all(d["status"] == "delivered" and d["attempts"] >= 1 for d in deliveries)
    [iphone] = apple.notifications
    assert iphone.payload == {"order": 7, "aps": {"alert": {"title": "Hi", "body": "there"}, "badge": 1,
                                                  "sound": "default"}}  # fmt: skip
    assert (iphone.headers["apns-priority"], iphone.headers["apns-collapse-id"]) == ("10", "orders")
    [android] = google[fcm.FCM].messages
    assert android["data"] == {"order": "7"} and android["android"]["priority"] == "HIGH"
    assert len(browser.messages) == 1 and len(hooks.by_path()["/hook/ada"]) == 1


async def test_dead_tokens_leave_the_subscriber_and_are_reported(serve, phones, apple):
    config, google, hooks = phones
    api = await serve(config)
    live = ("c3" * 32, "live-android:" + "c" * 100)
    body = {"channels": [*mobile(), *mobile(*live)]}
    assert (await api.call("PUT", "/v1/subscribers/ada", body)).status == 201
    apple.kill(IPHONE)
    google[fcm.FCM].kill(ANDROID)
    sent = await api.post("/v1/messages", {"to": ["ada"], "body": "still there?", "channels": ["apns", "fcm"]})
    done = await finished(api, sent.body["id"])
    assert done["counts"]["delivered"] == 2 and done["counts"]["failed"] == 2
    failed = (await api.get(f"/v1/messages/{sent.body['id']}/deliveries?status=failed")).body["deliveries"]
    assert sorted((d["channel"], d["last_error"], d["attempts"]) for d in failed) == [
        ("apns", "Unregistered", 1),
        ("fcm", "UNREGISTERED", 1),
    ], "never retried"
    channels = (await api.get("/v1/subscribers/ada")).body["channels"]
    assert [c["token"] for c in channels] == list(live)

    await eventually(lambda: len(hooks.by_path().get("/hook/feedback", [])) == 2)
    reports = hooks.by_path()["/hook/feedback"]
    assert all(report.verified for report in reports), "signed as a webhook is"
    events = sorted((json.loads(report.body) for report in reports), key=lambda e: e["channel"]["type"])
    assert [(e["type"], e["subscriber"], e["channel"], e["reason"]) for e in events] == [
        ("subscriber.channel_removed", "ada", {"type": "apns", "token": IPHONE}, "Unregistered"),
        ("subscriber.channel_removed", "ada", {"type": "fcm", "token": ANDROID}, "UNREGISTERED"),
    ]
    assert all(event["at"].endswith("Z") for event in events)
    assert {report.id for report in reports} == {"fbk_" + d["id"].removeprefix("dlv_") for d in failed}


async def test_a_message_reaches_phones_only_where_they_are_configured(serve):
    api = await serve()
    assert (await api.call("PUT", "/v1/subscribers/ada", {"channels": mobile()})).status == 201
    sent = await api.post("/v1/messages", {"to": ["ada"], "body": "hello"})
    deliveries = (await api.get(f"/v1/messages/{sent.body['id']}/deliveries")).body["deliveries"]
    assert [d["channel"] for d in deliveries] == ["stream"], "no APNs or FCM configured: nothing waits for them"
    asked = await api.post("/v1/messages", {"to": ["ada"], "body": "hello", "channels": ["apns"]})
    assert asked.status == 422 and asked.body["error"]["code"] == "channel_not_configured"


async def test_the_feedback_secret_is_readable_by_admins_and_derived_when_not_set(serve):
    api = await serve({"push": {"feedback_url": "http://127.0.0.1:9/feedback"}})
    answer = await api.get("/v1/push/feedback")
    assert answer.body["url"] == "http://127.0.0.1:9/feedback" and answer.body["secret"].startswith("whsec_")
    assert (await api.get("/v1/push/feedback", key=None)).status == 401


def test_every_node_derives_the_same_feedback_secret_unless_one_is_configured():
    assert feedback_secret(None, "server secret") == feedback_secret(None, "server secret")
    assert feedback_secret(None, "server secret") != feedback_secret(None, "another secret")
    assert feedback_secret(SECRET, "server secret") == SECRET


@pytest.mark.parametrize(
    ("channel", "field"),
    [
        ({"type": "apns", "token": "not hex"}, "token"),
        ({"type": "apns", "token": IPHONE, "environment": "staging"}, "environment"),
        ({"type": "fcm", "token": "has spaces in it"}, "token"),
        ({"type": "fcm", "token": ANDROID, "environment": "sandbox"}, "environment"),
    ],
)
async def test_device_tokens_are_checked_when_given(serve, channel, field):
    api = await serve()
    answer = await api.call("PUT", "/v1/subscribers/ada", {"channels": [channel]})
    assert answer.status == 400 and field in json.dumps(answer.body["error"])


async def test_a_token_listed_twice_is_refused_and_hex_is_kept_in_lower_case(serve):
    api = await serve()
    twice = await api.call("PUT", "/v1/subscribers/ada", {"channels": mobile() + mobile()[:1]})
    assert twice.status == 400 and "listed twice" in twice.body["error"]["message"]
    upper = await api.call("PUT", "/v1/subscribers/ada", {"channels": [{"type": "apns", "token": IPHONE.upper()}]})
    assert upper.body["channels"][0]["token"] == IPHONE
