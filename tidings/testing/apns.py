"""An Apple Push Notification service emulator: ``POST /3/device/{token}`` with the checks and answers Apple
documents for its provider API (token-based authentication, the ``apns-*`` headers, a JSON ``{"reason": ...}`` on
refusal, ``apns-id`` on every answer), for tests and benchmarks.

APNs speaks only HTTP/2, and aiohttp, which serves the other emulators, does not; so this one is served by
``tidings.testing.h2c`` over plain TCP with prior knowledge (h2c: no TLS, no Upgrade), which
``httpx.AsyncClient(http1=False, http2=True)`` or ``curl --http2-prior-knowledge`` reach, with
``SETTINGS_MAX_CONCURRENT_STREAMS`` at 1000. The same server answers the control routes of the other emulators
(``/_emulator/received``, ``reset``, ``outage``) and ``POST /_emulator/dead`` with a JSON list of device tokens to
unregister.

Injected failures answer 429 TooManyRequests; during an outage every request is answered 503 ServiceUnavailable.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from tidings.testing.emulator import Emulator
from tidings.testing.h2c import LENIENT, Answer, H2cServer

MAX_CONCURRENT_STREAMS = 1000
MAX_PAYLOAD = 4096
MAX_VOIP_PAYLOAD = 5120
"""Apple allows VoIP notifications 5 KB, every other kind 4 KB."""
MAX_COLLAPSE_ID = 64
TOPIC_SUFFIXES = {
    "alert": "",
    "background": "",
    "mdm": "",
    "location": ".location-query",
    "voip": ".voip",
    "complication": ".complication",
    "fileprovider": ".pushkit.fileprovider",
    "liveactivity": ".push-type.liveactivity",
    "pushtotalk": ".voip-ptt",
}
"""The push types Apple accepts, each with what it requires after the bundle id in ``apns-topic``."""
PRIORITIES = frozenset({"10", "5", "1"})
SANDBOX = frozenset({"sandbox", "development"})
"""Names of the development server, the only one that answers ``apns-unique-id``."""
DEVICE_PATH = "/3/device/"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DEVICE_TOKEN = re.compile(r"(?:[0-9a-fA-F]{2}){16,100}")
_INTEGER = re.compile(r"[0-9]+")
KeyLike = ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey | bytes | str
"""A signing key's public half, its private half, or the PEM of either."""
_BODY_LIMIT = MAX_VOIP_PAYLOAD + 1
"""Bytes of a request body kept: enough to tell that it is too large."""


@dataclass(frozen=True, slots=True)
class Notification:
    """One accepted notification, as Apple got it."""

    token: str
    headers: dict[str, str]
    """The ``apns-*`` headers of the request."""
    payload: dict[str, Any]
    at: float


def json_answer(status: int, body: Any, *headers: tuple[str, str]) -> Answer:
    text = json.dumps(body, separators=(",", ":")).encode()
    return Answer(status, [*headers, ("content-type", "application/json"), ("content-length", str(len(text)))], text)


def load_public_key(key: KeyLike) -> ec.EllipticCurvePublicKey:
    """The P-256 public key that provider tokens must verify against, from a key or the PEM of either half (Apple
    hands out the private half as ``AuthKey_<key id>.p8``)."""
    if isinstance(key, str):
        key = key.encode()
    if isinstance(key, bytes):
        key = cast(
            ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey,
            load_pem_private_key(key, None) if b"PRIVATE KEY" in key else load_pem_public_key(key),
        )
    if isinstance(key, ec.EllipticCurvePrivateKey):
        key = key.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("APNs signing keys are P-256 EC keys")
    return key


class Apns(Emulator):
    """One APNs server accepting one team's key for one app; ``received``, ``latency``, ``outage`` and the rest are
    the ``Emulator``'s."""

    def __init__(
        self,
        *,
        team_id: str,
        key_id: str,
        public_key: KeyLike,
        topic: str,
        environment: str = "production",
        max_token_age: float = 3600.0,
        min_token_interval: float = 1200.0,
        dead: Iterable[str] = (),
        latency: float = 0.0,
        failure_rate: float = 0.0,
        fail_first: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(latency=latency, failure_rate=failure_rate, fail_first=fail_first, seed=seed)
        if environment not in SANDBOX | {"production"}:
            raise ValueError(f"environment is production or sandbox, not {environment!r}")
        self.team_id, self.key_id, self.topic, self.environment = team_id, key_id, topic, environment
        self.key = load_public_key(public_key)
        self.max_token_age = max_token_age
        """Apple refuses a provider token whose ``iat`` is older than an hour."""
        self.min_token_interval = min_token_interval
        """Apple refuses a new provider token sooner than 20 minutes after the previous new one."""
        self.notifications: list[Notification] = []
        self.dead: dict[str, int] = {}
        """Unregistered device tokens, each with when it was, in milliseconds since the epoch."""
        for token in dead:
            self.kill(token)
        self._verdicts: dict[str, float | None] = {}
        """Each provider token seen: its ``iat`` when it verifies, None when not; a signature is checked once."""
        self._tokens: set[str] = set()
        self._last_new_token = float("-inf")
        self._http = H2cServer(self.answer, max_concurrent_streams=MAX_CONCURRENT_STREAMS, body_limit=_BODY_LIMIT)

    @property
    def base_url(self) -> str:
        if not self._http.base_url:
            raise RuntimeError("the emulator is not started")
        return self._http.base_url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0: any free port) and answer ``http://host:port``."""
        return await self._http.start(host, port)

    async def close(self) -> None:
        """Stop listening, say GOAWAY to every client, and wait for the requests in hand to be cancelled."""
        await self._http.close()

    def kill(self, token: str) -> None:
        """From now on the device token answers 410 Unregistered, as after the app was removed."""
        self.dead.setdefault(token, int(time.time() * 1000))

    def reset(self) -> None:
        """Forget what was accepted and the provider tokens seen, so a new run may start with a new token."""
        super().reset()
        self.notifications.clear()
        self._verdicts.clear()
        self._tokens.clear()
        self._last_new_token = float("-inf")

    async def answer(self, headers: dict[str, str], body: bytes) -> Answer:
        path = headers.get(":path", "")
        if path.startswith("/_emulator/"):
            return self._control(headers.get(":method", ""), path, body)
        return await self._notify(headers, path, body)

    async def _notify(self, headers: dict[str, str], path: str, body: bytes) -> Answer:
        apns_id = headers.get("apns-id", "")
        echo = apns_id if _UUID.fullmatch(apns_id) else str(uuid.uuid4())

        def refuse(status: int, reason: str, **extra: Any) -> Answer:
            return json_answer(status, {"reason": reason, **extra}, ("apns-id", echo))

        down = time.monotonic() < self.down_until
        failing = await self.arrive()
        if down:
            return refuse(503, "ServiceUnavailable")
        if not path.startswith(DEVICE_PATH) or "/" in path[len(DEVICE_PATH) :]:
            return refuse(404, "BadPath")
        if headers.get(":method") != "POST":
            return refuse(405, "MethodNotAllowed")
        token = path[len(DEVICE_PATH) :]
        problem = self._provider_problem(headers.get("authorization", ""))
        if problem is not None:
            return refuse(*problem)
        topic, push_type = headers.get("apns-topic"), headers.get("apns-push-type")
        if not topic:
            return refuse(400, "MissingTopic")
        if push_type is not None and push_type not in TOPIC_SUFFIXES:
            return refuse(400, "InvalidPushType")
        suffixes = TOPIC_SUFFIXES.values() if push_type is None else (TOPIC_SUFFIXES[push_type],)
        if not topic.startswith(self.topic) or topic[len(self.topic) :] not in suffixes:
            return refuse(400, "BadTopic")
        priority = headers.get("apns-priority")
        if priority is not None and (priority not in PRIORITIES or (priority == "10" and push_type == "background")):
            return refuse(400, "BadPriority")
        if not _INTEGER.fullmatch(headers.get("apns-expiration", "0")):
            return refuse(400, "BadExpirationDate")
        if len(headers.get("apns-collapse-id", "").encode(*LENIENT)) > MAX_COLLAPSE_ID:
            return refuse(400, "BadCollapseId")
        if apns_id and apns_id != echo:
            return refuse(400, "BadMessageId")
        if not token:
            return refuse(400, "MissingDeviceToken")
        if not _DEVICE_TOKEN.fullmatch(token):
            return refuse(400, "BadDeviceToken")
        if token in self.dead:
            return refuse(410, "Unregistered", timestamp=self.dead[token])
        if not body:
            return refuse(400, "PayloadEmpty")
        if len(body) > (MAX_VOIP_PAYLOAD if push_type == "voip" else MAX_PAYLOAD):
            return refuse(413, "PayloadTooLarge")
        try:
            text = body.decode()
            payload = json.loads(text)
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("aps"), dict):
            return refuse(400, "PayloadEmpty")  # the nearest reason Apple documents for a payload without aps
        if failing:
            return refuse(429, "TooManyRequests")
        self.accept(token, text, echo)
        apns = {name: value for name, value in headers.items() if name.startswith("apns-")}
        self.notifications.append(Notification(token, apns, payload, time.time()))
        answer = [("apns-id", echo)]
        if self.environment in SANDBOX:
            answer.append(("apns-unique-id", str(uuid.uuid4())))
        return Answer(200, answer)

    def _provider_problem(self, authorization: str) -> tuple[int, str] | None:
        """Why Apple would refuse this ``authorization`` header, as (status, reason), or None."""
        if not authorization:
            return 403, "MissingProviderToken"
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return 403, "InvalidProviderToken"
        token = token.strip()
        if not token:
            return 403, "MissingProviderToken"
        if token not in self._verdicts:
            self._verdicts[token] = self._issued_at(token)
        issued_at = self._verdicts[token]
        if issued_at is None:
            return 403, "InvalidProviderToken"
        if time.time() - issued_at > self.max_token_age:
            return 403, "ExpiredProviderToken"
        if token not in self._tokens:
            now = time.monotonic()
            if now - self._last_new_token < self.min_token_interval:
                return 429, "TooManyProviderTokenUpdates"
            self._tokens.add(token)
            self._last_new_token = now
        return None

    def _issued_at(self, token: str) -> float | None:
        """The ``iat`` of a provider token signed with ES256 by our key for our team, else None."""
        try:
            # Only the signature, so that the verdict holds for good; the age of iat is checked on every request.
            options: jwt.types.Options = {"verify_exp": False, "verify_nbf": False, "verify_iat": False}
            decoded = jwt.decode_complete(token, self.key, algorithms=["ES256"], options=options)
        except jwt.PyJWTError:
            return None
        issued_at = decoded["payload"].get("iat")
        if (
            decoded["header"].get("kid") != self.key_id
            or decoded["payload"].get("iss") != self.team_id
            or not isinstance(issued_at, int | float)
            or isinstance(issued_at, bool)
        ):
            return None
        return float(issued_at)

    def _control(self, method: str, path: str, body: bytes) -> Answer:
        url = urlsplit(path)
        route = (method, url.path)
        if route == ("GET", "/_emulator/received"):
            return json_answer(200, [asdict(message) for message in self.received])
        if route == ("POST", "/_emulator/reset"):
            self.reset()
            return json_answer(200, {"ok": True})
        if route == ("POST", "/_emulator/outage"):
            try:
                seconds = float(parse_qs(url.query)["seconds"][0])
            except (KeyError, ValueError):
                return json_answer(400, {"error": "?seconds=<number> says how long"})
            self.outage(seconds)
            return json_answer(200, {"ok": True, "seconds": seconds})
        if route == ("POST", "/_emulator/dead"):
            try:
                tokens = json.loads(body)
            except ValueError:
                tokens = None
            if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
                return json_answer(400, {"error": "the body is a JSON list of device tokens"})
            for token in tokens:
                self.kill(token)
            return json_answer(200, {"ok": True, "dead": len(self.dead)})
        return json_answer(404, {"error": f"no route {method} {url.path}"})


async def serve_forever(host: str = "127.0.0.1", port: int = 9010, **options: Any) -> None:
    """Run one ``Apns(**options)`` on ``host:port`` until cancelled, as ``python -m tidings.testing apns`` does."""
    apns = Apns(**options)
    await apns.start(host, port)
    try:
        await asyncio.Event().wait()
    finally:
        await apns.close()
