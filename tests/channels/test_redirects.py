"""No channel follows a redirect: a URL a caller gave that answers ``307 Location: <a private address>`` would
otherwise carry the request where the SSRF guard never looked. Every channel sends through the one outside client,
so each is shown here refusing to follow. (The receivers are on loopback, so private networks are allowed here; the
guard against them is tested in ``test_guard.py``.)"""

from __future__ import annotations

import pytest
from aiohttp import web

from tests.channels.conftest import new_secret
from tidings.channels.webhook import Webhooks
from tidings.channels.webpush import WebPush, vapid_key
from tidings.core.push import PushCall, WebhookCall
from tidings.core.types import Permanent
from tidings.outbound.guard import guarded_client
from tidings.testing import webpush as push_service
from tidings.testing.webhooks import RECEIVER, create_app
from tidings.testing.webpush import PUSH_SERVICE

KEY = vapid_key("test-secret")


@pytest.fixture
async def redirector(run_app):
    """A server that answers every request with a redirect to ``target``, as a hostile endpoint would."""

    async def start(status: int, target: str) -> str:
        async def redirect(request: web.Request) -> web.Response:
            return web.Response(status=status, headers={"Location": target})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", redirect)
        return await run_app(app)

    return start


async def private_target(run_app):
    """Where the redirect points: a receiver that records anything reaching it."""
    app = create_app()
    return await run_app(app), app[RECEIVER]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_webhook_is_not_redirected(run_app, redirector, status):
    target, receiver = await private_target(run_app)
    source = await redirector(status, f"{target}/latest/meta-data")
    http = guarded_client(timeout=2.0, allow_private=True)  # the redirector is on loopback too
    try:
        outcome = await Webhooks(http).send(WebhookCall("dlv_1", f"{source}/hook", new_secret(), b"{}"))
    finally:
        await http.close()
    assert isinstance(outcome, Permanent) and outcome.error == f"http_{status}"
    assert receiver.received == []


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_web_push_is_not_redirected(run_app, redirector, status):
    target, receiver = await private_target(run_app)
    service = push_service.create_app()
    browser = service[PUSH_SERVICE].subscribe(await run_app(service))  # keys a browser would give
    source = await redirector(status, f"{target}/hook")
    endpoint = f"{source}/push/some-subscription"
    http = guarded_client(timeout=2.0, allow_private=True)
    try:
        call = PushCall("dlv_1", endpoint, browser.p256dh, browser.auth, b'{"title": "Hello"}')
        outcome = await WebPush(http, KEY, "mailto:ops@example.com").send(call)
    finally:
        await http.close()
    assert isinstance(outcome, Permanent) and outcome.error == f"http_{status}"
    assert "redirect" in outcome.message
    assert receiver.received == []


@pytest.mark.parametrize(
    "location", ["http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]/", "http://[::1]:9/x"]
)
async def test_the_outside_client_answers_any_redirect_as_final(redirector, location):
    source = await redirector(307, location)
    http = guarded_client(timeout=2.0, allow_private=True)
    try:
        for method in ("POST", "GET", "PUT"):
            outcome = await http.request(method, f"{source}/x", data=b"{}")
            assert isinstance(outcome, Permanent) and outcome.error == "http_307"
    finally:
        await http.close()
