"""``/v1/verifications``: start, check, read and cancel one-time codes."""

from __future__ import annotations

from aiohttp import web

from tidings.api import paging
from tidings.api.client_ip import client_ip
from tidings.api.models import (
    CheckOut,
    CheckVerification,
    FailedSend,
    Failures,
    StartVerification,
    VerificationOut,
)
from tidings.api.paging import VerificationPage
from tidings.api.routing import Param, Router, json
from tidings.api.state import STATE
from tidings.core import ids
from tidings.core.types import Status, rfc3339
from tidings.errors import InvalidInput
from tidings.ports import Lookup
from tidings.services.verifications import StartInput

router = Router()
TAG = "verifications"
ID = {
    "id": Param(
        "The verification's id, as its start gave it.",
        {"type": "string", "pattern": ids.pattern("ver")},
        segment="(?!check$)[^/]+",  # `check` is not an id: a GET there is 405 (use POST), not a lookup of "check"
    )
}

MAX_ADDRESS = 320
LIST = {
    "status": Param(
        "Only verifications in this status as they read now: a pending one past its expiry is `expired`.",
        {"type": "string", "enum": list(Status)},
    ),
    "to": Param(
        "Only those sent to this address, on any channel, read as a start reads `to`: a phone number (`+44 7700"
        " 900123` finds +447700900123; one without `+` is read against `default_region`), or an email address.",
        {"type": "string", "minLength": 1, "maxLength": MAX_ADDRESS},
    ),
    "cursor": paging.CURSOR,
    "limit": paging.limit_param("Verifications"),
}


@router.route(
    "POST",
    "/v1/verifications",
    summary="Send a code (or resend the pending one)",
    scope="send",
    tag=TAG,
    body=StartVerification,
    answers={201: VerificationOut},
    errors=(422, 429, 503),
)
async def start(request: web.Request, body: StartVerification) -> web.Response:
    state = request.app[STATE]
    ip = client_ip(request.remote, request.headers.get("X-Forwarded-For"), state.proxies)
    started = await state.verifications.start(
        StartInput(body.to, body.channel, body.locale, body.code_length, body.template, body.app_name, ip)
    )
    state.metrics.started(body.channel.value, "resend" if started.resent else "new").inc()
    return json(VerificationOut.of(started.verification), 201)


@router.route(
    "POST",
    "/v1/verifications/check",
    summary="Check a code",
    scope="send",
    tag=TAG,
    body=CheckVerification,
    answers={200: CheckOut},
    errors=(404, 429),
)
async def check(request: web.Request, body: CheckVerification) -> web.Response:
    state = request.app[STATE]
    result = await state.verifications.check(Lookup(id=body.id, to=body.to), body.code)
    verification = result.verification
    state.metrics.checks.labels("valid" if result.valid else "invalid").inc()
    return json(
        CheckOut(
            id=verification.id,
            status=verification.status,
            valid=result.valid,
            attempts_left=result.attempts_left,
        )
    )


@router.route(
    "GET",
    "/v1/verifications",
    summary="Verifications, newest first, never their codes; by `status` and `to`, paged (`cursor`, `limit` 1-1000,"
    " 100 by default)",
    scope="read",
    tag=TAG,
    answers={200: VerificationPage},
    query=LIST,
)
async def list_verifications(request: web.Request) -> web.Response:
    query = request.query
    status = paging.choice(query, "status", Status)
    to = query.get("to")
    if to is not None and not 1 <= len(to) <= MAX_ADDRESS:
        raise InvalidInput(f"to: 1 to {MAX_ADDRESS} characters", field="to")
    limit = paging.page_size(query)
    found = await request.app[STATE].verifications.page(to, status, paging.position(query), limit)
    return json(
        VerificationPage(
            verifications=[VerificationOut.of(v) for v in found], next_cursor=paging.next_cursor(found, limit)
        )
    )


@router.route(
    "GET",
    "/v1/verifications/{id}",
    summary="Read a verification (never its code)",
    scope="read",
    tag=TAG,
    answers={200: VerificationOut},
    errors=(404,),
    params=ID,
)
async def get(request: web.Request) -> web.Response:
    verification = await request.app[STATE].verifications.get(request.match_info["id"])
    return json(VerificationOut.of(verification))


@router.route(
    "GET",
    "/v1/verifications/{id}/failures",
    summary="Why a code did not arrive: the verification's failed sends, each with its provider and error",
    scope="read",
    tag=TAG,
    answers={200: Failures},
    errors=(404,),
    params=ID,
)
async def failures(request: web.Request) -> web.Response:
    state = request.app[STATE]
    verification = await state.verifications.get(request.match_info["id"])
    tries = await state.queue.failures(verification.id)
    failed = [FailedSend(job=t.job, provider=t.provider, outcome=t.outcome, error=t.error,  # type: ignore[arg-type]
                         at=rfc3339(t.at)) for t in tries]  # fmt: skip
    return json(Failures(id=verification.id, failures=failed))


@router.route(
    "POST",
    "/v1/verifications/{id}/cancel",
    summary="Cancel a pending verification",
    scope="send",
    tag=TAG,
    answers={200: VerificationOut},
    errors=(404, 409),
    params=ID,
)
async def cancel(request: web.Request) -> web.Response:
    verification = await request.app[STATE].verifications.cancel(request.match_info["id"])
    return json(VerificationOut.of(verification))
