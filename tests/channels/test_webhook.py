"""Webhooks against a receiver on loopback, through a real HTTP client: what is signed, how answers read, and how a
failing or saturated host is kept from holding up everything else."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest
from aiohttp import web
from standardwebhooks import Webhook

from tests.channels.conftest import new_secret
from tests.helpers import eventually
from tidings.channels.webhook import Webhooks
from tidings.core.push import WebhookCall
from tidings.core.types import Deferred, Delivered, Permanent, Transient
from tidings.core.webhook_secrets import valid as valid_secret
from tidings.outbound.client import HttpClient
from tidings.outbound.guard import guarded_client
from tidings.testing.webhooks import RECEIVER, Receiver, create_app

SECRET = new_secret()
BODY = json.dumps({"id": "msg_1", "title": "Hello", "body": "Ünïcode ✓"}, ensure_ascii=False).encode()


class Clock:
    """Real time that a test can push forward, so signatures stay fresh while cooldowns pass in an instant."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def receiver(run_app) -> tuple[str, Receiver]:
    app = create_app(secret_for=lambda path: SECRET)
    return await run_app(app), app[RECEIVER]


def call(url: str, id: str = "dlv_1", secret: str = SECRET) -> WebhookCall:
    return WebhookCall(id, f"{url}/hook", secret, BODY)


def webhooks(http: HttpClient, clock: Clock, **options) -> Webhooks:
    return Webhooks(http, clock=clock, **options)


async def test_a_delivery_is_signed_as_standard_webhooks_says(http, clock, receiver):
    url, state = receiver
    assert await webhooks(http, clock).send(call(url)) == Delivered()
    [hook] = state.received
    assert hook.verified is True
    assert Webhook(SECRET).verify(hook.body, hook.headers) == json.loads(BODY)
    assert hook.headers["webhook-id"] == "dlv_1"
    assert hook.headers["webhook-timestamp"] == str(int(clock.now))
    assert hook.headers["webhook-signature"].startswith("v1,")
    assert hook.headers["content-type"] == "application/json"
    assert hook.headers["user-agent"] == "tidings"
    assert hook.body == BODY


async def test_a_retry_carries_the_same_webhook_id(http, clock, receiver):
    url, state = receiver
    sender = webhooks(http, clock)
    state.status = 500
    assert isinstance(await sender.send(call(url)), Transient)
    state.status = None
    clock.now += 5
    assert await sender.send(call(url)) == Delivered()
    assert state.ids() == ["dlv_1", "dlv_1"]
    assert [hook.verified for hook in state.received] == [True, True]
    assert state.received[0].headers["webhook-signature"] != state.received[1].headers["webhook-signature"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Delivered),
        (202, Delivered),
        (500, Transient),
        (503, Transient),
        (408, Permanent),
        (429, Transient),
        (410, Permanent),
        (400, Permanent),
        (404, Permanent),
        (301, Permanent),
        (302, Permanent),
        (307, Permanent),
        (308, Permanent),
    ],
)
async def test_answers(http, clock, receiver, status, expected):
    url, state = receiver
    state.status = status
    outcome = await webhooks(http, clock).send(call(url))
    assert isinstance(outcome, expected)
    if expected is not Delivered:
        assert outcome.error == f"http_{status}"
    assert [hook.path for hook in state.received] == ["/hook"], "a redirect is not followed"


async def test_retry_after_is_passed_on(http, clock, run_app):
    async def slow_down(request: web.Request) -> web.Response:
        return web.Response(status=429, headers={"Retry-After": "7"})

    app = web.Application()
    app.router.add_post("/hook", slow_down)
    outcome = await webhooks(http, clock).send(call(await run_app(app)))
    assert outcome == Transient("http_429", "", 7.0)


async def test_a_dead_host_is_a_transient_failure(http, clock, receiver):
    url, state = receiver
    state.dead = True
    outcome = await webhooks(http, clock).send(call(url))
    assert isinstance(outcome, Transient) and outcome.error == "connection_error"


async def test_the_circuit_opens_after_repeated_failures_and_probes_after_the_cooldown(http, clock, receiver):
    url, state = receiver
    host = url.removeprefix("http://")
    sender = webhooks(http, clock, breaker_threshold=3, breaker_cooldown=30)
    state.status = 500
    for _ in range(3):
        assert isinstance(await sender.send(call(url)), Transient)
    assert sender.breakers() == {host: "closed", f"{url}/hook": "open"}, "the host answers; the endpoint fails"

    outcome = await sender.send(call(url))
    assert outcome == Deferred("circuit_open", clock.now + 30, outcome.message)
    assert len(state.received) == 3, "nothing is sent while the circuit is open"

    clock.now += 30
    assert isinstance(await sender.send(call(url)), Transient), "the probe goes, and fails"
    assert len(state.received) == 4
    clock.now += 1
    assert (await sender.send(call(url))).until == clock.now + 59, "the cooldown doubled"

    clock.now += 59
    state.status = None
    assert await sender.send(call(url)) == Delivered()
    assert await sender.send(call(url)) == Delivered()
    assert len(state.received) == 6
    assert sender.breakers() == {}, "a healthy host is forgotten"


async def test_a_failing_endpoint_does_not_hold_up_the_hosts_others(http, clock, run_app):
    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500)

    async def fine(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/broken", broken)
    app.router.add_post("/fine", fine)
    url = await run_app(app)
    sender = webhooks(http, clock, breaker_threshold=2)
    for _ in range(2):
        assert isinstance(await sender.send(WebhookCall("dlv_1", f"{url}/broken", SECRET, BODY)), Transient)
    assert isinstance(await sender.send(WebhookCall("dlv_1", f"{url}/broken", SECRET, BODY)), Deferred)
    assert await sender.send(WebhookCall("dlv_2", f"{url}/fine", SECRET, BODY)) == Delivered()


async def test_a_host_that_does_not_answer_holds_up_all_its_endpoints(http, clock, receiver):
    url, state = receiver
    sender = webhooks(http, clock, breaker_threshold=2)
    state.dead = True
    for _ in range(2):
        assert (await sender.send(call(url))).error == "connection_error"
    outcome = await sender.send(WebhookCall("dlv_2", f"{url}/another", SECRET, BODY))
    assert isinstance(outcome, Deferred) and outcome.error == "circuit_open"
    assert sender.breakers() == {url.removeprefix("http://"): "open"}


async def test_while_a_probe_is_out_others_wait(http, clock, receiver):
    url, state = receiver
    sender = webhooks(http, clock, breaker_threshold=1, breaker_cooldown=10)
    state.status = 502
    await sender.send(call(url))
    clock.now += 10
    state.status, state.latency = None, 0.3
    arrived = len(state.received)
    probe = asyncio.create_task(sender.send(call(url, "dlv_probe")))
    await eventually(lambda: len(state.received) == arrived + 1)  # the probe is out
    outcome = await sender.send(call(url, "dlv_other"))
    assert isinstance(outcome, Deferred) and outcome.error == "circuit_open"
    assert await probe == Delivered()
    assert state.ids() == ["dlv_1", "dlv_probe"]


@pytest.mark.parametrize("status", [410, 400, 429])
async def test_answers_that_are_not_the_hosts_fault_keep_the_circuit_closed(http, clock, receiver, status):
    url, state = receiver
    sender = webhooks(http, clock, breaker_threshold=2)
    state.status = status
    for _ in range(4):
        assert not isinstance(await sender.send(call(url)), Deferred)
    assert len(state.received) == 4
    assert "open" not in sender.breakers().values()


async def test_a_saturated_host_defers_instead_of_queueing_without_end(http, clock, receiver):
    url, state = receiver
    state.latency = 0.3
    sender = webhooks(http, clock, per_host_concurrency=1)
    first = asyncio.create_task(sender.send(call(url, "dlv_a")))
    second = asyncio.create_task(sender.send(call(url, "dlv_b")))
    await eventually(lambda: len(state.received) == 1)  # the first is in flight, the second waits for its slot
    outcome = await sender.send(call(url, "dlv_c"))
    assert outcome == Deferred("host_busy", clock.now + 1, outcome.message)
    assert await first == Delivered() and await second == Delivered()
    assert state.ids() == ["dlv_a", "dlv_b"]


async def test_the_rate_sleeps_through_short_waits_and_defers_long_ones(http, clock, receiver):
    url, state = receiver
    sender = webhooks(http, clock, per_host_rate=2)
    started = time.monotonic()
    for id in ("dlv_a", "dlv_b", "dlv_c"):
        assert await sender.send(call(url, id)) == Delivered()
    assert time.monotonic() - started >= 0.45, "the third waited its half second"
    outcome = await sender.send(call(url, "dlv_d"))
    assert outcome == Deferred("rate_limited", clock.now + 1, outcome.message)
    assert len(state.received) == 3


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "10.0.0.1", "169.254.169.254", "[::ffff:127.0.0.1]"])
async def test_a_private_literal_is_refused(http, clock, receiver, host):
    url, state = receiver
    port = url.rsplit(":", 1)[1]
    guarded = guarded_client(5.0, allow_private=False)
    try:
        outcome = await webhooks(guarded, clock).send(call(f"http://{host}:{port}"))
    finally:
        await guarded.close()
    assert isinstance(outcome, Permanent) and outcome.error == "private_address"
    assert state.received == []


@pytest.mark.parametrize(
    ("scheme", "secret", "error"),
    [
        ("ftp", SECRET, "invalid_url"),
        ("http", "", "invalid_secret"),
        ("http", "whsec_", "invalid_secret"),
        ("http", "whsec_a", "invalid_secret"),
        ("http", SECRET.removeprefix("whsec_"), "invalid_secret"),
    ],
)
async def test_what_cannot_be_sent_is_refused_without_a_request(http, clock, receiver, scheme, secret, error):
    url, state = receiver
    outcome = await webhooks(http, clock).send(call(url.replace("http", scheme, 1), secret=secret))
    assert isinstance(outcome, Permanent) and outcome.error == error
    assert state.received == []


async def test_a_url_that_does_not_parse_is_refused(http, clock):
    outcome = await webhooks(http, clock).send(WebhookCall("dlv_1", "http://[::1", SECRET, BODY))
    assert isinstance(outcome, Permanent) and outcome.error == "invalid_url"


def test_secrets():
    secret = new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 24
    assert valid_secret(secret) and new_secret() != secret
    assert valid_secret("whsec_" + base64.b64encode(bytes(64)).decode())
    assert valid_secret("whsec_" + base64.b64encode(bytes(32)).decode().rstrip("="))
    assert valid_secret("whsec_" + base64.b64encode(b"test-secret").decode()), "short, but the caller's choice"
    for wrong in (
        secret[6:],
        "whsec_",
        "whsec_" + base64.b64encode(bytes(257)).decode(),
        "whsec_" + "!" * 32,
    ):
        assert not valid_secret(wrong), wrong
