"""The handlers of Twilio Verify v2's routes: Basic auth, form bodies in, Twilio's JSON and errors out, and in between
the same ``Verifications`` service that ``/v1/verifications`` uses, so the same store, limits and rules apply.

Parameters Twilio does not know are ignored, as Twilio ignores them; parameters Twilio knows and tidings cannot honour
are refused (60204) rather than ignored, so that no request succeeds doing less than it asked.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from pydantic import ValidationError
from pydantic_core import to_json

from tidings.api.client_ip import client_ip
from tidings.api.models import StartVerification
from tidings.api.state import CALLER, STATE, State
from tidings.api.twilio import errors, wire
from tidings.api.twilio.errors import TwilioError
from tidings.core.settings import TwilioCompatSettings
from tidings.core.types import Channel, Verification
from tidings.errors import NotFound, TidingsError
from tidings.ports import Lookup
from tidings.services.verifications import StartInput

log = logging.getLogger("tidings.api")

Handler = Callable[[web.Request], Awaitable[web.Response]]
_FORM = "application/x-www-form-urlencoded"
_MAX_TO: int = next(
    rule.max_length for rule in StartVerification.model_fields["to"].metadata if hasattr(rule, "max_length")
)
_MAX_FIELDS = 100
_CUSTOM_CODE = re.compile(r"[0-9A-Za-z]{4,10}")
_TWILIO_CHANNELS = frozenset({"call", "whatsapp", "sna", "auto", "rcs"})
"""Channels Twilio has and tidings does not: refused as a channel the service has turned off (60223)."""

START = frozenset({"To", "Channel", "Locale", "CustomCode", "CustomFriendlyName", "DeviceIp", "RiskCheck"})
START_UNSUPPORTED = frozenset(
    {
        "CustomMessage",
        "SendDigits",
        "Amount",
        "Payee",
        "RateLimits",
        "ChannelConfiguration",
        "AppHash",
        "TemplateSid",
        "TemplateCustomSubstitutions",
        "EnableSnaClientToken",
        "Tags",
    }
)
CHECK = frozenset({"Code", "To", "VerificationSid"})
CHECK_UNSUPPORTED = frozenset({"Amount", "Payee", "SnaClientToken"})
UPDATE = frozenset({"Status"})


def endpoint(methods: dict[str, Handler]) -> Handler:
    """One resource's methods, with every error in Twilio's shape: a wrong method (20004), the services' errors
    translated, a body too large or unreadable, and anything unforeseen (20500, logged)."""
    allow = ", ".join(methods)

    async def handle(request: web.Request) -> web.Response:
        try:
            handler = methods.get("GET" if request.method == "HEAD" else request.method)
            if handler is None:
                raise TwilioError(20004, 405, f"Method not allowed: use {allow}", allow=allow)
            return await handler(request)
        except TwilioError as exc:
            error = exc
        except TidingsError as exc:
            if exc.status == 429:
                request.app[STATE].metrics.limited.labels(exc.code).inc()
            error = errors.translate(exc, _resource(request))
        except web.HTTPRequestEntityTooLarge:
            limit = request.app[STATE].settings.max_body_size
            error = TwilioError(20413, 413, f"Request Entity Too Large: the limit is {limit} bytes")
        except web.RequestPayloadError:
            error = errors.invalid("body", "it cannot be read")
        except ConnectionResetError:
            raise  # the client left: nobody to answer (the error middleware counts it)
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.path)
            error = TwilioError(20500, 500, "Internal Server Error: something went wrong on our side; it is logged")
        return error.response()

    handle.__name__ = f"twilio_{next(iter(methods.values())).__name__}"
    return handle


async def unknown(request: web.Request) -> web.Response:
    """Any other path under /v2: Twilio's 404, not tidings' own."""
    raise errors.not_found(_resource(request))


async def create(request: web.Request) -> web.Response:
    """``POST /v2/Services/{ServiceSid}/Verifications``: a start, or a resend of the pending code, as on /v1."""
    state, compat = await _authorized(request)
    form = await _form(request, START, START_UNSUPPORTED)
    to, channel = _required(form, "To"), _channel(_required(form, "Channel"))
    code = form.get("CustomCode")
    if code is not None:
        if not compat.allow_custom_code:
            raise errors.unsupported("CustomCode (the operator has not set [twilio_compat] allow_custom_code)")
        if not _CUSTOM_CODE.fullmatch(code):
            raise errors.invalid("CustomCode", "give 4 to 10 letters or digits")
    if "RiskCheck" in form and form["RiskCheck"] != "enable":
        if form["RiskCheck"] == "disable":
            raise errors.unsupported("RiskCheck=disable (tidings' anti-abuse limits always apply)")
        raise errors.invalid("RiskCheck", "use enable or disable")
    ip = _device_ip(form.get("DeviceIp")) or client_ip(
        request.remote, request.headers.get("X-Forwarded-For"), state.proxies
    )
    started = await state.verifications.start(
        _start_input(to, channel, form.get("Locale"), form.get("CustomFriendlyName"), ip, code)
    )
    state.metrics.started(channel.value, "resend" if started.resent else "new").inc()
    return _answer(_verification(request, started.verification, compat), 201)


async def check(request: web.Request) -> web.Response:
    """``POST /v2/Services/{ServiceSid}/VerificationCheck``: ``Code`` with ``VerificationSid`` (used when both
    are given, as the more exact) or ``To``; a wrong code is 200 with ``status: pending``."""
    state, compat = await _authorized(request)
    form = await _form(request, CHECK, CHECK_UNSUPPORTED)
    code = _required(form, "Code")
    if not 4 <= len(code) <= 10:
        raise errors.invalid("Code", "give 4 to 10 characters")
    if "VerificationSid" in form:
        id = wire.verification_id(form["VerificationSid"])
        if id is None:
            raise errors.invalid("VerificationSid", "a sid is VE and 32 hexadecimal digits")
        lookup = Lookup(id=id)
    elif form.get("To"):
        if len(form["To"]) > 320:
            raise errors.invalid("To", "at most 320 characters")
        lookup = Lookup(to=form["To"])
    else:
        raise errors.missing("To or VerificationSid")
    result = await state.verifications.check(lookup, code)
    state.metrics.checks.labels("valid" if result.valid else "invalid").inc()
    body = wire.verification_check(result.verification, result.valid, compat.account_sid or "", _service(compat))
    return _answer(body, 200)


async def fetch(request: web.Request) -> web.Response:
    """``GET /v2/Services/{ServiceSid}/Verifications/{Sid}``; one Twilio would have deleted is 404."""
    state, compat = await _authorized(request)
    verification = await state.verifications.get(_path_id(request))
    if verification.status in wire.GONE:
        raise errors.not_found(_resource(request))
    return _answer(_verification(request, verification, compat), 200)


async def update(request: web.Request) -> web.Response:
    """``POST /v2/Services/{ServiceSid}/Verifications/{Sid}`` with ``Status=canceled`` or ``Status=approved``
    (approved without a code, for an app that checks a code of its own)."""
    state, compat = await _authorized(request)
    id = _path_id(request)
    form = await _form(request, UPDATE, frozenset())
    status = _required(form, "Status")
    if status == "canceled":
        verification = await state.verifications.cancel(id)
    elif status == "approved":
        verification = await state.verifications.approve(id)
    else:
        raise errors.invalid("Status", "use canceled or approved")
    return _answer(_verification(request, verification, compat), 200)


async def _authorized(request: web.Request) -> tuple[State, TwilioCompatSettings]:
    """HTTP Basic: the configured account sid, and a tidings key with the ``send`` scope as the password; then the
    service sid in the path, which must be the configured one (404 otherwise, as Twilio says of another's)."""
    state = request.app[STATE]
    compat = state.settings.twilio_compat
    kind, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if kind.lower() != "basic":
        raise errors.unauthenticated("send the account sid and a tidings API key with HTTP Basic auth")
    try:
        username, colon, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise errors.unauthenticated("the Basic credentials are not base64 of `username:password`") from None
    account = (compat.account_sid or "").encode()
    right_account = hmac.compare_digest(username.encode(), account)  # constant time, as the key's lookup is
    key = await state.keyring.identify(password) if colon and password else None
    if not right_account or key is None:
        raise errors.unauthenticated("the account sid or the API key is wrong (unknown or revoked)")
    if "send" not in key.scopes and "admin" not in key.scopes:
        raise errors.unauthenticated("this API key lacks the `send` scope")
    request[CALLER] = key
    if request.match_info["service"] != compat.service_sid:
        raise errors.not_found(_resource(request))
    return state, compat


async def _form(request: web.Request, known: frozenset[str], refused: frozenset[str]) -> dict[str, str]:
    """The form body's ``known`` parameters, each at most once; one of ``refused`` is 60204, any other ignored."""
    settings = request.app[STATE].settings
    limit = settings.max_body_size
    if request.content_length is not None and request.content_length > limit:  # refused before it is uploaded
        raise TwilioError(20413, 413, f"Request Entity Too Large: the limit is {limit} bytes")
    if not request.body_exists:
        return {}
    if request.content_type != _FORM:
        raise errors.invalid("body", f"send the parameters as {_FORM}, not {request.content_type!r}")
    if request.content.is_eof():  # most bodies have come by now: read without the timer, which costs 5 µs
        raw = await request.read()
    else:
        try:
            async with asyncio.timeout(settings.body_timeout):
                raw = await request.read()
        except TimeoutError:
            raise TwilioError(20408, 408, f"the body did not arrive within {settings.body_timeout:g} s") from None
    try:
        pairs = parse_qsl(raw.decode(), keep_blank_values=True, errors="strict", max_num_fields=_MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise errors.invalid("body", f"send UTF-8 form data of at most {_MAX_FIELDS} parameters") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in refused:
            raise errors.unsupported(name)
        if name not in known:
            continue
        if name in form:
            raise errors.invalid(name, "given more than once")
        form[name] = value
    return form


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name)
    if value is None:
        raise errors.missing(name)
    return value


def _channel(name: str) -> Channel:
    try:
        return Channel(name)
    except ValueError:
        pass
    if name in _TWILIO_CHANNELS:
        raise TwilioError(60223, 400, f"Delivery channel disabled: tidings sends `sms` and `email`, not `{name}`")
    raise errors.invalid("Channel", "use sms or email")


def _device_ip(value: str | None) -> str | None:
    """``DeviceIp``, the end user's address: what tidings' per-IP limit counts, in place of the calling app's."""
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise errors.invalid("DeviceIp", "give an IPv4 or IPv6 address") from None


def _start_input(
    to: str, channel: Channel, locale: str | None, friendly_name: str | None, ip: str | None, code: str | None
) -> StartInput:
    """The start, its parameters held to /v1's rules for the same fields (lengths, the locale's shape, no control
    characters in the name that reaches the person). The usual start, an address and a channel, needs only the
    address's length checked: it skips the model, a tenth of this route's own time."""
    if locale is not None or friendly_name is not None or not 0 < len(to) <= _MAX_TO:
        try:
            StartVerification.model_validate(
                {"to": to, "channel": channel, "locale": locale, "app_name": friendly_name}
            )
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            field = str(first["loc"][0]) if first["loc"] else ""
            why = first["msg"].removeprefix("Value error, ")
            raise errors.invalid(errors.PARAMETERS.get(field, field), why) from None
    return StartInput(to, channel, locale, None, None, friendly_name, ip, code)


def _path_id(request: web.Request) -> str:
    id = wire.verification_id(request.match_info["sid"])
    if id is None:
        raise NotFound("not a verification sid", code="verification_not_found")
    return id


def _service(compat: TwilioCompatSettings) -> str:
    return compat.service_sid or ""


def _verification(request: web.Request, v: Verification, compat: TwilioCompatSettings) -> dict[str, Any]:
    base = compat.public_url.rstrip("/") if compat.public_url else f"{request.scheme}://{request.host}"
    return wire.verification(v, compat.account_sid or "", _service(compat), base)


def _resource(request: web.Request) -> str:
    """The path as Twilio names a resource in its errors: without the version."""
    return request.path.removeprefix("/v2") or "/"


def _answer(body: dict[str, Any], status: int) -> web.Response:
    return web.Response(body=to_json(body), status=status, content_type="application/json")
