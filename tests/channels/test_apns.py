"""The APNs channel against the APNs emulator over HTTP/2: token authentication, the request, and Apple's answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tidings.channels.apns import Apns, ApnsSettings, ProviderToken
from tidings.core.mobile import apns_id
from tidings.core.push import MobileCall
from tidings.core.types import Delivered, Permanent, Transient
from tidings.testing import apns as emulator

TEAM, KEY_ID, TOPIC = "TEAM123456", "KEY1234567", "com.example.app"
TOKEN = "ab" * 32
KEY = ec.generate_private_key(ec.SECP256R1())
PEM = KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()


def call(token: str = TOKEN, environment: str = "production", **fields) -> MobileCall:
    defaults = {"title": "Hello", "body": "World", "data": None, "priority": "normal", "ttl": 3600}
    return MobileCall(id="dlv_1.0", token=token, environment=environment, **{**defaults, **fields})


@pytest.fixture
async def start() -> AsyncIterator[Callable[..., Awaitable[emulator.Apns]]]:
    started: list[emulator.Apns] = []

    async def run(**options) -> emulator.Apns:
        service = emulator.Apns(team_id=TEAM, key_id=KEY_ID, public_key=KEY.public_key(), topic=TOPIC, **options)
        await service.start()
        started.append(service)
        return service

    yield run
    for service in started:
        await service.close()


@pytest.fixture
async def channels() -> AsyncIterator[Callable[..., Apns]]:
    made: list[Apns] = []

    def make(base_url: str, sandbox_url: str = "http://127.0.0.1:9", **settings) -> Apns:
        options = {"team_id": TEAM, "key_id": KEY_ID, "private_key": PEM, "topic": TOPIC, **settings}
        channel = Apns(ApnsSettings(base_url=base_url, sandbox_url=sandbox_url, **options))
        made.append(channel)
        return channel

    yield make
    for channel in made:
        await channel.close()


async def test_a_notification_reaches_apple_as_documented(start, channels):
    service = await start(min_token_interval=0)
    apns = channels(service.base_url)
    outcome = await apns.send(call(data={"k": "v"}, priority="high", collapse_key="news", badge=2, sound="default"))
    assert outcome == Delivered(apns_id("dlv_1.0")), "apns-id is the delivery's, the same on every retry"
    [sent] = service.notifications
    assert sent.token == TOKEN
    assert sent.payload == {"k": "v", "aps": {"alert": {"title": "Hello", "body": "World"}, "badge": 2,
                                              "sound": "default"}}  # fmt: skip
    assert sent.headers["apns-topic"] == TOPIC
    assert (sent.headers["apns-push-type"], sent.headers["apns-priority"]) == ("alert", "10")
    assert sent.headers["apns-collapse-id"] == "news"
    assert abs(int(sent.headers["apns-expiration"]) - (time.time() + 3600)) < 5


async def test_sandbox_tokens_go_to_the_sandbox_host(start, channels):
    production, sandbox = await start(), await start(environment="sandbox")
    apns = channels(production.base_url, sandbox.base_url)
    assert isinstance(await apns.send(call(environment="sandbox")), Delivered)
    assert isinstance(await apns.send(call()), Delivered)
    assert (len(sandbox.notifications), len(production.notifications)) == (1, 1)


async def test_one_provider_token_is_signed_as_apple_checks_it_and_shared(start, channels):
    service = await start()  # Apple's own 20-minute rule: a second token this soon would be refused
    apns = channels(service.base_url, connections=3)
    outcomes = await asyncio.gather(*(apns.send(call()) for _ in range(30)))
    assert all(isinstance(outcome, Delivered) for outcome in outcomes)
    token = apns.token.get(time.time())
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, KEY.public_key(), algorithms=["ES256"])
    assert (header["alg"], header["kid"], claims["iss"]) == ("ES256", KEY_ID, TEAM)


def test_the_provider_token_is_made_again_only_after_its_refresh_time():
    tokens = ProviderToken(KEY, KEY_ID, TEAM, refresh=1200)
    first = tokens.get(1000.0)
    assert tokens.get(2199.0) == first
    assert tokens.get(2200.0) != first
    current = tokens.get(2200.0)
    tokens.expired(first)  # a stale report of an older token changes nothing
    assert tokens.get(2201.0) == current
    tokens.expired(current)
    assert tokens.get(2202.0) != current


async def test_an_expired_provider_token_is_replaced_and_the_send_made_again(start, channels):
    service = await start(max_token_age=2, min_token_interval=0)
    apns = channels(service.base_url)
    assert isinstance(await apns.send(call()), Delivered)
    await asyncio.sleep(2.1)  # Apple now says ExpiredProviderToken to the token in use
    assert isinstance(await apns.send(call()), Delivered)
    assert len(service.notifications) == 2


async def test_too_many_token_updates_waits_a_minute(start, channels):
    service = await start()
    assert isinstance(await channels(service.base_url).send(call()), Delivered)
    outcome = await channels(service.base_url).send(call())  # another process, another token, too soon
    assert outcome == Transient("TooManyProviderTokenUpdates", outcome.message, 60.0)


@pytest.mark.parametrize(
    ("token", "error"),
    [("cd" * 32, "Unregistered"), ("not-hex", "BadDeviceToken")],
)
async def test_dead_and_malformed_tokens_fail_for_good(start, channels, token, error):
    service = await start(min_token_interval=0, dead=["cd" * 32])
    outcome = await channels(service.base_url).send(call(token=token))
    assert isinstance(outcome, Permanent) and outcome.error == error


async def test_configuration_mistakes_fail_for_good_saying_what_to_check(start, channels):
    service = await start(min_token_interval=0)
    wrong_topic = await channels(service.base_url, topic="com.example.other").send(call())
    assert isinstance(wrong_topic, Permanent) and wrong_topic.error == "BadTopic"
    other = ec.generate_private_key(ec.SECP256R1())
    pem = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()  # fmt: skip
    wrong_key = await channels(service.base_url, private_key=pem).send(call())
    assert wrong_key == Permanent("InvalidProviderToken", wrong_key.message)
    assert "team_id, key_id and private_key" in wrong_key.message


async def test_a_payload_over_4_kb_is_refused_before_it_is_sent(start, channels):
    service = await start(min_token_interval=0)
    outcome = await channels(service.base_url).send(call(data={"k": "v" * 5000}))
    assert isinstance(outcome, Permanent) and outcome.error == "PayloadTooLarge"
    assert service.requests == 0


async def test_throttling_and_outages_are_retried(start, channels):
    service = await start(min_token_interval=0, fail_first=1)
    apns = channels(service.base_url)
    assert (await apns.send(call())).error == "TooManyRequests"
    service.outage(5)
    outage = await apns.send(call())
    assert isinstance(outage, Transient) and outage.error == "ServiceUnavailable"


async def test_a_connection_apple_closed_is_replaced_without_failing_the_sends(start, channels):
    """APNs closes idle connections; the sends that find one dead go again at once on a new one."""
    first = await start(min_token_interval=0)
    apns = channels(first.base_url)
    assert isinstance(await apns.send(call()), Delivered)
    port = int(first.base_url.rsplit(":", 1)[1])
    await first.close()
    again = emulator.Apns(team_id=TEAM, key_id=KEY_ID, public_key=KEY.public_key(), topic=TOPIC, min_token_interval=0)
    await again.start(port=port)
    try:
        outcomes = await asyncio.gather(*(apns.send(call()) for _ in range(20)))
        assert all(isinstance(outcome, Delivered) for outcome in outcomes), outcomes
    finally:
        await again.close()


async def test_no_server_is_a_connection_error_worth_retrying(channels):
    outcome = await channels("http://127.0.0.1:9").send(call())
    assert isinstance(outcome, Transient) and outcome.error == "connection_error"


async def test_many_notifications_share_a_few_connections_at_once(start, channels):
    service = await start(min_token_interval=0, latency=0.3)
    apns = channels(service.base_url, connections=2)
    began = time.monotonic()
    outcomes = await asyncio.gather(*(apns.send(call(token=f"{n:064x}")) for n in range(200)))
    assert all(isinstance(outcome, Delivered) for outcome in outcomes)
    assert time.monotonic() - began < 1.5, "200 streams on 2 connections take about one latency, not 100"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"private_key": None}, "give private_key_file"),
        ({"private_key": "nonsense"}, "not a PEM private key"),
        ({"private_key": None, "private_key_file": "/nonexistent/AuthKey.p8"}, "cannot read"),
        ({"token_refresh": 600}, "greater than or equal to 1200"),
    ],
)
def test_settings_that_cannot_work_are_a_start_up_error(settings, message):
    options = {"team_id": TEAM, "key_id": KEY_ID, "private_key": PEM, "topic": TOPIC, **settings}
    with pytest.raises(ValueError, match=message):
        ApnsSettings(**options)


def test_a_key_given_in_an_environment_variable_may_hold_escaped_newlines():
    escaped = PEM.replace("\n", "\\n")
    assert "\n" not in escaped
    ApnsSettings(team_id=TEAM, key_id=KEY_ID, private_key=escaped, topic=TOPIC)
