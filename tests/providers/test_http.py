"""The generic HTTP provider against a user's own gateway, served here on loopback."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from tidings.core.types import Delivered, OutboundMessage, Permanent, Transient
from tidings.providers.http import GenericHttp, fill


def message(text: str = "Your code is 123456") -> OutboundMessage:
    return OutboundMessage(to="+8613800138000", text=text, idempotency_key="snd_1.1", params={"code": "123456"})


class Gateway:
    """Records each request and answers with ``status`` after ``delay`` seconds."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.status, self.delay = status, delay
        self.requests: list[dict] = []

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = json.loads(raw) if request.content_type == "application/json" else dict(await request.post())
        self.requests.append(
            {"method": request.method, "query": dict(request.query), "body": body, "headers": request.headers}
        )
        await asyncio.sleep(self.delay)
        return web.json_response({"ok": self.status < 300}, status=self.status)


@pytest.fixture
def gateway(run_app):
    async def start(**options) -> tuple[str, Gateway]:
        gateway = Gateway(**options)
        app = web.Application()
        app.router.add_route("*", "/send", gateway.handle)
        return await run_app(app) + "/send", gateway

    return start


async def test_json_body_and_secret_headers(gateway, provider):
    url, received = await gateway()
    sender = provider(
        GenericHttp,
        url=url,
        format="json",
        body={
            "phone": "{to}",
            "msg": "{text}",
            "otp": "{code}",
            "ref": "{idempotency_key}",
            "n": 1,
            "tags": ["{code}"],
        },
        headers={"Authorization": "Bearer s3cret"},
    )
    assert isinstance(await sender.send(message()), Delivered)
    [request] = received.requests
    assert request["body"] == {
        "phone": "+8613800138000",
        "msg": "Your code is 123456",
        "otp": "123456",
        "ref": "snd_1.1",
        "n": 1,
        "tags": ["123456"],
    }
    assert request["headers"]["Authorization"] == "Bearer s3cret"
    assert "s3cret" not in repr(sender)


@pytest.mark.parametrize(("method", "where"), [("POST", "body"), ("PUT", "body"), ("GET", "query")])
async def test_form_and_query(gateway, provider, method, where):
    url, received = await gateway()
    sender = provider(GenericHttp, url=url, method=method, body={"to": "{to}", "text": "{text}", "flash": False})
    assert isinstance(await sender.send(message()), Delivered)
    [request] = received.requests
    assert request["method"] == method
    assert request[where] == {"to": "+8613800138000", "text": "Your code is 123456", "flash": "false"}


@pytest.mark.parametrize(
    ("status", "success", "expected"),
    [
        (200, None, Delivered),
        (204, None, Delivered),
        (202, [202], Delivered),
        (200, [202], Permanent),
        (400, None, Permanent),
        (401, None, Permanent),
        (408, None, Transient),
        (429, None, Transient),
        (500, None, Transient),
        (503, None, Transient),
    ],
)
async def test_statuses(gateway, provider, status, success, expected):
    url, _ = await gateway(status=status)
    configured = {"success_statuses": success} if success else {}
    outcome = await provider(GenericHttp, url=url, **configured).send(message())
    assert isinstance(outcome, expected)
    if expected is not Delivered:
        assert outcome.error == f"http_{status}"


async def test_timeouts_and_refused_connections_are_transient(gateway, provider, closed_url):
    url, _ = await gateway(delay=2.0)
    assert (await provider(GenericHttp, url=url).send(message())).error == "timeout"
    assert (await provider(GenericHttp, url=closed_url + "/send").send(message())).error == "connection_error"


@pytest.mark.parametrize(
    "template",
    ["{to.__class__}", "{text!r}", "{0}", "{code:>20}", "{app_name}", "{__builtins__}", "{ code }"],
)
def test_only_the_four_plain_placeholders_are_filled(template):
    assert fill(template, {"to": "+1", "text": "t", "code": "123456", "idempotency_key": "k"}) == template


def test_a_text_with_braces_is_not_filled_again():
    values = {"to": "+1", "text": "{code}", "code": "123456", "idempotency_key": "k"}
    assert fill({"m": "{text} / {to}"}, values) == {"m": "{code} / +1"}
