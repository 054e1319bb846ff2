"""What every endpoint shares (``api/routing.py``, ``api/middlewares.py``): bodies read and refused in words, HEAD for
every GET, request ids, unknown paths and methods, and no key in any answer."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import ROOT_KEY
from tests.helpers import TEST_CONFIG, TEST_NUMBER


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
    counted = 'route="/v1/verifications",status="499"} 1.0'
    for _ in range(250):  # until the server has seen the client go
        if counted in (await api.get("/metrics")).body:
            break
        await asyncio.sleep(0.02)
    metrics = (await api.get("/metrics")).body
    assert counted in metrics
    assert 'status="500"' not in metrics
    assert "unhandled error" not in caplog.text


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


async def test_root_key_is_not_in_any_answer(serve):
    api = await serve()
    for answer in (await api.get("/v1/keys"), await api.get("/openapi.json")):
        assert ROOT_KEY not in str(answer.body)


async def test_an_unknown_path_or_method_is_answered_in_words(serve):
    api = await serve()
    missing = await api.get("/v1/verificatons/ver_1")
    assert missing.status == 404 and missing.error == "not_found" and "/openapi.json" in missing.message
    wrong = await api.call("DELETE", "/v1/verifications/check")
    assert wrong.status == 405 and wrong.message == "DELETE is not allowed on /v1/verifications/check; use POST"
    assert wrong.headers["Allow"] == "POST"
