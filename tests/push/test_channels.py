"""The delivery engine across channels: Web Push through a push service, SMS through a provider, a dead webhook
host cut off by its breaker while the others keep going, and priorities."""

from __future__ import annotations

import asyncio
import json
import time

from tests.conftest import merge
from tests.dispatch.conftest import yunpian_config
from tests.helpers import eventually, finished
from tests.push.conftest import subscribe
from tidings.testing import webpush


async def test_web_push_reaches_the_browser_and_a_gone_subscription_is_removed(serve, run_app):
    service_app = webpush.create_app()
    service_url = await run_app(service_app)
    service = service_app[webpush.PUSH_SERVICE]
    api = await serve()
    key = (await api.get("/v1/webpush/key", key=None)).body["public_key"]
    browser = service.subscribe(service_url, application_server_key=key)
    keys = {"p256dh": browser.p256dh, "auth": browser.auth}
    channel = {"type": "webpush", "endpoint": browser.endpoint, "keys": keys}
    assert (await api.call("PUT", "/v1/subscribers/ada", {"channels": [channel]})).status == 201
    sent = await api.post("/v1/messages", {"to": ["ada"], "title": "Hi", "body": "there", "priority": "high"})
    done = await finished(api, sent.body["id"])
    assert done["counts"]["delivered"] == 2  # the live stream and the browser
    [payload] = browser.messages
    event = json.loads(payload)
    assert (event["id"], event["title"], event["body"]) == (sent.body["id"], "Hi", "there")

    service.unsubscribe(browser.endpoint)
    again = await api.post("/v1/messages", {"to": ["ada"], "body": "gone?", "channels": ["webpush"]})
    done = await finished(api, again.body["id"])
    assert done["counts"]["failed"] == 1
    [delivery] = (await api.get(f"/v1/messages/{again.body['id']}/deliveries")).body["deliveries"]
    assert delivery["last_error"] == "subscription_gone"
    assert (await api.get("/v1/subscribers/ada")).body["channels"] == []


async def test_sms_goes_through_the_providers(serve, yunpian_emulator):
    sms = await yunpian_emulator()
    api = await serve(merge(yunpian_config(sms.url), {"verify": {"app_name": "Acme"}}))
    assert (await api.call("PUT", "/v1/subscribers/ada", {"phone": "+8613800138000"})).status == 201
    sent = await api.post("/v1/messages", {"to": ["ada"], "title": "Order", "body": "shipped", "channels": ["sms"]})
    await finished(api, sent.body["id"])
    assert [message.text for message in sms.emulator.received] == ["【Acme】Order: shipped"]


async def test_by_default_a_phone_is_reached_and_an_email_once_an_email_provider_is_configured(serve, yunpian_emulator):
    sms = await yunpian_emulator()
    api = await serve(merge(yunpian_config(sms.url), {"verify": {"app_name": "Acme"}}))
    listed = await api.call("PUT", "/v1/subscribers/ada", {"email": "a@example.com", "channels": [{"type": "email"}]})
    assert listed.body["channels"] == [{"type": "email", "to": "a@example.com"}]
    assert (await api.call("PUT", "/v1/subscribers/bob", {"phone": "+8613800138001", "email": "b@example.com"})).body[
        "channels"
    ] == []
    sent = await api.post("/v1/messages", {"to": ["ada", "bob"], "body": "hello"})
    deliveries = (await api.get(f"/v1/messages/{sent.body['id']}/deliveries")).body["deliveries"]
    assert sorted((d["subscriber_id"], d["channel"]) for d in deliveries) == [
        ("ada", "email"),  # listed: reached although no SMTP server is configured
        ("ada", "stream"),
        ("bob", "sms"),
        ("bob", "stream"),
    ]
    for _ in range(200):
        if sms.emulator.received:
            break
        await asyncio.sleep(0.02)
    assert [message.to for message in sms.emulator.received] == ["13800138001"]


async def test_a_dead_host_opens_its_breaker_and_the_others_keep_going(serve, receiver):
    healthy, dead = await receiver(), await receiver()
    dead.receiver.dead = True
    api = await serve({"webhooks": {"breaker_threshold": 5, "breaker_cooldown": 60}})
    good = [f"good{n}" for n in range(200)]
    bad = [f"bad{n}" for n in range(100)]
    await subscribe(api, healthy, good)
    await subscribe(api, dead, bad)
    started = time.monotonic()
    sent = await api.post("/v1/messages", {"to": bad + good, "body": "x", "channels": ["webhook"]})
    await eventually(lambda: len(healthy.receiver.received) == 200)
    took = time.monotonic() - started
    await asyncio.sleep(0.5)
    assert len(dead.receiver.received) <= 5 + 32, "once open, the breaker keeps requests off the dead host"
    status = (await api.get(f"/v1/messages/{sent.body['id']}")).body
    assert status["counts"]["delivered"] == 200 and status["counts"]["queued"] == 100
    metrics = (await api.get("/metrics")).body
    assert "tidings_webhook_open_circuits 1.0" in metrics
    assert took < 5, took


async def test_a_high_priority_message_overtakes_bulk(serve, receiver):
    hooks = await receiver(latency=0.02)
    api = await serve({"webhooks": {"concurrency": 4}})
    bulk = [f"bulk{n}" for n in range(200)]
    await subscribe(api, hooks, [*bulk, "vip"])
    await api.post("/v1/messages", {"to": bulk, "body": "sale", "priority": "low", "channels": ["webhook"]})
    await api.post("/v1/messages", {"to": ["vip"], "body": "your code", "priority": "high", "channels": ["webhook"]})
    await eventually(lambda: any(h.path == "/hook/vip" for h in hooks.receiver.received))
    position = [h.path for h in hooks.receiver.received].index("/hook/vip")
    assert position < 20, position
