"""``Idempotency-Key``: a retried POST gets the first answer back instead of doing the work twice.

Answers are kept per API key for at least 24 h. Only successful answers are kept, so a request refused for a passing
reason (a rate limit, a busy queue) can be retried with the same key. They are kept sealed, as codes are, since an
answer may hold a secret (a new API key, a webhook's secret). A request claims its key in the store before
it runs, so a retry that arrives while it is under way, on this node or another, waits for its answer (up to
``WAIT_FOR_FIRST``; then 409 ``idempotency_key_in_use``) rather than running it again. A reused key with a
different body is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from weakref import WeakValueDictionary

from aiohttp import web
from cryptography.exceptions import InvalidTag

from tidings.api.state import CALLER, STATE
from tidings.core.sealing import Sealer
from tidings.errors import Conflict, InvalidInput, Unprocessable
from tidings.ports import IDEMPOTENCY_PENDING, Store

log = logging.getLogger("tidings.api")
KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_locks: WeakValueDictionary[tuple[str, str], asyncio.Lock] = WeakValueDictionary()
WAIT_FOR_FIRST = 10.0
"""Seconds a retry waits for the answer of the same request under way elsewhere."""
POLL_EVERY = 0.05


def _fingerprints(body: bytes) -> tuple[str, str]:
    """The request's fingerprint, of its JSON in one canonical form, so that the same JSON is the same request
    however a retrying client spaces it or orders its keys (and no body is ``{}``, as it is read); then the
    fingerprint of its bytes as they came, which records kept before fingerprints were canonical hold."""
    raw = hashlib.sha256(body).hexdigest()
    try:
        canonical = json.dumps(json.loads(body or b"{}"), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:  # not JSON (or not UTF-8): the request is refused later, or compared as it came
        return raw, raw
    return hashlib.sha256(canonical).hexdigest(), raw


async def once(request: web.Request, key: str, run: Callable[[], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    if not KEY.match(key):
        raise InvalidInput("Idempotency-Key must be 1-255 printable ASCII characters", field="Idempotency-Key")
    state = request.app[STATE]
    store, sealer = state.store, state.sealer
    scope = f"{request[CALLER].id}:{request.method}:{request.path}"
    bound_to = f"{scope}\n{key}"
    fingerprint, as_it_came = _fingerprints(await request.read())
    lock = _locks.get((scope, key))
    if lock is None:
        lock = _locks[(scope, key)] = asyncio.Lock()
    async with lock:  # the same key on this node: one claim at a time
        deadline = time.monotonic() + WAIT_FOR_FIRST
        while (first := await store.idempotent_claim(scope, key, fingerprint, time.time())) is not None:
            stored_fingerprint, status, body = first
            if stored_fingerprint not in (fingerprint, as_it_came):
                raise Unprocessable(
                    "this Idempotency-Key was used with a different body; use a new key for a new request",
                    code="idempotency_key_reused",
                )
            if status != IDEMPOTENCY_PENDING:
                response = web.Response(
                    status=status, body=_opened(sealer, body, bound_to), content_type="application/json"
                )
                response.headers["Idempotent-Replayed"] = "true"
                return response
            if time.monotonic() > deadline:
                raise Conflict(
                    "a request with this Idempotency-Key is still under way; retry shortly for its answer",
                    code="idempotency_key_in_use",
                    retry_after=1,
                )
            await asyncio.sleep(POLL_EVERY)
        kept = False
        try:
            answer = await run()
            if 200 <= answer.status < 300 and isinstance(answer, web.Response) and isinstance(answer.body, bytes):
                sealed = sealer.seal(answer.body.decode(), bound_to)
                await store.idempotent_put(scope, key, fingerprint, answer.status, sealed, time.time())
                kept = True
            return answer
        finally:
            if not kept:
                await _release(store, scope, key)


def _opened(sealer: Sealer, body: bytes, bound_to: str) -> bytes:
    """The kept answer. One kept in plain JSON, before answers were sealed, is replayed as it is (records last a
    day); one that cannot be opened at all (the secret changed) is not an answer to give, and says so."""
    try:
        return sealer.unseal(body, bound_to).encode()
    except (InvalidTag, ValueError):
        try:
            json.loads(body)
        except ValueError:
            raise Conflict(
                "the answer kept for this Idempotency-Key cannot be read; use a new key",
                code="idempotency_key_unreadable",
            ) from None
        return body


async def _release(store: Store, scope: str, key: str) -> None:
    """Best effort: a claim that cannot be given up now lapses by itself."""
    try:
        await store.idempotent_release(scope, key)
    except Exception as exc:
        log.warning("could not give up an Idempotency-Key claim (%s); it lapses by itself", exc)
