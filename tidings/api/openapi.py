"""The OpenAPI 3.1 document, built from the declared endpoints and their pydantic models.

It says exactly what the server takes and every answer it can give, so that a client generated from it, or a fuzzer,
finds no surprise: a request valid by the document is never refused as invalid, and one that is not valid is.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from tidings import __version__
from tidings.api import idempotency
from tidings.api.models import ErrorOut
from tidings.api.routing import Endpoint, NoBody, Param, Reply
from tidings.errors import InvalidInput

_ERRORS = {
    400: "Invalid input (a field, a query parameter or a header); `error.field` names it.",
    401: "No API key, or an unknown one.",
    403: "The API key lacks the scope.",
    404: "Unknown id; `error.code` says why.",
    408: "The body did not arrive within `body_timeout`.",
    409: "Conflict with the current state.",
    413: "The body is too large.",
    415: "The body is not JSON.",
    422: "Well-formed but refused.",
    429: "Rate limited; see `Retry-After`.",
    503: "Back-pressure or a backend down; see `Retry-After`.",
}
_IDEMPOTENCY_KEY = Param(
    "Retrying with the same key returns the first answer.", {"type": "string", "pattern": idempotency.KEY.pattern}
)
_HEADERS = {
    "X-Request-Id": {
        "description": "The request's id, in the logs too: the caller's own `X-Request-Id` when it sent a sane one.",
        "required": True,
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    },
}


def document(endpoints: list[Endpoint]) -> dict[str, Any]:
    models: set[type[BaseModel]] = {ErrorOut}
    for endpoint in endpoints:
        body = _body(endpoint)
        if body is not None:
            models.add(body)
        for answer in endpoint.answers.values():
            if isinstance(answer, Reply):
                models.update(answer.models)
            elif answer is not None:
                models.add(answer)
    _, schema = models_json_schema(
        [(model, "validation") for model in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tidings",
            "version": __version__,
            "description": "Verification codes and push messages, self-hosted.",
        },
        "paths": paths,
        "components": {
            "schemas": schema.get("$defs", {}),
            "headers": _HEADERS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": endpoint.summary,
        "operationId": f"{endpoint.tag}_{endpoint.handler.__name__}",
        "tags": [endpoint.tag],
        "responses": {},
    }
    parameters = [_parameter(name, "path", param) for name, param in endpoint.params.items()]
    parameters += [_parameter(name, "query", param) for name, param in endpoint.query.items()]
    parameters += [_parameter(name, "header", param) for name, param in endpoint.headers.items()]
    if _idempotent(endpoint):
        parameters.append(_parameter("Idempotency-Key", "header", _IDEMPOTENCY_KEY))
    if parameters:
        operation["parameters"] = parameters
    if endpoint.scope is not None:
        operation["security"] = [{"bearer": []}]
        operation["description"] = f"Needs an API key with the `{endpoint.scope}` scope (or `admin`)."
    if endpoint.description is not None:
        operation["description"] = " ".join(filter(None, [endpoint.description, operation.get("description")]))
    body = _body(endpoint)
    if body is not None:
        operation["requestBody"] = {"required": not _may_be_left_out(body), **_json(body)}
    for status, answer in endpoint.answers.items():
        operation["responses"][str(status)] = _answer(status, answer)
    for status in sorted(_errors(endpoint) - endpoint.answers.keys()):
        operation["responses"][str(status)] = _answer(status, ErrorOut)
    return operation


def _parameter(name: str, where: str, param: Param) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": param.description,
        "schema": param.schema,
    }


def _answer(status: int, answer: type[BaseModel] | Reply | None) -> dict[str, Any]:
    names = ["X-Request-Id", "Retry-After"] if status in (429, 503) else ["X-Request-Id"]
    headers = {name: {"$ref": f"#/components/headers/{name}"} for name in names}
    if isinstance(answer, Reply):
        content = {"content": {answer.media_type: {"schema": answer.schema}}} if answer.media_type else {}
        return {"description": answer.description, "headers": headers, **content}
    description = "OK" if status < 300 else _ERRORS[status]
    return {"description": description, "headers": headers, **(_json(answer) if answer is not None else {})}


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}


def _body(endpoint: Endpoint) -> type[BaseModel] | None:
    """What the server parses a body with: an endpoint that changes something and takes no body still reads one,
    and takes only ``{}`` (see ``routing``)."""
    if endpoint.body is not None:
        return endpoint.body
    return None if endpoint.method in ("GET", "HEAD") else NoBody


def _may_be_left_out(model: type[BaseModel]) -> bool:
    """No body reads as ``{}`` (see ``routing.parse``), so a body is optional when ``{}`` is a valid one."""
    try:
        model.model_validate({})
    except (ValidationError, InvalidInput):
        return False
    return True


def _errors(endpoint: Endpoint) -> set[int]:
    """The endpoint's own errors, and those every endpoint of its kind can give."""
    errors = {400, *endpoint.errors}  # 400: any endpoint refuses a query parameter it does not know
    if endpoint.scope is not None:
        errors |= {401, 403, 503}  # 503: the store, where keys are, is down
    if _body(endpoint) is not None:
        errors |= {408, 413, 415}
    if _idempotent(endpoint):
        errors |= {409, 422}  # an Idempotency-Key still in use, or reused with another body
    return errors


def _idempotent(endpoint: Endpoint) -> bool:
    """Takes an ``Idempotency-Key`` (see ``routing``): every authorised call that changes something."""
    return endpoint.scope is not None and endpoint.method not in ("GET", "HEAD")
