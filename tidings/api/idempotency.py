"""``Idempotency-Key``: a retried POST gets the first answer back instead of doing the work twice.

Answers are kept per API key for at least 24 h. Only successful answers are kept, so a request refused for a passing
reason (a rate limit, a busy queue) can be retried with the same key. Requests with the same key are serialised
within the process, and a reused key with a different body is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from weakref import WeakValueDictionary

from aiohttp import web

from tidings.api.state import CALLER, STATE
from tidings.errors import InvalidInput, Unprocessable

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_locks: WeakValueDictionary[tuple[str, str], asyncio.Lock] = WeakValueDictionary()


async def once(request: web.Request, key: str, run: Callable[[], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    if not _KEY.match(key):
        raise InvalidInput("Idempotency-Key must be 1-255 printable ASCII characters", field="Idempotency-Key")
    store = request.app[STATE].store
    scope = f"{request[CALLER].id}:{request.method}:{request.path}"
    fingerprint = hashlib.sha256(await request.read()).hexdigest()
    lock = _locks.get((scope, key))
    if lock is None:
        lock = _locks[(scope, key)] = asyncio.Lock()
    async with lock:
        first = await store.idempotent_get(scope, key)
        if first is not None:
            stored_fingerprint, status, body = first
            if stored_fingerprint != fingerprint:
                raise Unprocessable(
                    "this Idempotency-Key was used with a different body; use a new key for a new request",
                    code="idempotency_key_reused",
                )
            response = web.Response(status=status, body=body, content_type="application/json")
            response.headers["Idempotent-Replayed"] = "true"
            return response
        response = await run()
        if 200 <= response.status < 300 and isinstance(response, web.Response) and response.body is not None:
            await store.idempotent_put(scope, key, fingerprint, response.status, bytes(response.body), time.time())
        return response
