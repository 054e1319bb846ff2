"""Subscribers: where they can be reached, checked; webhook secrets made when not given, and sealed at rest."""

from __future__ import annotations

import pytest

from tidings.core import webhook_secrets
from tidings.core.push import ChannelType
from tidings.errors import InvalidInput, NotFound, Unprocessable
from tidings.services.subscribers import SubscriberInput, Subscribers, WebhookInput

HOOK = "https://8.8.8.8/in"
"""A public address, written as one: nothing is looked up (nor sent: the service only checks it)."""


@pytest.fixture
def subscribers(backend, sealer) -> Subscribers:
    return Subscribers(backend.push, sealer, allow_private=False, region="GB")


def with_hook(url: str = HOOK, secret: str | None = None) -> SubscriberInput:
    return SubscriberInput(webhooks=(WebhookInput(url, secret),), channel_order=(ChannelType.WEBHOOK,))


async def test_a_webhook_gets_a_secret_kept_sealed_and_kept_again_on_replace(subscribers, backend):
    made, created = await subscribers.put("ada", with_hook())
    secret = made.webhooks[0].secret
    assert created and webhook_secrets.valid(secret)
    stored = await backend.push.get_subscriber("ada")
    assert stored.webhooks[0].secret != secret, "sealed at rest"
    replaced, created = await subscribers.put("ada", with_hook())
    assert not created and replaced.webhooks[0].secret == secret


async def test_addresses_are_read_against_the_region(subscribers):
    made, _ = await subscribers.put("bob", SubscriberInput(phone="07700 900123", email="Bob@Example.com"))
    assert (made.phone, made.email) == ("+447700900123", "bob@example.com")


@pytest.mark.parametrize(
    ("given", "error"),
    [
        (with_hook("http://127.0.0.1/in"), Unprocessable),
        (with_hook("ftp://8.8.8.8/in"), InvalidInput),
        (with_hook(secret="whsec_"), InvalidInput),
        (SubscriberInput(phone="12"), InvalidInput),
    ],
)
async def test_what_cannot_be_reached_is_refused(subscribers, given, error):
    with pytest.raises(error):
        await subscribers.put("ada", given)


async def test_an_unknown_subscriber_is_not_found(subscribers):
    with pytest.raises(NotFound):
        await subscribers.get("nobody")
    with pytest.raises(InvalidInput):
        await subscribers.get("no spaces")
