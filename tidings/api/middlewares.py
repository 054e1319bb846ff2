"""Request ids, errors as JSON, request metrics. Every answer, error or not, carries ``X-Request-Id``."""

from __future__ import annotations

import itertools
import logging
import os
import re
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from tidings.api.state import REQUEST_ID, STATE
from tidings.errors import InvalidInput, PayloadTooLarge, TidingsError

log = logging.getLogger("tidings.api")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Request ids need to be unique, not secret: a random per-process prefix and a counter are cheaper than uuid4.
_PROCESS = os.urandom(6).hex()
_SEQUENCE = itertools.count()
CLIENT_CLOSED_REQUEST = 499
"""Counted, as nginx does, for a request whose client went away before it could be answered."""
_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(error: TidingsError) -> web.Response:
    response = web.json_response(error.body(), status=error.status)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _request_id(request: web.Request) -> str:
    """The caller's own ``X-Request-Id`` when it is a sane one, else a new one."""
    request_id = request.headers.get("X-Request-Id", "")
    if not _REQUEST_ID.match(request_id):
        request_id = f"{_PROCESS}{next(_SEQUENCE):010x}"
    return request_id


async def add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """Set as the head of every answer is sent: a stream's head goes out long before its handler returns."""
    if REQUEST_ID not in request:
        request[REQUEST_ID] = _request_id(request)
    response.headers["X-Request-Id"] = request[REQUEST_ID]


@web.middleware
async def handle_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request[REQUEST_ID] = _request_id(request)
    started = time.perf_counter()
    try:
        response = await handler(request)
    except TidingsError as exc:
        if exc.status == 429:
            request.app[STATE].metrics.limited.labels(exc.code).inc()
        response = error_response(exc)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[STATE].settings.max_body_size
        response = error_response(PayloadTooLarge(f"the body is larger than the limit of {limit} bytes"))
    except web.RequestPayloadError as exc:  # e.g. a Content-Encoding the body is not in
        reason = str(exc).rpartition("message:")[2].strip() or "malformed"
        response = error_response(InvalidInput(f"the body cannot be read: {reason}", code="invalid_body"))
    except ConnectionResetError:  # the client left while its body was read: nobody to answer, nothing went wrong
        log.debug("client left during %s %s (request %s)", request.method, request.path, request_id)
        response = web.Response(status=CLIENT_CLOSED_REQUEST)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, f"http_{exc.status}")
        error = TidingsError(_message(request, exc), code=code)
        error.status = exc.status
        response = error_response(error)
        if exc.status == 405:
            response.headers["Allow"] = exc.headers.get("Allow", "")
    except Exception:
        log.exception("unhandled error in %s %s (request %s)", request.method, request.path, request_id)
        response = error_response(TidingsError("something went wrong on our side; it has been logged"))
    if response.status == 408:  # the rest of the body may still be trickling in: answer, then hang up at once
        await response.prepare(request)
        await response.write_eof()
        request.protocol.force_close()
    _count(request, response.status, time.perf_counter() - started)
    return response


def _message(request: web.Request, exc: web.HTTPException) -> str:
    """What aiohttp refused, in words a caller can act on rather than its bare reason phrase."""
    path = request.path[:200]
    if exc.status == 404 and request.match_info.http_exception is exc:
        return f"there is no endpoint {path}; every endpoint is listed at /openapi.json"
    if exc.status == 405:
        return f"{request.method} is not allowed on {path}; use {exc.headers.get('Allow', '')}"
    default = f"{exc.status}: {exc.reason}"
    return exc.text.strip() if exc.text and exc.text != default else exc.reason or f"HTTP {exc.status}"


def _count(request: web.Request, status: int, elapsed: float) -> None:
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    counter, latency = request.app[STATE].metrics.for_request(route, request.method, status)
    counter.inc()
    latency.observe(elapsed)
