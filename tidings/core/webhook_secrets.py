"""Webhook secrets as Standard Webhooks writes them: ``whsec_`` and the base64 of the signing key.

Here rather than in the webhook channel because the subscribers service makes and checks them too, and the channel
signs with them; the key's random bytes are the caller's to draw.
"""

from __future__ import annotations

import base64
import binascii

PREFIX = "whsec_"
KEY_BYTES = 24
"""The length of the keys tidings makes: Standard Webhooks advises 24 to 64."""
MAX_KEY_BYTES = 256


def encode(key: bytes) -> str:
    return PREFIX + base64.b64encode(key).decode()


def valid(secret: str) -> bool:
    """A ``whsec_`` secret with a key of 1 to 256 bytes. Standard Webhooks advises 24 to 64 (the ones tidings makes
    are 24), but its libraries take any length, and so does tidings: a short test secret is the caller's choice."""
    if not secret.startswith(PREFIX):
        return False
    encoded = secret.removeprefix(PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        return False
    return 1 <= len(key) <= MAX_KEY_BYTES
