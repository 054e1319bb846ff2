"""Twilio Verify's routes on a real tidings: the settings that turn them on, and Twilio's own Python library pointed
at the server on loopback (never at api.twilio.com: its HTTP client refuses any other host)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from tests.conftest import ROOT_KEY, merge
from tests.helpers import TEST_CONFIG

ACCOUNT = "AC" + "a1" * 16
SERVICE = "VA" + "b2" * 16
COMPAT = {"twilio_compat": {"account_sid": ACCOUNT, "service_sid": SERVICE}}
CONFIG = merge(TEST_CONFIG, COMPAT)
"""Twilio's routes on, and the test number (a fixed code, nothing sent)."""
LIMITS = merge(
    COMPAT,
    {"verify": {"max_checks": 2, "max_sends": 2, "resend_cooldown": 0}, "limits": {"per_number_hour": 0}},
)
"""Low limits for a normal number, whose codes the console provider 'sends'."""


class LoopbackOnly(TwilioHttpClient):
    """Twilio's own HTTP client, which refuses to send anywhere but the loopback address and keeps what it sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        host = urlsplit(url).hostname
        if host != "127.0.0.1":
            raise AssertionError(f"a test's Twilio client asked for {url}: only 127.0.0.1 may be reached")
        self.sent.append((method, url))
        return super().request(method, url, *args, **kwargs)


def twilio_client(base_url: str, key: str = ROOT_KEY, account: str = ACCOUNT) -> tuple[Client, LoopbackOnly]:
    """The official client, pointed at tidings as docs/twilio.md says: ``verify.base_url``, no region or edge."""
    http = LoopbackOnly()
    client = Client(account, key, http_client=http)
    client.region = client.edge = None  # TWILIO_REGION / TWILIO_EDGE in the environment would rename the host
    client.verify.base_url = base_url.rstrip("/")
    return client, http
