"""Subscribers: where they can be reached, validated; secrets made, kept across replacement, never stored plain."""

from __future__ import annotations

import sqlite3

import pytest

from tidings.core.webhook_secrets import valid as valid_secret

HOOK = "http://127.0.0.1:9/hook"
PUSH = "http://127.0.0.1:9/push/x"
BAD_SECRET = {"type": "webhook", "url": HOOK, "secret": "nope"}
HOOK_AGAIN = "http://127.0.0.1:9/%68ook"
PUSH_CHANNEL = {"type": "webpush", "endpoint": PUSH, "keys": {"p256dh": "B" * 87, "auth": "BTBZMqHH6r4Tts7J_aSIgg"}}


async def test_put_get_delete(serve):
    api = await serve()
    body = {
        "name": "Ada",
        "locale": "en",
        "phone": "+447700900123",
        "email": "ada@example.com",
        "channels": [{"type": "webhook", "url": HOOK}],
        "topics": ["news", "news", "sports"],
    }
    created = await api.call("PUT", "/v1/subscribers/ada", body)
    assert created.status == 201, created.body
    [hook] = created.body["channels"]
    assert hook["type"] == "webhook" and valid_secret(hook["secret"])
    assert (created.body["phone"], created.body["email"]) == ("+447700900123", "ada@example.com")
    assert created.body["topics"] == ["news", "sports"]
    read = await api.get("/v1/subscribers/ada")
    assert read.status == 200 and read.body["channels"][0]["secret"] == hook["secret"]
    replaced = await api.call("PUT", "/v1/subscribers/ada", {**body, "name": "Ada L."})
    assert replaced.status == 200 and replaced.body["channels"][0]["secret"] == hook["secret"]
    assert replaced.body["created_at"] == created.body["created_at"]
    assert (await api.call("DELETE", "/v1/subscribers/ada")).status == 204
    missing = await api.get("/v1/subscribers/ada")
    assert missing.status == 404 and missing.error == "subscriber_not_found"
    assert (await api.call("DELETE", "/v1/subscribers/ada")).status == 404


async def test_secrets_are_sealed_at_rest(serve, tmp_path):
    api = await serve()
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    auth = "BTBZMqHH6r4Tts7J_aSIgg"
    await api.call(
        "PUT",
        "/v1/subscribers/bob",
        {
            "channels": [
                {"type": "webhook", "url": HOOK, "secret": secret},
                {
                    "type": "webpush",
                    "endpoint": "http://127.0.0.1:9/push/x",
                    "keys": {"p256dh": "B" * 87, "auth": auth},
                },
            ]
        },
    )
    raw = sqlite3.connect(tmp_path / "tidings.db").execute("SELECT record FROM subscribers").fetchone()[0]
    assert secret.removeprefix("whsec_") not in raw and auth not in raw
    read = await api.get("/v1/subscribers/bob")
    assert read.body["channels"][0]["secret"] == secret
    assert read.body["channels"][1]["keys"] == {"p256dh": "B" * 87}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/subscribers/bad%20id", {}, "subscriber_id"),
        ("/v1/subscribers/" + "x" * 129, {}, "subscriber_id"),
        ("/v1/subscribers/abc%0A", {}, "subscriber_id"),
        ("/v1/subscribers/u1", {"phone": "12"}, "phone"),
        ("/v1/subscribers/u1", {"email": "not-an-address"}, "email"),
        ("/v1/subscribers/u1", {"channels": [{"type": "webhook", "url": "ftp://example.com/x"}]}, "channels[0].url"),
        ("/v1/subscribers/u1", {"channels": [{"type": "webhook", "url": "not a url at all"}]}, "channels[0].url"),
        (
            "/v1/subscribers/u1",
            {"channels": [BAD_SECRET]},
            "channels[0].secret",
        ),
        ("/v1/subscribers/u1", {"channels": [{"type": "carrier-pigeon"}]}, "channels.0"),
        ("/v1/subscribers/u1", {"channels": [{"type": "webhook", "url": "http://a..b/x"}]}, "channels[0].url"),
        ("/v1/subscribers/u1", {"channels": [{"type": "webhook", "url": "http://-a.example/x"}]}, "channels[0].url"),
        ("/v1/subscribers/u1", {"channels": [{"type": "webhook", "url": HOOK}] * 2}, "channels[1].url"),
        (
            "/v1/subscribers/u1",
            {"channels": [PUSH_CHANNEL, {"type": "webhook", "url": HOOK}, {"type": "webhook", "url": HOOK_AGAIN}]},
            "channels[2].url",
        ),
        ("/v1/subscribers/u1", {"channels": [PUSH_CHANNEL] * 2}, "channels[1].endpoint"),
        ("/v1/subscribers/u1", {"channels": [{"type": "webhook", "url": "http://h.example:0/x"}]}, "channels[0].url"),
        ("/v1/subscribers/u1", {"channels": [{"type": "webhook", "url": "http://999.1.1.1/x"}]}, "channels[0].url"),
        ("/v1/subscribers/u1", {"channels": [{"type": "sms"}]}, "phone"),
        ("/v1/subscribers/u1", {"topics": ["no spaces please"]}, "topics.0"),
    ],
)
async def test_bad_subscribers_are_refused_naming_the_field(serve, path, body, field):
    api = await serve()
    answer = await api.call("PUT", path, body)
    assert answer.status == 400, answer.body
    assert answer.body["error"].get("field") == field


async def test_private_webhook_urls_are_refused_unless_allowed(serve):
    api = await serve({"webhooks": {"allow_private_networks": False}})
    for url in ("http://127.0.0.1:8080/x", "http://10.1.2.3/x", "http://[::1]/x", "http://169.254.169.254/latest"):
        answer = await api.call("PUT", "/v1/subscribers/u1", {"channels": [{"type": "webhook", "url": url}]})
        assert answer.status == 422 and answer.error == "private_address", (url, answer.body)


async def test_subscribers_need_admin(serve):
    api = await serve()
    made = await api.post("/v1/keys", {"name": "app", "scopes": ["send", "read"]})
    answer = await api.call("PUT", "/v1/subscribers/u1", {}, key=made.body["key"])
    assert answer.status == 403


async def test_channels_are_listed_back_in_the_order_they_were_given(serve):
    api = await serve()
    given = [{"type": "email"}, PUSH_CHANNEL, {"type": "webhook", "url": HOOK}]
    put = await api.call("PUT", "/v1/subscribers/ada", {"email": "ada@example.com", "channels": given})
    assert [c["type"] for c in put.body["channels"]] == ["email", "webpush", "webhook"]
    assert put.body["channels"][2]["secret"].startswith("whsec_")
    read = await api.get("/v1/subscribers/ada")
    assert [c["type"] for c in read.body["channels"]] == ["email", "webpush", "webhook"]


async def test_an_error_names_the_channel_where_it_was_listed(serve):
    api = await serve()
    channels = [PUSH_CHANNEL, {"type": "webhook", "url": HOOK}, {"type": "webhook", "url": "ftp://example.com/x"}]
    answer = await api.call("PUT", "/v1/subscribers/u1", {"channels": channels})
    assert answer.status == 400 and answer.body["error"]["field"] == "channels[2].url"
    bad_push = {**PUSH_CHANNEL, "endpoint": "ftp://push.example.com/x"}
    answer = await api.call("PUT", "/v1/subscribers/u1", {"channels": [{"type": "webhook", "url": HOOK}, bad_push]})
    assert answer.status == 400 and answer.body["error"]["field"] == "channels[1].endpoint"
    assert "webhook" not in answer.message
