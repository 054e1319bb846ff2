"""API keys: created random, shown once, stored only as a hash, looked up by that hash.

The root key from the configuration is compared in constant time; stored keys are found by the SHA-256 of what was
presented, so the lookup never compares secrets byte by byte.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time

from tidings.core.ids import RANDOM_BYTES, new_id
from tidings.core.sealing import hash_key
from tidings.ports import ApiKey, Store

SCOPES = frozenset({"send", "read", "admin"})
_CACHE_SECONDS = 10.0


class Keyring:
    def __init__(self, store: Store, root_key: str | None) -> None:
        self.store = store
        self._root_hash = hash_key(root_key) if root_key else None
        self._cache: dict[str, tuple[float, ApiKey]] = {}

    async def identify(self, presented: str) -> ApiKey | None:
        if not presented.isascii():  # no key is; and undecodable header bytes could not be hashed
            return None
        digest = hash_key(presented)
        if self._root_hash is not None and hmac.compare_digest(digest, self._root_hash):
            return ApiKey("key_root", "root", frozenset({"admin"}), 0.0)
        cached = self._cache.get(digest)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        key = await self.store.find_key(digest)
        if key is not None:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + _CACHE_SECONDS, key)
        return key

    async def create(self, name: str, scopes: frozenset[str]) -> tuple[ApiKey, str]:
        """A new key and its secret, which is returned here once and never again."""
        secret = "tk_" + secrets.token_urlsafe(32)
        now = time.time()
        key = ApiKey(new_id("key", now, os.urandom(RANDOM_BYTES)), name, scopes, now, hash_key(secret))
        await self.store.add_key(key)
        return key, secret

    async def revoke(self, id: str) -> bool:
        revoked = await self.store.revoke_key(id, time.time())
        self._cache = {digest: entry for digest, entry in self._cache.items() if entry[1].id != id}
        return revoked

    async def ensure_root(self) -> str | None:
        """Without a configured root key, the first start makes an admin key; returns it to be printed once."""
        if self._root_hash is not None or await self.store.list_keys():
            return None
        _, secret = await self.create("root", frozenset({"admin"}))
        return secret
