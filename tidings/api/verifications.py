"""``/v1/verifications``: start, check, read and cancel one-time codes."""

from __future__ import annotations

from aiohttp import web

from tidings.api.client_ip import client_ip
from tidings.api.models import CheckOut, CheckVerification, StartVerification, VerificationOut
from tidings.api.routing import Param, Router, json
from tidings.api.state import STATE
from tidings.core import ids
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
