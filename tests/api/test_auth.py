"""API keys: bearer auth, scopes, creation shown once, revocation."""

from __future__ import annotations

import asyncio

import pytest


async def test_missing_and_wrong_keys(serve):
    api = await serve()
    missing = await api.post("/v1/verifications", {"to": "+8613800138000"}, key=None)
    assert missing.status == 401 and missing.error == "missing_api_key"
    wrong = await api.post("/v1/verifications", {"to": "+8613800138000"}, key="tk_wrong")
    assert wrong.status == 401 and wrong.error == "invalid_api_key"
    basic = await api.get("/v1/verifications/ver_x", key=None, headers={"Authorization": "Basic abc"})
    assert basic.status == 401


async def test_a_key_of_undecodable_bytes_is_an_invalid_key(serve):
    api = await serve()
    host, port = api.base_url.removeprefix("http://").rstrip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /v1/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer caf\xe9\r\nConnection: close\r\n\r\n")
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 401 ") and b"invalid_api_key" in answer


@pytest.mark.parametrize(
    ("scopes", "method", "path", "allowed"),
    [
        (["send"], "POST", "/v1/verifications", True),
        (["send"], "GET", "/v1/verifications/ver_x", False),
        (["read"], "GET", "/v1/verifications/ver_x", True),
        (["read"], "POST", "/v1/verifications", False),
        (["read"], "POST", "/v1/verifications/check", False),
        (["send"], "GET", "/v1/keys", False),
        (["admin"], "GET", "/v1/keys", True),
        (["admin"], "POST", "/v1/verifications", True),
    ],
)
async def test_scopes(serve, scopes, method, path, allowed):
    api = await serve()
    created = await api.post("/v1/keys", {"name": "app", "scopes": scopes})
    assert created.status == 201
    body = {"to": "+8613800138000"} if path == "/v1/verifications" else {"to": "+8613800138000", "code": "1234"}
    answer = await api.call(method, path, body if method == "POST" else None, key=created.body["key"])
    if allowed:
        assert answer.status not in (401, 403), answer.body
    else:
        assert answer.status == 403 and answer.error == "insufficient_scope"


async def test_a_key_made_with_an_idempotency_key_is_replayed_but_not_stored_in_plain_text(serve, tmp_path):
    api = await serve()
    headers = {"Idempotency-Key": "make-backend-key"}
    created = await api.post("/v1/keys", {"name": "backend", "scopes": ["send"]}, headers=headers)
    again = await api.post("/v1/keys", {"name": "backend", "scopes": ["send"]}, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true" and again.body == created.body
    secret = created.body["key"].encode()
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("tidings.db*"))
    assert stored and secret not in stored


async def test_key_shown_once_and_revoked(serve):
    api = await serve()
    created = await api.post("/v1/keys", {"name": "backend", "scopes": ["send", "read"]})
    secret = created.body["key"]
    assert secret.startswith("tk_")
    listed = await api.get("/v1/keys")
    assert [k["name"] for k in listed.body["keys"]] == ["backend"]
    assert secret not in str(listed.body)
    assert (await api.get("/v1/verifications/ver_x", key=secret)).status == 404
    assert (await api.call("DELETE", f"/v1/keys/{created.body['id']}")).status == 204
    assert (await api.get("/v1/verifications/ver_x", key=secret)).status == 401
    assert (await api.call("DELETE", f"/v1/keys/{created.body['id']}")).status == 404


@pytest.mark.parametrize(
    "body", [{"name": "x", "scopes": ["everything"]}, {"name": "", "scopes": ["send"]}, {"name": "x", "scopes": []}]
)
async def test_bad_key_requests(serve, body):
    api = await serve()
    assert (await api.post("/v1/keys", body)).status == 400
