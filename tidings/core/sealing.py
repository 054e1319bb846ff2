"""Codes at rest: sealed with AES-GCM under the server secret, bound to their verification.

A code must be sent again unchanged on resend, so a one-way hash is not enough; it is kept encrypted instead, with the
verification id as associated data so a sealed code cannot be moved to another row.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12


class Sealer:
    def __init__(self, secret: str, random: Callable[[int], bytes]) -> None:
        """``random(n)``: n bytes for each nonce, from a CSPRNG (``os.urandom``)."""
        self._aead = AESGCM(hashlib.sha256(b"tidings/codes\0" + secret.encode()).digest())
        self._random = random

    def seal(self, code: str, bound_to: str) -> bytes:
        nonce = self._random(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, code.encode(), bound_to.encode())

    def unseal(self, sealed: bytes, bound_to: str) -> str:
        return self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], bound_to.encode()).decode()

    def matches(self, sealed: bytes, bound_to: str, candidate: str) -> bool:
        """Constant-time comparison of a candidate code with the sealed one."""
        return hmac.compare_digest(self.unseal(sealed, bound_to).encode(), candidate.encode())


def hash_key(key: str) -> str:
    """API keys are long random strings, so one SHA-256 is enough to store them safely and look them up."""
    return hashlib.sha256(key.encode()).hexdigest()
