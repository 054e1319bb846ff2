"""``/v1/keys``: API keys with scopes, for admins."""

from __future__ import annotations

from aiohttp import web

from tidings.api.models import KeyList, KeyOut, NewKey
from tidings.api.routing import Param, Router, json
from tidings.api.state import STATE
from tidings.core import ids
from tidings.errors import NotFound

router = Router()
TAG = "keys"


@router.route(
    "POST",
    "/v1/keys",
    summary="Create an API key (the key is shown once)",
    scope="admin",
    tag=TAG,
    body=NewKey,
    answers={201: KeyOut},
)
async def create(request: web.Request, body: NewKey) -> web.Response:
    key, secret = await request.app[STATE].keyring.create(body.name, frozenset(body.scopes))
    return json(KeyOut.of(key, secret), 201)


@router.route(
    "GET",
    "/v1/keys",
    summary="List API keys",
    scope="admin",
    tag=TAG,
    answers={200: KeyList},
)
async def list_keys(request: web.Request) -> web.Response:
    keys = await request.app[STATE].store.list_keys()
    return json(KeyList(keys=[KeyOut.of(key) for key in keys]))


@router.route(
    "DELETE",
    "/v1/keys/{id}",
    summary="Revoke an API key",
    scope="admin",
    tag=TAG,
    answers={204: None},
    errors=(404,),
    params={"id": Param("The key's id (not the key itself).", {"type": "string", "pattern": ids.pattern("key")})},
)
async def revoke(request: web.Request) -> web.Response:
    if not await request.app[STATE].keyring.revoke(request.match_info["id"]):
        raise NotFound("no such API key", code="key_not_found")
    return web.Response(status=204)
