"""Codes go out through a provider's real wire format: delivered, resent, retried, failed over, or dropped."""

from __future__ import annotations

import asyncio
import logging
import re
import time

from tests.conftest import CODE, ROOT_KEY
from tests.dispatch.conftest import yunpian_config
from tests.helpers import eventually

NUMBER = "+8613800138000"


async def status_of(api, id: str) -> str:
    return (await api.get(f"/v1/verifications/{id}")).body["status"]


async def test_code_is_delivered_and_checks(serve, yunpian_emulator):
    sms = await yunpian_emulator()
    api = await serve(yunpian_config(sms.url))
    started = await api.post("/v1/verifications", {"to": NUMBER, "locale": "zh-CN", "app_name": "Acme"})
    await eventually(lambda: sms.texts(NUMBER))
    [text] = sms.texts(NUMBER)
    assert text.startswith("【Acme】") and "10分钟" in text
    code = CODE.search(text).group(1)
    assert len(code) == 6
    assert sms.emulator.received[0].id == f"snd_{started.body['id'].removeprefix('ver_')}.1"
    checked = await api.post("/v1/verifications/check", {"to": NUMBER, "code": code})
    assert checked.body == {"id": started.body["id"], "status": "approved", "valid": True, "attempts_left": 4}


async def test_resend_sends_the_same_code(serve, yunpian_emulator):
    sms = await yunpian_emulator()
    api = await serve(yunpian_config(sms.url, code_length=8))
    await api.post("/v1/verifications", {"to": NUMBER, "locale": "en"})
    await api.post("/v1/verifications", {"to": NUMBER, "locale": "en"})
    await eventually(lambda: len(sms.texts(NUMBER)) == 2)
    codes = {CODE.search(text).group(1) for text in sms.texts(NUMBER)}
    assert len(codes) == 1 and len(codes.pop()) == 8


async def test_transient_failures_are_retried(serve, yunpian_emulator):
    sms = await yunpian_emulator(fail_first=2)
    api = await serve(yunpian_config(sms.url))
    called = time.monotonic()
    started = await api.post("/v1/verifications", {"to": NUMBER})
    await eventually(lambda: sms.texts(NUMBER))
    assert time.monotonic() - called < 1.0, "each retry goes when it is due (0.025-0.1 s here), not a second later"
    assert sms.emulator.requests == 3
    assert await status_of(api, started.body["id"]) == "pending"


async def test_refusal_fails_over_to_the_next_provider(serve, yunpian_emulator, gateway):
    sms = await yunpian_emulator()
    url, bodies = await gateway()
    config = yunpian_config(sms.url, apikey="wrong")
    config["verify"]["sms_providers"] = ["yunpian", "http"]
    config["providers"]["http"] = {
        "url": url,
        "format": "json",
        "body": {"phone": "{to}", "message": "{text}", "ref": "{idempotency_key}"},
    }
    api = await serve(config)
    started = await api.post("/v1/verifications", {"to": NUMBER})
    await eventually(lambda: bodies)
    assert bodies[0]["phone"] == NUMBER and CODE.search(bodies[0]["message"])
    assert bodies[0]["ref"].startswith("snd_")
    assert sms.emulator.received == []
    assert await status_of(api, started.body["id"]) == "pending"


async def test_persistent_failures_fail_over(serve, yunpian_emulator, gateway):
    sms = await yunpian_emulator(failure_rate=1.0)
    url, bodies = await gateway()
    config = yunpian_config(sms.url)
    config["verify"]["sms_providers"] = ["yunpian", "http"]
    config["providers"]["http"] = {"url": url, "format": "json"}
    config["dispatch"] = {"attempts_per_provider": 2}
    api = await serve(config)
    await api.post("/v1/verifications", {"to": NUMBER})
    await eventually(lambda: bodies)
    assert sms.emulator.requests == 2


async def test_every_provider_refusing_fails_the_verification(serve, yunpian_emulator, gateway):
    sms = await yunpian_emulator()
    url, bodies = await gateway(status=400)
    config = yunpian_config(sms.url, apikey="wrong")
    config["verify"]["sms_providers"] = ["yunpian", "http"]
    config["providers"]["http"] = {"url": url, "format": "json"}
    api = await serve(config)
    started = await api.post("/v1/verifications", {"to": NUMBER})
    id = started.body["id"]
    for _ in range(200):
        if await status_of(api, id) == "failed":
            break
        await asyncio.sleep(0.02)
    assert await status_of(api, id) == "failed"
    assert len(bodies) == 1
    checked = await api.post("/v1/verifications/check", {"id": id, "code": "123456"})
    assert checked.status == 404 and checked.error == "verification_failed"


async def test_a_code_that_expired_is_not_sent(serve, yunpian_emulator):
    """Its send is retried until just before it expires, then given up: the code failed, and nothing goes later."""
    sms = await yunpian_emulator(fail_first=1000)
    api = await serve(yunpian_config(sms.url, ttl=2.0))
    started = await api.post("/v1/verifications", {"to": NUMBER})
    await asyncio.sleep(2.5)  # past its expiry: the length of the wait is what is tested
    assert sms.emulator.received == []
    assert await status_of(api, started.body["id"]) == "failed"


async def test_retry_after_from_the_provider_is_honoured(serve, yunpian_emulator):
    """Yunpian's per-number frequency error asks for 30 s: no retry comes sooner."""
    sms = await yunpian_emulator(same_number_interval=60)
    api = await serve(yunpian_config(sms.url))
    await api.post("/v1/verifications", {"to": NUMBER})
    await eventually(lambda: sms.texts(NUMBER))
    await api.post("/v1/verifications", {"to": NUMBER})
    await eventually(lambda: sms.emulator.requests == 2)
    await asyncio.sleep(0.5)
    assert sms.emulator.requests == 2 and len(sms.texts(NUMBER)) == 1


async def test_logs_hold_no_code_and_no_key(serve, yunpian_emulator, caplog):
    sms = await yunpian_emulator(fail_first=1)
    with caplog.at_level(logging.DEBUG):
        api = await serve({**yunpian_config(sms.url), "log_format": "json"})
        await api.post("/v1/verifications", {"to": NUMBER})
        await eventually(lambda: sms.texts(NUMBER))
        code = CODE.search(sms.texts(NUMBER)[0]).group(1)
        await api.post("/v1/verifications/check", {"to": NUMBER, "code": "000000"})
        await api.post("/v1/verifications/check", {"to": NUMBER, "code": code})
        await api.post("/v1/verifications", {"to": "+8613900139000"}, key="tk_not-a-real-key-123456")
    assert caplog.records
    assert code not in caplog.text
    assert ROOT_KEY not in caplog.text and "tk_not-a-real-key-123456" not in caplog.text
    assert not re.search(r"【[^】]*】", caplog.text)


async def test_the_queue_depth_metric_goes_back_to_zero(serve, yunpian_emulator):
    sms = await yunpian_emulator(latency=0.5)
    api = await serve(yunpian_config(sms.url))
    await api.post("/v1/verifications", {"to": "+8613800138000"})
    assert 'tidings_queue_depth{lane="yunpian"} 1.0' in (await api.get("/metrics")).body
    await eventually(lambda: sms.emulator.received)
    for _ in range(100):
        if 'tidings_queue_depth{lane="yunpian"} 0.0' in (await api.get("/metrics")).body:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the drained lane still shows its last depth")


async def settled(api, ids: list[str], timeout: float = 30.0) -> dict[str, str]:
    """Each verification's status once none is waiting for its code any more (delivered or given up)."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = {id: await status_of(api, id) for id in ids}
        if time.monotonic() > deadline or all(status != "pending" for status in statuses.values()):
            return statuses
        await asyncio.sleep(0.2)


async def test_a_flaky_provider_loses_no_code(serve, yunpian_emulator):
    """A provider failing 30% of requests: every code gets through, in its own time, none ends failed."""
    sms = await yunpian_emulator(failure_rate=0.3, seed=7)
    config = yunpian_config(sms.url)
    config["dispatch"] = {"breaker_cooldown": 0.2}
    config["providers"]["yunpian"]["batch_size"] = 1
    api = await serve(config)
    numbers = [f"+86138{n:08d}" for n in range(200)]
    started = [await api.post("/v1/verifications", {"to": number}) for number in numbers]
    assert {answer.status for answer in started} == {201}
    await eventually(lambda: all(sms.texts(number) for number in numbers), timeout=60)
    statuses = {await status_of(api, answer.body["id"]) for answer in started}
    assert statuses == {"pending"}, "delivered, not failed"
    assert sms.emulator.requests > 200 * 1.3, "with as many failures as were asked for"


async def test_codes_started_while_the_provider_is_down_are_sent_when_it_returns(serve, yunpian_emulator):
    sms = await yunpian_emulator()
    config = yunpian_config(sms.url)
    config["dispatch"] = {"breaker_threshold": 3, "breaker_cooldown": 0.2}
    api = await serve(config)
    sms.emulator.outage(3.0)
    numbers = [f"+86139{n:08d}" for n in range(50)]
    started = [await api.post("/v1/verifications", {"to": number}) for number in numbers]
    await asyncio.sleep(2.0)
    assert not any(sms.texts(number) for number in numbers)
    during = sms.emulator.requests
    assert during < 50, "an open circuit holds sends back: probes go, not every retry of every code"
    await eventually(lambda: all(sms.texts(number) for number in numbers), timeout=20)
    assert {await status_of(api, answer.body["id"]) for answer in started} == {"pending"}


async def test_a_code_is_given_up_shortly_before_it_expires(serve, yunpian_emulator):
    """Tried until a fifth of its life is left (at most 20 s before it expires), then failed with the last error."""
    sms = await yunpian_emulator(failure_rate=1.0)
    api = await serve(yunpian_config(sms.url, ttl=6.0))
    started = await api.post("/v1/verifications", {"to": NUMBER})
    id = started.body["id"]
    statuses = await settled(api, [id], timeout=10)
    assert statuses[id] == "failed"
    assert sms.emulator.requests >= 3, "tried several times first"
    read = await api.get(f"/v1/verifications/{id}")
    assert read.body["updated_at"] < read.body["expires_at"]
