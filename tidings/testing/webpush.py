"""A Web Push service emulator: ``POST /push/{token}`` checked as push services check it (RFC 8030, RFC 8292) and
decrypted as the subscribed browser would (RFC 8291), so a test reads what the browser got.

``app[PUSH_SERVICE].subscribe(base_url)`` plays the browser's ``pushManager.subscribe()``; from another process,
``POST /_emulator/subscribe`` does the same and answers the subscription's JSON. Injected failures answer 429 with
``Retry-After``. A body the browser cannot decrypt is refused with 400, where a real service would take it and the
browser drop it unseen, so that the mistake shows in a test.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import jwt

from tidings.core import b64
from tidings.testing.emulator import Emulator, application

MAX_BODY = 4096
MAX_EXP = 24 * 3600
"""RFC 8292 section 2: push services refuse a token that expires more than 24 hours ahead."""
URGENCIES = frozenset({"very-low", "low", "normal", "high"})
_INTEGER = re.compile(r"[0-9]+")


@dataclass
class BrowserSubscription:
    """What ``pushManager.subscribe()`` gives a page, plus what only the browser holds: the keys to decrypt with."""

    endpoint: str
    p256dh: str
    auth: str = field(repr=False)
    token: str
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    application_server_key: str | None = None
    """When set, only messages signed with this VAPID key are accepted, as for a real subscription."""
    messages: list[bytes] = field(default_factory=list, repr=False)
    """Every payload the browser decrypted, in order."""

    def to_json(self) -> dict[str, Any]:
        """As ``PushSubscription.toJSON()`` in the browser."""
        return {"endpoint": self.endpoint, "expirationTime": None, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


class PushService:
    def __init__(self) -> None:
        self.subscriptions: dict[str, BrowserSubscription] = {}
        self.gone: set[str] = set()

    def subscribe(self, base_url: str, application_server_key: str | None = None) -> BrowserSubscription:
        key = ec.generate_private_key(ec.SECP256R1())
        token = secrets.token_urlsafe(16)
        subscription = BrowserSubscription(
            endpoint=f"{base_url.rstrip('/')}/push/{token}",
            p256dh=b64.encode(key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)),
            auth=b64.encode(os.urandom(16)),
            token=token,
            private_key=key,
            application_server_key=application_server_key,
        )
        self.subscriptions[token] = subscription
        return subscription

    def unsubscribe(self, token_or_endpoint: str) -> None:
        """From now on the endpoint answers 410 Gone, as after the user revoked the permission."""
        token = token_or_endpoint.rstrip("/").rsplit("/", 1)[-1]
        if self.subscriptions.pop(token, None) is not None:
            self.gone.add(token)


PUSH_SERVICE = web.AppKey("push_service", PushService)


def refuse(status: int, reason: str, **headers: str) -> web.Response:
    return web.json_response({"code": status, "error": reason}, status=status, headers=headers)


def vapid_problem(request: web.Request, subscription: BrowserSubscription) -> web.Response | None:
    """Why the push service would refuse this sender, or None; 401 when the token does not verify, 403 when it
    verifies but does not hold for this request or this subscription."""
    scheme, _, params = request.headers.get("Authorization", "").partition(" ")
    fields = dict(part.strip().partition("=")[::2] for part in params.split(","))
    token, key = fields.get("t", ""), fields.get("k", "")
    if scheme.lower() != "vapid" or not token or not key:
        return refuse(401, "expected Authorization: vapid t=<JWT>, k=<public key>")
    try:
        header, claims = (json.loads(b64.decode(part)) for part in token.split(".")[:2])
        jwt.decode(token, key)
    except (InvalidSignature, ValueError):
        return refuse(401, "the JWT is malformed or its signature does not verify against k")
    if not isinstance(header, dict) or header.get("alg") != "ES256" or not isinstance(claims, dict):
        return refuse(401, "the JWT must be signed with ES256")
    if subscription.application_server_key and b64.decode(key) != b64.decode(subscription.application_server_key):
        return refuse(403, "k is not the applicationServerKey this subscription was made with")
    if claims.get("aud") != str(request.url.origin()):
        return refuse(403, f"aud must be {request.url.origin()}")
    exp, now = claims.get("exp"), time.time()
    if not isinstance(exp, int | float) or not now < exp <= now + MAX_EXP:
        return refuse(403, "exp must be in the future and at most 24 hours ahead")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        return refuse(403, "sub (a mailto: or https: contact) is required")
    return None


def create_app(retry_after: int = 1, **options: Any) -> web.Application:
    """A push service; ``retry_after``: seconds in the ``Retry-After`` of injected 429s; ``options`` go to
    ``Emulator`` (latency, failure_rate, fail_first, seed)."""
    emulator = Emulator(**options)
    service = PushService()
    app = application(emulator)
    app[PUSH_SERVICE] = service

    async def push(request: web.Request) -> web.Response:
        body = await request.read()
        failing = await emulator.arrive()
        token = request.match_info["token"]
        if token in service.gone:
            return refuse(410, "the subscription has expired or was unsubscribed")
        subscription = service.subscriptions.get(token)
        if subscription is None:
            return refuse(404, "no such subscription")
        problem = vapid_problem(request, subscription)
        if problem is not None:
            return problem
        if not _INTEGER.fullmatch(request.headers.get("TTL", "")):
            return refuse(400, "the TTL header is required, in whole seconds")
        if request.headers.get("Content-Encoding", "").lower() != "aes128gcm":
            return refuse(400, "Content-Encoding must be aes128gcm")
        if request.headers.get("Urgency", "normal") not in URGENCIES:
            return refuse(400, f"Urgency must be one of {', '.join(sorted(URGENCIES))}")
        if len(body) > MAX_BODY:
            return refuse(413, f"the body is {len(body)} bytes, at most {MAX_BODY} are accepted")
        if failing:
            return refuse(429, "too many messages", **{"Retry-After": str(retry_after)})
        try:
            payload = http_ece.decrypt(
                body,
                private_key=subscription.private_key,
                auth_secret=b64.decode(subscription.auth),
                version="aes128gcm",
            )
        except (http_ece.ECEException, ValueError):
            return refuse(400, "the browser could not decrypt this message")
        subscription.messages.append(payload)
        emulator.accept(subscription.endpoint, payload.decode("utf-8", "replace"), request.headers.get("Topic"))
        location = f"{request.url.origin()}/m/{secrets.token_urlsafe(12)}"
        return web.Response(status=201, headers={"Location": location})

    async def subscribe(request: web.Request) -> web.Response:
        return web.json_response(service.subscribe(str(request.url.origin())).to_json())

    app.router.add_post("/push/{token}", push)
    app.router.add_post("/_emulator/subscribe", subscribe)
    return app
