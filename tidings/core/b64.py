"""Base64url without padding, as Web Push keys, JWTs and subscriber tokens write it."""

from __future__ import annotations

import base64


def encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode(text: str) -> bytes:
    """Padded or not, URL-safe or standard alphabet. Anything else is refused (``ValueError``) rather than skipped,
    as the standard decoder would, so a mangled key fails where it is read."""
    text = text.rstrip("=")
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
