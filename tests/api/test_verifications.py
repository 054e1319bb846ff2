"""The verifications API as a user's script drives it, on a real server and a real SQLite file.

Codes come from configured test numbers here; tests that need codes delivered by a provider are in
``tests/dispatch``.
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from tests.helpers import TEST_CODE, TEST_CONFIG, TEST_NUMBER


async def test_start_check_get(serve):
    api = await serve(TEST_CONFIG)
    started = await api.post("/v1/verifications", {"to": TEST_NUMBER})
    assert started.status == 201, started.body
    body = started.body
    assert body["id"].startswith("ver_")
    assert body["to"] == TEST_NUMBER
    assert body["channel"] == "sms"
    assert body["status"] == "pending"
    assert body["send_count"] == 1
    assert body["expires_at"].endswith("Z") and body["created_at"].endswith("Z")
    assert "code" not in body

    wrong = await api.post("/v1/verifications/check", {"to": TEST_NUMBER, "code": "000000"})
    assert wrong.status == 200
    assert wrong.body == {"id": body["id"], "status": "pending", "valid": False, "attempts_left": 4}

    right = await api.post("/v1/verifications/check", {"id": body["id"], "code": TEST_CODE})
    assert right.status == 200
    assert right.body["valid"] is True and right.body["status"] == "approved"

    again = await api.post("/v1/verifications/check", {"to": TEST_NUMBER, "code": TEST_CODE})
    assert again.status == 404 and again.error == "verification_approved"

    read = await api.get(f"/v1/verifications/{body['id']}")
    assert read.status == 200 and read.body["status"] == "approved"
    assert "code" not in read.body and "sealed_code" not in read.body


async def test_number_without_plus_uses_default_region(serve):
    api = await serve({**TEST_CONFIG, "verify": {**TEST_CONFIG["verify"], "default_region": "CN"}})
    answer = await api.post("/v1/verifications", {"to": "13800138000"})
    assert answer.status == 201 and answer.body["to"] == "+8613800138000"


async def test_resend_keeps_the_verification_until_max_sends(serve):
    api = await serve({"verify": {"resend_cooldown": 0, "max_sends": 3}})
    first = await api.post("/v1/verifications", {"to": "+8613800138000"})
    second = await api.post("/v1/verifications", {"to": "+8613800138000"})
    third = await api.post("/v1/verifications", {"to": "+8613800138000"})
    assert first.body["id"] == second.body["id"] == third.body["id"]
    assert [a.body["send_count"] for a in (first, second, third)] == [1, 2, 3]
    fourth = await api.post("/v1/verifications", {"to": "+8613800138000"})
    assert fourth.status == 429 and fourth.error == "max_sends_reached"
    assert int(fourth.headers["Retry-After"]) >= 1
    assert fourth.body["error"]["retry_after"] >= 1


async def test_resend_cooldown(serve):
    api = await serve({"verify": {"resend_cooldown": 30}})
    assert (await api.post("/v1/verifications", {"to": "+8613800138000"})).status == 201
    again = await api.post("/v1/verifications", {"to": "+8613800138000"})
    assert again.status == 429 and again.error == "rate_limited"
    assert 1 <= int(again.headers["Retry-After"]) <= 30


async def test_the_cooldown_holds_back_resends_only(serve):
    """Once a verification is over, the next one starts at once: signing in again is not pressing "resend"."""
    api = await serve({"verify": {"resend_cooldown": 30}})
    first = await api.post("/v1/verifications", {"to": "+8613800138000"})
    assert (await api.post(f"/v1/verifications/{first.body['id']}/cancel")).status == 200
    second = await api.post("/v1/verifications", {"to": "+8613800138000"})
    assert second.status == 201 and second.body["id"] != first.body["id"]


async def test_max_attempts(serve):
    api = await serve({**TEST_CONFIG, "verify": {**TEST_CONFIG["verify"], "max_checks": 3}})
    started = await api.post("/v1/verifications", {"to": TEST_NUMBER})
    answers = [await api.post("/v1/verifications/check", {"to": TEST_NUMBER, "code": "999999"}) for _ in range(3)]
    assert [a.body["attempts_left"] for a in answers] == [2, 1, 0]
    assert answers[-1].body["status"] == "max_attempts_reached"
    locked = await api.post("/v1/verifications/check", {"to": TEST_NUMBER, "code": TEST_CODE})
    assert locked.status == 429 and locked.error == "max_attempts_reached"
    assert "Retry-After" in locked.headers
    read = await api.get(f"/v1/verifications/{started.body['id']}")
    assert read.body["status"] == "max_attempts_reached"
    canceled = await api.post(f"/v1/verifications/{started.body['id']}/cancel")
    assert canceled.status == 409 and canceled.error == "max_attempts_reached"


async def test_expired(serve):
    api = await serve({**TEST_CONFIG, "verify": {**TEST_CONFIG["verify"], "ttl": 0.3}})
    started = await api.post("/v1/verifications", {"to": TEST_NUMBER})
    await asyncio.sleep(0.4)
    checked = await api.post("/v1/verifications/check", {"to": TEST_NUMBER, "code": TEST_CODE})
    assert checked.status == 404 and checked.error == "verification_expired"
    read = await api.get(f"/v1/verifications/{started.body['id']}")
    assert read.body["status"] == "expired"


async def test_cancel(serve):
    api = await serve(TEST_CONFIG)
    started = await api.post("/v1/verifications", {"to": TEST_NUMBER})
    canceled = await api.post(f"/v1/verifications/{started.body['id']}/cancel")
    assert canceled.status == 200 and canceled.body["status"] == "canceled"
    checked = await api.post("/v1/verifications/check", {"to": TEST_NUMBER, "code": TEST_CODE})
    assert checked.status == 404 and checked.error == "verification_canceled"
    twice = await api.post(f"/v1/verifications/{started.body['id']}/cancel")
    assert twice.status == 409 and twice.error == "verification_canceled"


async def test_not_found(serve):
    api = await serve()
    by_id = await api.post("/v1/verifications/check", {"id": "ver_nope", "code": "123456"})
    by_to = await api.post("/v1/verifications/check", {"to": "+8613800138000", "code": "123456"})
    read = await api.get("/v1/verifications/ver_nope")
    cancel = await api.post("/v1/verifications/ver_nope/cancel")
    for answer in (by_id, by_to, read, cancel):
        assert answer.status == 404 and answer.error == "verification_not_found"


async def test_new_verification_after_approval(serve):
    api = await serve({**TEST_CONFIG})
    first = await api.post("/v1/verifications", {"to": TEST_NUMBER})
    await api.post("/v1/verifications/check", {"to": TEST_NUMBER, "code": TEST_CODE})
    second = await api.post("/v1/verifications", {"to": TEST_NUMBER})
    assert second.status == 201 and second.body["id"] != first.body["id"] and second.body["send_count"] == 1


async def test_test_number_past_its_date_is_an_ordinary_number(serve):
    api = await serve({"verify": {"test_numbers": {TEST_NUMBER: {"code": TEST_CODE, "until": "2020-01-01"}}}})
    await api.post("/v1/verifications", {"to": TEST_NUMBER})
    checked = await api.post("/v1/verifications/check", {"to": TEST_NUMBER, "code": TEST_CODE})
    assert checked.body["valid"] is False


async def test_concurrent_right_codes_approve_once(serve):
    api = await serve(TEST_CONFIG)
    await api.post("/v1/verifications", {"to": TEST_NUMBER})
    answers = await asyncio.gather(
        *(api.post("/v1/verifications/check", {"to": TEST_NUMBER, "code": TEST_CODE}) for _ in range(20))
    )
    assert sum(1 for a in answers if a.status == 200 and a.body["valid"]) == 1
    assert all(a.error == "verification_approved" for a in answers if not (a.status == 200 and a.body["valid"]))


async def test_concurrent_wrong_guesses_never_pass_the_limit(serve):
    api = await serve(TEST_CONFIG)
    started = await api.post("/v1/verifications", {"to": TEST_NUMBER})
    answers = await asyncio.gather(
        *(api.post("/v1/verifications/check", {"to": TEST_NUMBER, "code": "000000"}) for _ in range(40))
    )
    counted = [a for a in answers if a.status == 200]
    assert len(counted) == 5
    assert sorted(a.body["attempts_left"] for a in counted) == [0, 1, 2, 3, 4]
    assert all(a.status == 429 and a.error == "max_attempts_reached" for a in answers if a.status != 200)
    read = await api.get(f"/v1/verifications/{started.body['id']}")
    assert read.body["status"] == "max_attempts_reached" and read.body["attempts_left"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"to": "12345"}, "to"),
        ({"to": "+861"}, "to"),
        ({"to": "not a number"}, "to"),
        ({"to": "+8613800138000", "channel": "fax"}, "channel"),
        ({"to": "+8613800138000", "code_length": 3}, "code_length"),
        ({"to": "+8613800138000", "code_length": 11}, "code_length"),
        ({"to": "+8613800138000", "code_length": "six"}, "code_length"),
        ({"to": "+8613800138000", "code_length": "6"}, "code_length"),
        ({"to": "+8613800138000", "code_length": True}, "code_length"),
        ({"to": "+8613800138000", "locale": "<script>"}, "locale"),
        ({"to": "+8613800138000", "template": "nope"}, "template"),
        ({"to": "not-an-email", "channel": "email"}, "to"),
        ({"to": 8613800138000}, "to"),
        ({}, "to"),
    ],
)
async def test_bad_start_names_the_field(serve, body, field):
    api = await serve()
    answer = await api.post("/v1/verifications", body)
    assert answer.status == 400, answer.body
    assert answer.body["error"]["field"] == field
    assert answer.body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"to": "+8613800138000"}, "code"),
        ({"code": "123456"}, "to"),
        ({"to": "+8613800138000", "id": "ver_x", "code": "123456"}, "id"),
        ({"to": "+8613800138000", "code": 123456}, "code"),
        ({"to": "+8613800138000", "code": "1" * 65}, "code"),
    ],
)
async def test_bad_check(serve, body, field):
    api = await serve()
    answer = await api.post("/v1/verifications/check", body)
    assert answer.status == 400
    assert answer.body["error"].get("field") == field


async def test_a_code_that_is_not_digits_is_a_wrong_code(serve):
    api = await serve(TEST_CONFIG)
    await api.post("/v1/verifications", {"to": TEST_NUMBER, "channel": None})
    for typed in ("12ab56", "12345678901", "١٢٣٤٥٦"):
        answer = await api.post("/v1/verifications/check", {"to": TEST_NUMBER, "code": typed})
        assert answer.status == 200 and answer.body["valid"] is False, answer.body


async def test_country_allowlist(serve):
    api = await serve({"verify": {"allowed_countries": ["cn"]}})
    refused = await api.post("/v1/verifications", {"to": "+447700900123"})
    assert refused.status == 422 and refused.error == "country_not_allowed"
    assert (await api.post("/v1/verifications", {"to": "+8613800138000"})).status == 201
    satellite = await api.post("/v1/verifications", {"to": "+88213600000"})  # a number of no country
    assert satellite.status == 422 and satellite.error == "country_not_allowed"
    assert (await api.post("/v1/verifications", {"to": "ada@example.com", "channel": "email"})).status == 201


async def test_channel_without_providers(serve):
    api = await serve({"verify": {"email_providers": []}})
    answer = await api.post("/v1/verifications", {"to": "ada@example.com", "channel": "email"})
    assert answer.status == 422 and answer.error == "channel_not_configured"


async def test_a_full_queue_refuses_sends_but_not_what_sends_nothing_or_is_refused_anyway(serve, run_app):
    held = asyncio.Event()

    async def slow_provider(request: web.Request) -> web.Response:
        await held.wait()
        return web.json_response({"code": 0})

    provider = web.Application()
    provider.router.add_post("/v2/sms/single_send.json", slow_provider)
    config = {
        **TEST_CONFIG,
        "verify": {**TEST_CONFIG["verify"], "sms_providers": ["yunpian"], "allowed_countries": ["CN", "US"]},
        "providers": {"yunpian": {"base_url": await run_app(provider), "apikey": "k", "batch_size": 1}},
        "dispatch": {"max_queue": 2},
    }
    api = await serve(config)
    for number in ("+8613800138001", "+8613800138002"):
        assert (await api.post("/v1/verifications", {"to": number})).status == 201
    full = await api.post("/v1/verifications", {"to": "+8613800138003"})
    assert full.status == 503 and full.error == "queue_full" and full.headers["Retry-After"] == "5"
    assert (await api.post("/v1/verifications", {"to": TEST_NUMBER})).status == 201  # sends nothing
    outside = await api.post("/v1/verifications", {"to": "+447700900123"})
    assert outside.status == 422 and outside.error == "country_not_allowed"
    held.set()
