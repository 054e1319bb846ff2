"""The API's errors as exceptions: each carries the error's ``code``, the HTTP ``status`` and, when the server asked
to wait, ``retry_after`` (seconds), so that calling code can branch on them without reading a body."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class TidingsError(Exception):
    """An answer that is not a success, or no answer at all (``status`` 0)."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status: int,
        retry_after: float | None = None,
        field: str | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.retry_after = retry_after
        self.field = field
        """The request field the error is about, when the API names one."""
        self.body: Mapping[str, Any] = body or {}
        """The whole ``error`` object, with any detail beyond these (``did_you_mean``, ``attempts_left``...)."""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.status else self.message


class InvalidRequest(TidingsError):
    """400, 413, 415, 422: the request is wrong or refused; sending it again changes nothing."""


class AuthenticationFailed(TidingsError):
    """401: no key, or one the server does not know (revoked, mistyped)."""


class PermissionDenied(TidingsError):
    """403: the key lacks the scope (``send``, ``read``, ``admin``) the call needs."""


class NotFound(TidingsError):
    """404: no such verification, message, subscriber or key (``code`` says which, and why)."""


class Conflict(TidingsError):
    """409."""


class RateLimited(TidingsError):
    """429: a limit was reached; ``retry_after`` says when to try again."""


class Unavailable(TidingsError):
    """503 (and other 5xx): the server is busy or its store is down; worth trying again later."""


class ConnectionFailed(TidingsError):
    """The server could not be reached, or did not answer in time."""


_BY_STATUS: dict[int, type[TidingsError]] = {
    400: InvalidRequest,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    415: InvalidRequest,
    422: InvalidRequest,
    429: RateLimited,
}


def error_for(status: int, body: Any, retry_after_header: str | None) -> TidingsError:
    """The exception for an answer of ``status`` with the API's ``{"error": {...}}`` body (or anything else)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {"code": f"http_{status}", "message": f"the server answered {status}"}
    retry_after = error.get("retry_after")
    if retry_after is None and retry_after_header:
        try:
            retry_after = float(retry_after_header)
        except ValueError:
            retry_after = None
    cls = _BY_STATUS.get(status, Unavailable if status >= 500 else TidingsError)
    return cls(
        str(error.get("message", "")),
        code=str(error.get("code", f"http_{status}")),
        status=status,
        retry_after=None if retry_after is None else float(retry_after),
        field=error.get("field"),
        body=error,
    )
