"""Subscriber tokens: short-lived, good for one subscriber's stream alone, safe to hand to a browser.

A token is the subscriber id and an expiry signed with a key derived from the server secret, so any node that
shares the secret can check it without a lookup, and none is stored.
"""

from __future__ import annotations

import hashlib
import hmac

from tidings.core import b64

PREFIX = "stk_"


class Tokens:
    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), b"tidings/subscriber-tokens", hashlib.sha256).digest()

    def issue(self, subscriber_id: str, expires_at: float) -> str:
        claims = f"{subscriber_id}|{int(expires_at)}".encode()
        return PREFIX + b64.encode(claims) + "." + b64.encode(self._sign(claims))

    def subscriber(self, token: str, now: float) -> str | None:
        """The subscriber a valid, unexpired token is for; None for anything else."""
        if not token.startswith(PREFIX) or token.count(".") != 1:
            return None
        encoded_claims, encoded_signature = token.removeprefix(PREFIX).split(".")
        try:
            claims, signature = b64.decode(encoded_claims), b64.decode(encoded_signature)
        except ValueError:
            return None
        if not hmac.compare_digest(signature, self._sign(claims)):
            return None
        subscriber_id, _, expires = claims.decode().rpartition("|")
        if not expires.isdigit() or int(expires) <= now:
            return None
        return subscriber_id

    def _sign(self, claims: bytes) -> bytes:
        return hmac.new(self._key, claims, hashlib.sha256).digest()
