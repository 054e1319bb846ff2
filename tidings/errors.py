"""The errors tidings raises, and the API answer each one becomes.

TidingsError
 ├── InvalidInput      400  a field is wrong; ``field`` names it
 ├── Unauthorized      401  no key, or an unknown one
 ├── Forbidden         403  the key lacks the scope
 ├── NotFound          404  unknown id, or a verification that can no longer be checked
 ├── RequestTimeout    408  the body did not arrive within ``body_timeout``
 ├── Conflict          409
 ├── PayloadTooLarge   413  the body is over ``max_body_size``
 ├── UnsupportedMediaType 415  the body is not JSON
 ├── Unprocessable     422  well-formed but refused (e.g. a country that is not allowed)
 ├── RateLimited       429  with ``retry_after`` seconds
 ├── Unavailable       503  back-pressure or a backend down, with ``retry_after``
 └── StoreError        503  the store could not be reached
"""

from __future__ import annotations

import math
from typing import Any


class TidingsError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details
        self.retry_after: float | None = details.get("retry_after")
        """When to try again, if the error says (429 and 503 always do; a 409 may): sent as ``Retry-After`` too."""

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.details}}


class InvalidInput(TidingsError):
    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None, **details: Any):
        if field is not None:
            details["field"] = field
        super().__init__(message, code=code, **details)


class Unauthorized(TidingsError):
    status = 401
    code = "unauthorized"


class Forbidden(TidingsError):
    status = 403
    code = "forbidden"


class NotFound(TidingsError):
    status = 404
    code = "not_found"


class RequestTimeout(TidingsError):
    status = 408
    code = "request_timeout"


class Conflict(TidingsError):
    status = 409
    code = "conflict"


class PayloadTooLarge(TidingsError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(TidingsError):
    status = 415
    code = "unsupported_media_type"


class Unprocessable(TidingsError):
    status = 422
    code = "unprocessable"


class _WithRetryAfter(TidingsError):
    def __init__(self, message: str, *, retry_after: float, code: str | None = None, **details: Any):
        super().__init__(message, code=code, retry_after=max(1, math.ceil(retry_after)), **details)


class RateLimited(_WithRetryAfter):
    status = 429
    code = "rate_limited"


class Unavailable(_WithRetryAfter):
    status = 503
    code = "unavailable"


class StoreError(Unavailable):
    code = "store_unavailable"


class QueueFull(Unavailable):
    """Back-pressure: more sends wait than ``dispatch.max_queue``, so no new one is taken."""

    code = "queue_full"

    def __init__(self) -> None:
        super().__init__("the send queue is full; try again shortly", retry_after=5)


class BackendError(Exception):
    """The database cannot be opened at start; the message says why (the command prints it and exits)."""
