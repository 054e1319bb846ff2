"""Bearer keys and their scopes; ``admin`` may do everything."""

from __future__ import annotations

from aiohttp import web

from tidings.api.state import STATE
from tidings.errors import Forbidden, Unauthorized
from tidings.ports import ApiKey


async def authorize(request: web.Request, scope: str) -> ApiKey:
    header = request.headers.get("Authorization", "")
    kind, _, presented = header.partition(" ")
    if kind.lower() != "bearer" or not presented.strip():
        raise Unauthorized("send an API key as `Authorization: Bearer <key>`", code="missing_api_key")
    key = await request.app[STATE].keyring.identify(presented.strip())
    if key is None:
        raise Unauthorized("the API key is not valid (unknown or revoked)", code="invalid_api_key")
    if scope not in key.scopes and "admin" not in key.scopes:
        raise Forbidden(f"this API key lacks the `{scope}` scope", code="insufficient_scope", scope=scope)
    return key
