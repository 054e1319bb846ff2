"""The verifications API as a user's script drives it, on a real server and a real SQLite file.

Codes come from configured test numbers here; tests that need codes delivered by a provider are in
``tests/dispatch``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time

import pytest
from aiohttp import web

from tests.conftest import ROOT_KEY
from tidings.api import idempotency

TEST_NUMBER = "+15005550006"
TEST_CODE = "123456"
TEST_CONFIG = {"verify": {"test_numbers": {TEST_NUMBER: {"code": TEST_CODE, "until": "2099-12-31"}}}}


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


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        ('{"to": ', "application/json", 400, "invalid_json"),
        ("[1, 2]", "application/json", 400, "invalid_json"),
        ("to=+8613800138000", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ('{"to": "+8613800138000"}', "text/plain", 415, "unsupported_media_type"),
    ],
)
async def test_malformed_bodies(serve, data, content_type, status, code):
    api = await serve()
    answer = await api.post("/v1/verifications", data=data, headers={"Content-Type": content_type})
    assert answer.status == status and answer.error == code


async def test_body_too_large(serve):
    api = await serve({"max_body_size": 2048})
    answer = await api.post("/v1/verifications", {"to": "+8613800138000", "pad": "x" * 4096})
    assert answer.status == 413 and answer.error == "payload_too_large"
    assert "X-Request-Id" in answer.headers


async def test_a_body_declared_too_large_is_refused_before_it_is_sent(serve):
    """Whatever its content type: the caller learns at once, without uploading it."""
    api = await serve({"max_body_size": 2048})
    host, port = api.base_url.removeprefix("http://").rstrip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST /v1/verifications HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {ROOT_KEY}\r\n"
        "Content-Type: text/plain\r\nContent-Length: 10000000\r\n\r\n".encode()
    )
    status = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert status.split()[1] == b"413"


async def test_a_body_not_in_its_content_encoding_is_400(serve):
    api = await serve()
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    answer = await api.post("/v1/verifications", data=b'{"to": "+8613800138000"}', headers=headers)
    assert answer.status == 400 and answer.error == "invalid_body"


async def test_a_client_that_leaves_mid_body_is_no_server_error(serve, caplog):
    api = await serve()
    host, port = api.base_url.removeprefix("http://").rstrip("/").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST /v1/verifications HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ROOT_KEY}\r\n"
        'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"to"'.encode()
    )
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()
    await asyncio.sleep(0.2)
    metrics = (await api.get("/metrics")).body
    assert 'route="/v1/verifications",status="499"} 1.0' in metrics
    assert 'status="500"' not in metrics
    assert "unhandled error" not in caplog.text


async def test_country_allowlist(serve):
    api = await serve({"verify": {"allowed_countries": ["cn"]}})
    refused = await api.post("/v1/verifications", {"to": "+447700900123"})
    assert refused.status == 422 and refused.error == "country_not_allowed"
    assert (await api.post("/v1/verifications", {"to": "+8613800138000"})).status == 201
    satellite = await api.post("/v1/verifications", {"to": "+88213600000"})  # a number of no country
    assert satellite.status == 422 and satellite.error == "country_not_allowed"
    assert (await api.post("/v1/verifications", {"to": "ada@example.com", "channel": "email"})).status == 201


async def test_every_get_answers_head_too(serve):
    api = await serve(TEST_CONFIG)
    started = await api.post("/v1/verifications", {"to": TEST_NUMBER})
    for path, key, status in (
        ("/healthz", None, 200),
        ("/readyz", None, 200),
        (f"/v1/verifications/{started.body['id']}", "default", 200),
        (f"/v1/verifications/{started.body['id']}", None, 401),
        ("/v1/verifications/ver_unknown", "default", 404),
    ):
        answer = await api.call("HEAD", path, key=key)
        assert (answer.status, answer.body) == (status, None), path
        assert answer.headers["X-Request-Id"]


async def test_request_id(serve):
    api = await serve()
    given = await api.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert given.headers["X-Request-Id"] == "abc-123"
    made = await api.get("/nowhere")
    assert made.status == 404 and len(made.headers["X-Request-Id"]) >= 16
    refused = await api.get("/healthz", headers={"X-Request-Id": "bad id\twith spaces"})
    assert refused.headers["X-Request-Id"] != "bad id\twith spaces"


async def test_idempotency_key_returns_the_first_answer(serve):
    api = await serve({"verify": {"resend_cooldown": 0}})
    headers = {"Idempotency-Key": "order-42"}
    first = await api.post("/v1/verifications", {"to": "+8613800138000"}, headers=headers)
    second = await api.post("/v1/verifications", {"to": "+8613800138000"}, headers=headers)
    assert first.status == second.status == 201
    assert first.body == second.body and second.body["send_count"] == 1
    assert second.headers["Idempotent-Replayed"] == "true"
    other = await api.post("/v1/verifications", {"to": "+8613800138001"}, headers=headers)
    assert other.status == 422 and other.error == "idempotency_key_reused"


async def test_idempotency_key_holds_for_a_post_without_a_body(serve):
    api = await serve()
    started = await api.post("/v1/verifications", {"to": "+8613800138000"})
    cancel = f"/v1/verifications/{started.body['id']}/cancel"
    first = await api.post(cancel, headers={"Idempotency-Key": "cancel-1"})
    retried = await api.post(cancel, headers={"Idempotency-Key": "cancel-1"})
    assert first.status == retried.status == 200 and first.body == retried.body
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert (await api.post(cancel)).status == 409


async def test_a_retry_while_another_node_holds_the_key_waits_then_answers_409(serve, tmp_path):
    """Another node's request under way is a claim in the shared store; here one is written there directly."""
    api = await serve()
    body = b'{"to": "+8613800138000"}'
    with sqlite3.connect(tmp_path / "tidings.db") as other_node:
        other_node.execute(
            "INSERT INTO idempotency VALUES (?, ?, ?, ?, ?, ?)",
            ("key_root:POST:/v1/verifications", "k9", hashlib.sha256(body).hexdigest(), 0, b"", time.time()),
        )
    started = time.monotonic()
    headers = {"Idempotency-Key": "k9", "Content-Type": "application/json"}
    answer = await api.post("/v1/verifications", data=body, headers=headers)
    assert answer.status == 409 and answer.error == "idempotency_key_in_use" and answer.headers["Retry-After"] == "1"
    assert time.monotonic() - started >= idempotency.WAIT_FOR_FIRST


async def test_an_answer_kept_before_answers_were_sealed_is_still_replayed(serve, tmp_path):
    api = await serve()
    body = b'{"to": "+8613800138000"}'
    kept = b'{"id": "ver_kept", "status": "pending"}'
    with sqlite3.connect(tmp_path / "tidings.db") as earlier:
        earlier.execute(
            "INSERT INTO idempotency VALUES (?, ?, ?, ?, ?, ?)",
            ("key_root:POST:/v1/verifications", "k8", hashlib.sha256(body).hexdigest(), 201, kept, time.time()),
        )
    headers = {"Idempotency-Key": "k8", "Content-Type": "application/json"}
    answer = await api.post("/v1/verifications", data=body, headers=headers)
    assert answer.status == 201 and answer.body == json.loads(kept) and answer.headers["Idempotent-Replayed"] == "true"


async def test_idempotency_key_concurrent_retries_send_once(serve):
    api = await serve({"verify": {"resend_cooldown": 0}})
    answers = await asyncio.gather(
        *(api.post("/v1/verifications", {"to": "+8613800138000"}, headers={"Idempotency-Key": "k1"}) for _ in range(10))
    )
    assert {a.body["id"] for a in answers} == {answers[0].body["id"]}
    assert {a.body["send_count"] for a in answers} == {1}


async def test_healthz_readyz_openapi_docs(serve):
    api = await serve()
    assert (await api.get("/healthz", key=None)).body["status"] == "ok"
    assert (await api.get("/readyz", key=None)).status == 200
    document = (await api.get("/openapi.json", key=None)).body
    assert document["openapi"].startswith("3.1")
    for path in (
        "/v1/verifications",
        "/v1/verifications/check",
        "/v1/verifications/{id}",
        "/v1/verifications/{id}/cancel",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/subscribers/{subscriber_id}",  # the paths as API.md writes them
        "/v1/subscribers/{id}/stream",
        "/v1/subscribers/{id}/tokens",
        "/v1/messages",
    ):
        assert path in document["paths"], path
    assert "StartVerification" in document["components"]["schemas"]
    put = document["paths"]["/v1/subscribers/{subscriber_id}"]["put"]
    assert "Idempotency-Key" in [parameter["name"] for parameter in put["parameters"]]
    assert {"409", "422", "503"} <= set(put["responses"])
    assert put["requestBody"]["required"] is False, "no body reads as {}, a valid subscriber"
    assert document["paths"]["/v1/verifications"]["post"]["requestBody"]["required"] is True
    cancel = document["paths"]["/v1/verifications/{id}/cancel"]["post"]
    assert cancel["parameters"][0]["schema"]["pattern"] == "^ver_[0-9a-f]{32}$"
    assert {"400", "404", "408"} <= set(cancel["responses"])
    operations = [operation for path in document["paths"].values() for operation in path.values()]
    assert all("400" in operation["responses"] for operation in operations), "unknown query parameters"
    page = await api.get("/docs", key=None)
    assert page.status == 200 and "/docs/static/swagger-ui-bundle.js" in page.body
    script = await api.get("/docs/static/swagger-ui-bundle.js", key=None)
    assert script.status == 200
    missing = await api.get("/docs/static/nothing.js", key=None)
    assert missing.status == 404 and missing.error == "not_found"


async def test_metrics(serve):
    api = await serve(TEST_CONFIG)
    await api.post("/v1/verifications", {"to": TEST_NUMBER})
    metrics = await api.get("/metrics", key=None)
    assert metrics.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = metrics.body
    assert 'tidings_http_requests_total{method="POST",route="/v1/verifications",status="201"} 1.0' in text
    assert "tidings_send_duration_seconds" in text
    assert "tidings_queue_depth" in text


async def test_root_key_is_not_in_any_answer(serve):
    api = await serve()
    for answer in (await api.get("/v1/keys"), await api.get("/openapi.json")):
        assert ROOT_KEY not in str(answer.body)


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


async def test_a_retry_that_writes_the_same_json_differently_is_the_same_request(serve):
    api = await serve(TEST_CONFIG)
    headers = {"Idempotency-Key": "spaced", "Content-Type": "application/json"}
    first = await api.post("/v1/verifications", data=b'{"to": "+8613800138000", "locale": "en"}', headers=headers)
    again = await api.post("/v1/verifications", data=b'{"locale":"en","to":"+8613800138000"}', headers=headers)
    assert first.status == again.status == 201 and again.headers["Idempotent-Replayed"] == "true"
    other = await api.post("/v1/verifications", data=b'{"to": "+8613800138000"}', headers=headers)
    assert other.status == 422 and other.error == "idempotency_key_reused"


async def test_an_unknown_path_or_method_is_answered_in_words(serve):
    api = await serve()
    missing = await api.get("/v1/verificatons/ver_1")
    assert missing.status == 404 and missing.error == "not_found" and "/openapi.json" in missing.message
    wrong = await api.call("DELETE", "/v1/verifications")
    assert wrong.status == 405 and wrong.message == "DELETE is not allowed on /v1/verifications; use POST"
    assert wrong.headers["Allow"] == "POST"
