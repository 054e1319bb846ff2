"""Apple's Push Notification service: notifications to iPhone apps over HTTP/2, with token authentication.

Apple speaks HTTP/2 only, which aiohttp does not, so this channel has its own client: httpx with h2, a few
connections per host, each carrying many streams at once (Apple lets one connection hold hundreds), picked in turn.
An ``http://`` base URL (a local emulator) is spoken as HTTP/2 with prior knowledge.

The provider token is an ES256 JWT signed with the team's ``.p8`` key. Apple refuses one older than an hour
(``ExpiredProviderToken``) and one replaced more often than every 20 minutes (``TooManyProviderTokenUpdates``), so
one token is shared by every send and made anew every ``token_refresh`` seconds, or at once when Apple says it
expired.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import Field, SecretStr, field_validator, model_validator

from tidings.core.mobile import APNS_MAX_PAYLOAD, apns_request
from tidings.core.push import MobileCall
from tidings.core.settings import NumbersAreNotTruths, http_url
from tidings.core.types import Delivered, Permanent, SendOutcome, Transient

PRODUCTION = "https://api.push.apple.com"
SANDBOX = "https://api.sandbox.push.apple.com"

FINAL = {
    "BadDeviceToken": "the token is not a device token of this app's environment (production or sandbox)",
    "DeviceTokenNotForTopic": "the token belongs to another app than providers.apns.topic",
    "Unregistered": "the app was uninstalled, or its user turned notifications off",
    "ExpiredToken": "the device token has expired",
    "PayloadTooLarge": f"the notification is over {APNS_MAX_PAYLOAD} bytes",
    "Forbidden": "Apple refuses this team's key the request: check its capabilities in the developer account",
    "InvalidProviderToken": "Apple does not accept the provider token: check providers.apns team_id, key_id and"
    " private_key",
    "BadTopic": "providers.apns.topic is not a topic this key may send to",
    "TopicDisallowed": "providers.apns.topic is not allowed",
}
"""Reasons that a second try would only repeat (and why, for an operator reading ``last_error``)."""
RETRIED = frozenset({"TooManyRequests", "TooManyProviderTokenUpdates", "IdleTimeout", "InternalServerError",
                     "ServiceUnavailable", "Shutdown"})  # fmt: skip
"""Reasons worth another try later (besides any 429 or 5xx)."""


class ApnsSettings(NumbersAreNotTruths):
    """``[providers.apns]``."""

    base_url: str = PRODUCTION
    """Where production tokens go."""
    sandbox_url: str = SANDBOX
    """Where sandbox tokens (development builds) go."""
    team_id: str = Field(min_length=1, max_length=64)
    key_id: str = Field(min_length=1, max_length=64)
    private_key_file: str | None = None
    private_key: SecretStr | None = None
    topic: str = Field(min_length=1, max_length=255)
    """The app's bundle id."""
    connections: int = Field(2, ge=1, le=64)
    """HTTP/2 connections per host; each carries up to what Apple allows of streams at once."""
    concurrency: int = Field(1000, ge=1)
    """Notifications in flight in all."""
    token_refresh: float = Field(3000, ge=1200, le=3600)
    """Seconds a provider token is used before a new one is made (Apple: between 20 and 60 minutes)."""
    timeout: float = Field(10, gt=0)

    model_config = {"extra": "forbid"}

    @field_validator("base_url", "sandbox_url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        return http_url(value).rstrip("/")

    @model_validator(mode="after")
    def _one_key(self) -> ApnsSettings:
        if (self.private_key_file is None) == (self.private_key is None):
            raise ValueError("give private_key_file (the .p8 file) or private_key (its text), not both")
        signing_key(self)  # a key that cannot be read is a start-up error, not a failure of every notification
        return self


def signing_key(settings: ApnsSettings) -> ec.EllipticCurvePrivateKey:
    """The team's key from its ``.p8`` file or its text (an environment variable may hold ``\\n`` for newlines)."""
    if settings.private_key_file is not None:
        try:
            pem = Path(settings.private_key_file).read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read private_key_file {settings.private_key_file!r}: {exc.strerror}") from None
    else:
        assert settings.private_key is not None
        pem = settings.private_key.get_secret_value().replace("\\n", "\n").encode()
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ValueError("the APNs private key is not a PEM private key (the .p8 file Apple gives)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("the APNs private key must be a P-256 (ES256) key, as Apple's .p8 keys are")
    return key


class ProviderToken:
    """The JWT every request carries, made again every ``refresh`` seconds, or sooner once Apple says it expired."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, key_id: str, team_id: str, refresh: float) -> None:
        self.key = key
        self.key_id = key_id
        self.team_id = team_id
        self.refresh = refresh
        self._current: tuple[float, str] | None = None

    def get(self, now: float) -> str:
        if self._current is None or now - self._current[0] >= self.refresh:
            claims = {"iss": self.team_id, "iat": int(now)}
            self._current = (now, jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": self.key_id}))
        return self._current[1]

    def expired(self, token: str) -> None:
        """Apple says ``token`` is too old: the next send makes a new one (unless another send already did)."""
        if self._current is not None and self._current[1] == token:
            self._current = None


class Apns:
    name = "apns"

    def __init__(self, settings: ApnsSettings) -> None:
        self.settings = settings
        self.token = ProviderToken(signing_key(settings), settings.key_id, settings.team_id, settings.token_refresh)
        self._hosts = {"production": settings.base_url, "sandbox": settings.sandbox_url}
        self._pools: dict[str, itertools.cycle[httpx.AsyncClient]] = {}
        self._clients: list[httpx.AsyncClient] = []

    async def send(self, call: MobileCall) -> SendOutcome:
        now = time.time()
        headers, payload = apns_request(call, self.settings.topic, now)
        if len(payload) > APNS_MAX_PAYLOAD:
            return Permanent("PayloadTooLarge", FINAL["PayloadTooLarge"])
        host = self._hosts["sandbox" if call.environment == "sandbox" else "production"]
        url = f"{host}/3/device/{call.token}"
        new_token = new_connection = False  # each at most once: a send is tried at most three times here
        while True:
            token = self.token.get(now)
            try:
                answer = await self._client(host).post(
                    url, content=payload, headers={**headers, "authorization": f"bearer {token}"}
                )
            except httpx.TimeoutException:
                return Transient("timeout", "no answer from APNs in time")
            except (httpx.ConnectError, httpx.WriteError) as exc:
                # The request never left. A connection Apple closed while idle is found dead only when written to,
                # and then every send waiting on it fails at once: each goes again, on a new connection.
                if new_connection:
                    return Transient("connection_error", f"{type(exc).__name__} talking to APNs")
                new_connection = True
                continue
            except httpx.TransportError as exc:
                return Transient("connection_error", f"{type(exc).__name__} talking to APNs")
            if answer.status_code == 200:
                return Delivered(answer.headers.get("apns-id"))
            reason = _reason(answer)
            if reason != "ExpiredProviderToken" or new_token:
                return _outcome(answer.status_code, reason)
            new_token = True
            self.token.expired(token)
            now = time.time()

    def _client(self, host: str) -> httpx.AsyncClient:
        """The next connection to ``host``, in turn."""
        pool = self._pools.get(host)
        if pool is None:
            clients = [self._new_client() for _ in range(self.settings.connections)]
            self._clients += clients
            pool = self._pools[host] = itertools.cycle(clients)
        return next(pool)

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            http1=False,
            http2=True,
            timeout=httpx.Timeout(self.settings.timeout),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            follow_redirects=False,
        )

    async def close(self) -> None:
        for client in self._clients:
            await client.aclose()
        self._clients.clear()
        self._pools.clear()


def _reason(answer: httpx.Response) -> str:
    try:
        body: Any = answer.json()
    except ValueError:
        body = None
    reason = body.get("reason") if isinstance(body, dict) else None
    return reason if isinstance(reason, str) and reason else f"http_{answer.status_code}"


TOKEN_UPDATES_PAUSE = 60.0
"""Seconds to wait after Apple said the provider token changed too often (it wants 20 minutes between changes)."""


def _outcome(status: int, reason: str) -> Transient | Permanent:
    if reason == "TooManyProviderTokenUpdates":
        return Transient(reason, "APNs: the provider token changed too often", TOKEN_UPDATES_PAUSE)
    if reason == "ExpiredProviderToken":
        return Transient(reason, "APNs refused a new provider token as expired: is the clock right?")
    if reason in RETRIED or status == 429 or status >= 500:
        return Transient(reason, f"APNs answered {status} {reason}")
    return Permanent(reason, FINAL.get(reason, f"APNs answered {status} {reason}"))
