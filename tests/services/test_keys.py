"""API keys: made random, kept as a hash, found by it; the root key from the configuration compared in constant
time."""

from __future__ import annotations

from tidings.core.sealing import hash_key
from tidings.services.keys import Keyring

ROOT = "tk_root-key-for-service-tests-0123456789abcdef"


async def test_a_key_is_shown_once_kept_hashed_and_found_by_what_is_presented(backend):
    keyring = Keyring(backend.store, None)
    key, secret = await keyring.create("backend", frozenset({"send"}))
    assert secret.startswith("tk_") and key.key_hash == hash_key(secret)
    [kept] = await backend.store.list_keys()
    assert kept.key_hash == hash_key(secret) and secret not in repr(kept)
    assert await keyring.identify(secret) == kept
    assert await keyring.revoke(key.id)
    assert await keyring.identify(secret) is None, "revoked at once on the node that revoked it"


async def test_the_root_key_is_configured_or_made_once(backend):
    assert await Keyring(backend.store, ROOT).ensure_root() is None
    assert (await Keyring(backend.store, ROOT).identify(ROOT)).scopes == frozenset({"admin"})
    made = await Keyring(backend.store, None).ensure_root()
    assert made is not None and await Keyring(backend.store, None).ensure_root() is None
    assert await Keyring(backend.store, None).identify("tk_ünïcode") is None
