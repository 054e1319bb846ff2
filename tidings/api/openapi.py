"""The OpenAPI 3.1 document, built from the declared endpoints and their pydantic models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from tidings import __version__
from tidings.api.models import ErrorOut
from tidings.api.routing import Endpoint

_ERRORS = {
    400: "Invalid input; `error.field` names the field.",
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


def document(endpoints: list[Endpoint]) -> dict[str, Any]:
    models: set[type[BaseModel]] = {ErrorOut}
    for endpoint in endpoints:
        if endpoint.body is not None:
            models.add(endpoint.body)
        models.update(model for model in endpoint.answers.values() if model is not None)
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
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": endpoint.summary,
        "operationId": f"{endpoint.tag}_{endpoint.handler.__name__}",
        "tags": [endpoint.tag],
        "responses": {},
    }
    parameters = [
        {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
        for part in endpoint.path.split("/")
        if part.startswith("{")
    ]
    parameters += [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": text}
        for name, text in endpoint.query.items()
    ]
    if _idempotent(endpoint):
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": 255},
                "description": "Retrying with the same key returns the first answer.",
            }
        )
    if parameters:
        operation["parameters"] = parameters
    if endpoint.scope is not None:
        operation["security"] = [{"bearer": []}]
        operation["description"] = f"Needs an API key with the `{endpoint.scope}` scope (or `admin`)."
    if endpoint.body is not None:
        operation["requestBody"] = {"required": True, **_ref(endpoint.body)}
    for status, model in endpoint.answers.items():
        answer: dict[str, Any] = {"description": "OK" if status < 300 else ""}
        if model is not None:
            answer.update(_ref(model))
        operation["responses"][str(status)] = answer
    for status in sorted(_errors(endpoint)):
        operation["responses"][str(status)] = {"description": _ERRORS[status], **_ref(ErrorOut)}
    return operation


def _errors(endpoint: Endpoint) -> set[int]:
    """The endpoint's own errors, and those every endpoint of its kind can give."""
    errors = set(endpoint.errors)
    if endpoint.scope is not None:
        errors |= {401, 403, 503}  # 503: the store is down
    if endpoint.body is not None:
        errors |= {400, 408, 413, 415}
    if _idempotent(endpoint):
        errors |= {409, 422}  # an Idempotency-Key still in use, or reused with another body
    return errors


def _idempotent(endpoint: Endpoint) -> bool:
    """Takes an ``Idempotency-Key`` (see ``routing``): every authorised call that changes something."""
    return endpoint.scope is not None and endpoint.method not in ("GET", "HEAD")
