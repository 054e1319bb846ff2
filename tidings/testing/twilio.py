"""A Twilio emulator: ``POST /2010-04-01/Accounts/{sid}/Messages.json`` with the checks and answers Twilio
documents (Basic auth, required fields, E.164 numbers, error JSON with ``code``, ``message``, ``more_info``).

Injected failures answer as Twilio does when an account sends too many concurrent requests: 429, code 20429.
"""

from __future__ import annotations

import base64
import hmac
import itertools
import re
from typing import Any

from aiohttp import web

from tidings.testing.emulator import Emulator, application

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
MAX_BODY = 1600


def error(status: int, code: int, message: str) -> web.Response:
    body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}"}
    return web.json_response({**body, "status": status}, status=status)


def create_app(account_sid: str = "AC" + "0" * 32, auth_token: str = "test-token", **options: Any) -> web.Application:
    """An emulator accepting one account; ``options`` go to ``Emulator`` (latency, failure_rate, fail_first, seed)."""
    emulator = Emulator(**options)
    app = application(emulator)
    sids = itertools.count(1)
    expected = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()

    async def messages(request: web.Request) -> web.Response:
        failing = await emulator.arrive()
        presented = request.headers.get("Authorization", "")
        if request.match_info["sid"] != account_sid or not hmac.compare_digest(presented, expected):
            return error(401, 20003, "Authenticate")
        if failing:
            response = error(429, 20429, "Too Many Requests")
            response.headers["Retry-After"] = "1"
            return response
        form = await request.post()
        to, body = str(form.get("To", "")), str(form.get("Body", ""))
        sender = str(form.get("MessagingServiceSid", "") or form.get("From", ""))
        if not to:
            return error(400, 21604, "A 'To' phone number is required.")
        if not sender:
            return error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message.")
        if not body:
            return error(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY:
            return error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if not _E164.match(to):
            return error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        source = str(form.get("From", ""))
        if source and not (_E164.match(source) or _ALPHANUMERIC_SENDER.match(source)):
            return error(400, 21212, f"The 'From' number {source} is not a valid phone number or shortcode.")
        emulator.accept(to, body, request.headers.get("I-Twilio-Idempotency-Token"))
        sid = f"SM{next(sids):032x}"
        return web.json_response(
            {
                "sid": sid,
                "account_sid": account_sid,
                "to": to,
                "from": source or None,
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": body,
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
            },
            status=201,
        )

    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", messages)
    return app
