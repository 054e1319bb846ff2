"""Endpoints declared once, with their scope, body and answers, so that routing, authorisation, validation and the
OpenAPI document all come from the same declaration."""

from __future__ import annotations

import asyncio
import difflib
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, get_args

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from tidings.api import idempotency
from tidings.api.auth import authorize
from tidings.api.state import CALLER, STATE
from tidings.errors import InvalidInput, RequestTimeout, UnsupportedMediaType

Handler = Callable[..., Awaitable[web.StreamResponse]]
_PLACEHOLDER = re.compile(r"{(\w+)}")


@dataclass(frozen=True)
class Param:
    """A path, query or header parameter: what it does, and the JSON Schema of every value the server takes."""

    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    segment: str | None = None
    """For a path parameter: the regular expression of the path segments routed to it, when not any segment."""


@dataclass(frozen=True)
class Reply:
    """An answer that is not a JSON model: what it is, its media type (None: no body) and schema, and the models
    that schema refers to."""

    description: str
    media_type: str | None = None
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    models: tuple[type[BaseModel], ...] = ()


Answer = type[BaseModel] | Reply | None


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    scope: str | None
    body: type[BaseModel] | None
    answers: dict[int, Answer]
    tag: str
    errors: tuple[int, ...] = ()
    params: dict[str, Param] = field(default_factory=dict)
    """Path parameters, every one of them."""
    query: dict[str, Param] = field(default_factory=dict)
    headers: dict[str, Param] = field(default_factory=dict)
    """Request headers the endpoint reads, beside ``Authorization`` and ``Idempotency-Key``."""
    description: str | None = None
    """What the summary leaves out, for the document."""


class Router:
    def __init__(self, *, head: bool = True) -> None:
        """``head``: every GET answers HEAD too (health probes use it), with the same head and no body."""
        self.endpoints: list[Endpoint] = []
        self.head = head

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        scope: str | None,
        tag: str,
        body: type[BaseModel] | None = None,
        answers: dict[int, Answer] | None = None,
        errors: tuple[int, ...] = (),
        params: dict[str, Param] | None = None,
        query: dict[str, Param] | None = None,
        headers: dict[str, Param] | None = None,
        description: str | None = None,
    ) -> Callable[[Handler], Handler]:
        params = params or {}
        if set(_PLACEHOLDER.findall(path)) != params.keys():  # the document would not say what the path takes
            raise ValueError(f"{method} {path}: declare every path parameter, and only those (got {sorted(params)})")

        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method,
                    path,
                    handler,
                    summary,
                    scope,
                    body,
                    answers or {200: None},
                    tag,
                    errors,
                    params=params,
                    query=query or {},
                    headers=headers or {},
                    description=description,
                )
            )
            return handler

        return register

    def install(self, app: web.Application) -> None:
        for endpoint in self.endpoints:
            handler = _wrap(endpoint)
            path = _routed(endpoint)
            app.router.add_route(endpoint.method, path, handler)
            if endpoint.method == "GET" and self.head:
                app.router.add_route("HEAD", path, handler)


def _routed(endpoint: Endpoint) -> str:
    """The path as aiohttp routes it: ``{id:<regex>}`` for a parameter that takes only some segments."""

    def placeholder(match: re.Match[str]) -> str:
        segment = endpoint.params[match[1]].segment
        return f"{{{match[1]}:{segment}}}" if segment else match[0]

    return _PLACEHOLDER.sub(placeholder, endpoint.path)


def _wrap(endpoint: Endpoint) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        if endpoint.scope is not None:
            request[CALLER] = await authorize(request, endpoint.scope)
        if request.query_string:  # most calls have none: not even parsed then
            unknown = sorted(set(request.query) - endpoint.query.keys())
            if unknown:
                raise unknown_field(unknown[0], endpoint.query, f"the query parameter `{unknown[0]}`")
        if endpoint.body is not None:
            args: tuple[Any, ...] = (await parse(request, endpoint.body),)
        else:
            args = ()
            if request.body_exists and request.method not in ("GET", "HEAD"):
                await parse(request, NoBody)  # ``{}`` is taken; a field would be ignored, so it is refused
        idempotency_key = request.headers.get("Idempotency-Key")
        if idempotency_key is None or endpoint.scope is None or request.method in ("GET", "HEAD"):
            return await endpoint.handler(request, *args)
        return await idempotency.once(request, idempotency_key, lambda: endpoint.handler(request, *args))

    handle.__name__ = endpoint.handler.__name__
    return handle


class NoBody(BaseModel):
    """What an endpoint that takes no body accepts: nothing, or an empty JSON object."""

    model_config = ConfigDict(extra="forbid")


def json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(body=model.model_dump_json().encode(), status=status, content_type="application/json")


async def parse(request: web.Request, model: type[BaseModel]) -> Any:
    """The JSON body validated against ``model``: 413 for one declared too large, 415 for another content type,
    400 naming the bad field.
    No body at all reads as ``{}``, so a body whose fields are all optional may be left out."""
    limit = request.app[STATE].settings.max_body_size
    if request.content_length is not None and request.content_length > limit:  # refused before it is uploaded
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    if not request.body_exists:
        raw = b"{}"
    elif request.content_type != "application/json":
        raise UnsupportedMediaType(
            f"send the body as JSON with `Content-Type: application/json` (got {request.content_type!r})"
        )
    else:
        raw = await _read(request)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise _invalid(exc, model) from None


async def _read(request: web.Request) -> bytes:
    """The body, once all of it has come. Most have by the time the handler runs, and are read without the timer,
    which would cost 5 µs a request."""
    if request.content.is_eof():
        return await request.read()
    timeout = request.app[STATE].settings.body_timeout
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except TimeoutError:
        raise RequestTimeout(f"the body did not arrive within {timeout:g} s") from None


def _invalid(exc: ValidationError, model: type[BaseModel]) -> InvalidInput:
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        return InvalidInput(f"the body is not valid JSON: {first['ctx'].get('error', '')}", code="invalid_json")
    if first["type"] == "model_type":
        return InvalidInput("the body must be a JSON object", code="invalid_json")
    unknown = next((error for error in errors if error["type"] == "extra_forbidden"), None)
    if unknown is not None:  # the likeliest mistake of all: say it first
        where = ".".join(str(part) for part in unknown["loc"])
        return unknown_field(where, _field_names(model), f"`{where}`")
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    return InvalidInput(f"{where}: {message}" if where else message, field=where or None)


def unknown_field(name: str, known: Iterable[str], what: str) -> InvalidInput:
    """400 ``unknown_field``, naming the known field that ``name`` was most likely meant to be."""
    last = name.rpartition(".")[2]
    close = difflib.get_close_matches(last, sorted(known), n=1, cutoff=0.6)
    hint = f"; did you mean `{close[0]}`?" if close else ""
    details = {"did_you_mean": close[0]} if close else {}
    return InvalidInput(f"{what} is not known here{hint}", field=name, code="unknown_field", **details)


def _field_names(model: type[BaseModel]) -> set[str]:
    """The names of every field in a body, nested models included: what a misspelt name is compared with."""
    names: set[str] = set()
    pending: list[Any] = [model]
    seen: set[type[BaseModel]] = set()
    while pending:
        annotation = pending.pop()
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation in seen:
                continue
            seen.add(annotation)
            for name, info in annotation.model_fields.items():
                names.add(info.alias or name)
                pending.append(info.annotation)
        else:
            pending.extend(get_args(annotation))
    return names
