"""Strict input: an unknown field or query parameter is refused, naming the known one it was likely meant to be, and
control characters never reach a text sent to a person or a log line."""

from __future__ import annotations

import pytest

TO = "+8613800138000"


@pytest.mark.parametrize(
    ("method", "path", "body", "field", "meant"),
    [
        ("POST", "/v1/verifications", {"to": TO, "code_lenght": 8}, "code_lenght", "code_length"),
        ("POST", "/v1/verifications", {"to": TO, "chanel": "sms"}, "chanel", "channel"),
        ("POST", "/v1/verifications/check", {"to": TO, "code": "123456", "cod": "1"}, "cod", "code"),
        ("POST", "/v1/messages", {"to": ["a"], "titel": "Hello"}, "titel", "title"),
        ("POST", "/v1/keys", {"name": "app", "scopes": ["send"], "scope": "read"}, "scope", "scopes"),
        ("PUT", "/v1/subscribers/ada", {"phone": "+447700900123", "topic": ["news"]}, "topic", "topics"),
        (
            "PUT",
            "/v1/subscribers/ada",
            {"channels": [{"type": "webhook", "url": "https://example.com/h", "secrett": "x"}]},
            "channels.0.webhook.secrett",
            "secret",
        ),
        ("POST", "/v1/subscribers/ada/tokens", {"ttll": 600}, "ttll", "ttl"),
    ],
)
async def test_an_unknown_body_field_is_refused_with_the_closest_known_one(serve, method, path, body, field, meant):
    api = await serve()
    await api.call("PUT", "/v1/subscribers/ada", {})
    answer = await api.call(method, path, body)
    assert answer.status == 400, answer.body
    assert answer.error == "unknown_field"
    assert answer.body["error"]["field"] == field
    assert answer.body["error"]["did_you_mean"] == meant
    assert f"`{meant}`" in answer.message


async def test_a_field_like_no_known_one_is_named_alone(serve):
    api = await serve()
    answer = await api.post("/v1/verifications", {"to": TO, "zzz": 1})
    assert answer.status == 400 and answer.error == "unknown_field"
    assert answer.body["error"]["field"] == "zzz" and "did_you_mean" not in answer.body["error"]


@pytest.mark.parametrize(
    ("path", "name", "meant"),
    [
        ("/v1/deliveries?statuss=failed", "statuss", "status"),
        ("/v1/deliveries?limit=5&cursr=9", "cursr", "cursor"),
        ("/v1/subscribers/ada/stream?sinse=all", "sinse", "since"),
        ("/healthz?verbose=1", "verbose", None),
        ("/v1/verifications/ver_0123?fields=all", "fields", None),
    ],
)
async def test_an_unknown_query_parameter_is_refused(serve, path, name, meant):
    api = await serve()
    await api.call("PUT", "/v1/subscribers/ada", {})
    answer = await api.get(path)
    assert answer.status == 400, answer.body
    assert answer.error == "unknown_field" and answer.body["error"]["field"] == name
    assert answer.body["error"].get("did_you_mean") == meant


async def test_an_endpoint_without_a_body_takes_none_or_an_empty_object(serve):
    api = await serve({"verify": {"test_numbers": {"+15005550006": {"code": "123456"}}}})
    started = await api.post("/v1/verifications", {"to": "+15005550006"})
    path = f"/v1/verifications/{started.body['id']}/cancel"
    refused = await api.post(path, {"reason": "fraud"})
    assert refused.status == 400 and refused.error == "unknown_field" and refused.body["error"]["field"] == "reason"
    assert (await api.post(path, {})).status == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/v1/verifications", {"to": TO, "app_name": "Your Bank\nCall +44 20 7946 0000 now"}, "app_name"),
        (
            "POST",
            "/v1/verifications",
            {"to": "ada@example.com", "channel": "email", "app_name": "A\r\nBcc: x"},
            "app_name",
        ),
        ("POST", "/v1/verifications", {"to": TO, "app_name": "Bank\x00"}, "app_name"),
        ("POST", "/v1/verifications", {"to": TO, "template": "verification\x1b[2J"}, "template"),
        ("POST", "/v1/messages", {"to": ["ada"], "title": "Hi\tthere"}, "title"),
        ("POST", "/v1/messages", {"to": ["ada"], "body": "one\nline two"}, "body"),
        ("POST", "/v1/messages", {"to": ["ada"], "body": "rub\x7fout"}, "body"),
        ("PUT", "/v1/subscribers/ada", {"name": "Ada\nLovelace"}, "name"),
        ("POST", "/v1/keys", {"name": "app\n2026-12-07 INFO forged line", "scopes": ["send"]}, "name"),
    ],
)
async def test_control_characters_are_refused_where_a_person_or_a_log_reads_them(serve, method, path, body, field):
    api = await serve({"verify": {"email_providers": ["console"]}})
    await api.call("PUT", "/v1/subscribers/ada", {})
    answer = await api.call(method, path, body)
    assert answer.status == 400, answer.body
    assert answer.body["error"]["field"] == field
    assert "control characters" in answer.message


async def test_printable_text_from_any_script_is_taken(serve):
    api = await serve()
    await api.call("PUT", "/v1/subscribers/ada", {})
    assert (await api.post("/v1/verifications", {"to": TO, "app_name": "云片 Bank ✓"})).status == 201
    assert (await api.post("/v1/messages", {"to": ["ada"], "title": "Grüße", "body": "¡Hola! 👋"})).status == 202
