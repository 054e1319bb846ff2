"""Web Push: a message to a browser through its push service (RFC 8030), encrypted so that only the subscribed
browser can read it (RFC 8291, ``aes128gcm``) and signed with VAPID (RFC 8292) so the push service knows who sends.

The VAPID key is derived from the server secret, so every node signs with the same key without one being stored,
and a browser subscribed with one node's ``application_server_key`` can be reached from any of them.
"""

from __future__ import annotations

import hashlib
import time

import http_ece
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid.jwt import sign
from yarl import URL

from tidings.core import b64
from tidings.core.push import SUBSCRIPTION_GONE, PushCall
from tidings.core.types import Delivered, Permanent, SendOutcome, Transient
from tidings.outbound.client import HttpClient, Response, outcome_for_status

GONE = SUBSCRIPTION_GONE
INVALID_SUBSCRIPTION = "invalid_subscription"
PAYLOAD_TOO_LARGE = "payload_too_large"

MAX_BODY = 4096
"""What push services accept (RFC 8030 section 7.2 asks for at least this much; none take more)."""
TOKEN_LIFETIME = 12 * 3600
"""Push services refuse an ``exp`` more than 24 h ahead; half that leaves room for their clocks and ours."""
CACHE_SECONDS = 3600
"""A signed header is reused this long, per push service: an ECDSA signature costs more than the encryption."""
_CACHE_SIZE = 1024
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def vapid_key(secret: str) -> ec.EllipticCurvePrivateKey:
    """The same P-256 key on every node that shares ``secret``, and a different one for another secret.

    Reducing 256 bits modulo the group order skews the result by less than 2**-32, which does not matter for one key.
    """
    digest = hashlib.sha256(b"tidings/vapid\0" + secret.encode()).digest()
    return ec.derive_private_key(int.from_bytes(digest, "big") % (_P256_ORDER - 1) + 1, ec.SECP256R1())


def application_server_key(key: ec.EllipticCurvePrivateKey) -> str:
    """What a page passes to ``pushManager.subscribe({applicationServerKey})``; push services then accept only
    messages signed with this key for the subscription."""
    return b64.encode(key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))


class WebPush:
    name = "webpush"

    def __init__(self, http: HttpClient, key: ec.EllipticCurvePrivateKey, subject: str) -> None:
        if not subject.startswith(("mailto:", "https://")):
            raise ValueError("the VAPID subject is a mailto: or https: URL")
        self.http = http
        self.key = key
        self.subject = subject
        self._public = application_server_key(key)
        self._signed: dict[str, tuple[float, str]] = {}

    async def send(self, call: PushCall) -> SendOutcome:
        try:
            audience = origin(call.endpoint)
            body = encrypt(call)
        except (ValueError, http_ece.ECEException) as exc:
            return Permanent(INVALID_SUBSCRIPTION, str(exc)[:200])
        if len(body) > MAX_BODY:
            return Permanent(PAYLOAD_TOO_LARGE, f"{len(body)} bytes encrypted, push services take {MAX_BODY}")
        headers = {
            "TTL": str(call.ttl),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Urgency": call.urgency,
            "Authorization": self.authorization(audience),
        }
        answer = await self.http.request("POST", call.endpoint, data=body, headers=headers)
        if isinstance(answer, Transient | Permanent):
            return answer
        return read_answer(answer)

    def authorization(self, audience: str) -> str:
        """The ``Authorization`` header for one push service, signed at most once per ``CACHE_SECONDS``."""
        now = time.time()
        cached = self._signed.get(audience)
        if cached is not None and cached[0] > now:
            return cached[1]
        token = sign({"aud": audience, "exp": int(now) + TOKEN_LIFETIME, "sub": self.subject}, self.key)
        header = f"vapid t={token}, k={self._public}"
        if len(self._signed) >= _CACHE_SIZE:  # subscribers choose the endpoints, hence how many audiences there are
            self._signed.clear()
        self._signed[audience] = (now + CACHE_SECONDS, header)
        return header


def encrypt(call: PushCall) -> bytes:
    """The payload as only the subscribed browser can read it; a fresh sender key per message, as RFC 8291 asks."""
    receiver = b64.decode(call.p256dh)
    if len(receiver) != 65 or receiver[0] != 4:
        raise ValueError("p256dh is not an uncompressed P-256 point")
    auth = b64.decode(call.auth)
    if len(auth) != 16:
        raise ValueError("auth is not 16 bytes")
    return http_ece.encrypt(
        call.payload,
        private_key=ec.generate_private_key(ec.SECP256R1()),
        dh=ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), receiver),
        auth_secret=auth,
        version="aes128gcm",
    )


def origin(endpoint: str) -> str:
    """The VAPID ``aud``: scheme, host and a port only when it is not the scheme's default."""
    url = URL(endpoint)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("the endpoint is not an http(s) URL")
    return str(url.origin())


def read_answer(answer: Response) -> SendOutcome:
    if answer.ok:
        return Delivered(answer.headers.get("Location"))
    if answer.status in (404, 410):
        return Permanent(GONE, answer.text[:200])
    if answer.status == 413:
        return Permanent(PAYLOAD_TOO_LARGE, answer.text[:200])
    return outcome_for_status(answer)
