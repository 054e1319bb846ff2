"""Errors as Twilio writes them, ``{"code", "message", "more_info", "status"}``, with Twilio's codes: the official
libraries read ``code`` and ``status`` into their exceptions, and apps branch on them (60202, 60203, 20404...).

tidings' own errors are translated in one place, ``translate``; docs/twilio.md has the table.
"""

from __future__ import annotations

from aiohttp import web
from pydantic_core import to_json

from tidings.errors import Forbidden, InvalidInput, TidingsError, Unauthorized

PARAMETERS = {
    "to": "To",
    "channel": "Channel",
    "locale": "Locale",
    "code": "Code",
    "id": "VerificationSid",
    "app_name": "CustomFriendlyName",
}
"""tidings' field names, as the Twilio parameters they come from."""

_BY_CODE: dict[str, tuple[int, int, str]] = {
    "max_attempts_reached": (60202, 429, "Max check attempts reached"),
    "max_sends_reached": (60203, 429, "Max send attempts reached"),
    "country_not_allowed": (60605, 403, "Verification delivery attempt blocked"),
    "channel_not_configured": (60223, 400, "Delivery channel disabled"),
}
_GONE = frozenset(
    {
        "verification_not_found",
        "verification_expired",
        "verification_approved",
        "verification_canceled",
        "verification_failed",
    }
)
_BY_STATUS = {
    400: (60200, "Invalid parameter"),
    404: (20404, "Not found"),
    413: (20413, "Request Entity Too Large"),
    429: (20429, "Too Many Requests"),
    500: (20500, "Internal Server Error"),
    503: (20503, "Service unavailable"),
}


class TwilioError(Exception):
    def __init__(
        self,
        code: int,
        status: int,
        message: str,
        *,
        retry_after: float | None = None,
        allow: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.allow = allow

    def response(self) -> web.Response:
        body = {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }
        response = web.Response(body=to_json(body), status=self.status, content_type="application/json")
        if self.retry_after is not None:
            response.headers["Retry-After"] = str(int(self.retry_after))
        if self.status == 401:
            response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        if self.allow is not None:
            response.headers["Allow"] = self.allow
        return response


def invalid(parameter: str, why: str) -> TwilioError:
    """60200, naming the parameter as Twilio does (``Invalid parameter: To``), then saying why."""
    return TwilioError(60200, 400, f"Invalid parameter: {parameter}: {why}")


def missing(parameter: str) -> TwilioError:
    return TwilioError(60200, 400, f"Missing required parameter {parameter} in the post body")


def not_found(resource: str) -> TwilioError:
    """20404 in Twilio's words; ``resource`` is the path after ``/v2``."""
    return TwilioError(20404, 404, f"The requested resource {resource[:200]} was not found")


def unsupported(feature: str) -> TwilioError:
    """60204, which Twilio answers for a feature the service has not turned on: here one tidings does not have."""
    return TwilioError(60204, 403, f"Service does not support this feature: {feature} (see tidings' docs/twilio.md)")


def unauthenticated(why: str) -> TwilioError:
    return TwilioError(20003, 401, f"Authenticate: {why}")


def translate(error: TidingsError, resource: str) -> TwilioError:
    """The Twilio error for one of tidings' own, raised by the services under these routes."""
    if error.code in _GONE:
        return not_found(resource)
    if error.code in _BY_CODE:
        code, status, title = _BY_CODE[error.code]
        return TwilioError(code, status, f"{title}: {error.message}", retry_after=error.retry_after)
    if isinstance(error, InvalidInput):
        field = str(error.details.get("field") or "")
        return invalid(PARAMETERS.get(field, field or "body"), error.message.removeprefix(f"{field}: "))
    if isinstance(error, Unauthorized | Forbidden):
        return unauthenticated(error.message)
    code, title = _BY_STATUS.get(error.status, (20000 + error.status, "Error"))
    return TwilioError(code, error.status, f"{title}: {error.message}", retry_after=error.retry_after)
