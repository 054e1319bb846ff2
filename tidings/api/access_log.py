"""The access log: one line a request, and no secret in it.

aiohttp's own line holds the request line as it came, query string included, and a subscriber token travels in
``?token=`` (a browser's EventSource sets no headers). Here every query value is masked but those of the
parameters that never hold a secret nor anything personal: ``to`` (a phone number or an address) is masked too, as
the request id finds the verification when it matters.
"""

from __future__ import annotations

import logging

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from tidings.runtime.logs import MASK

SHOWN = frozenset({"status", "cursor", "limit", "since", "until", "step", "topic"})


class AccessLogger(AbstractAccessLogger):
    """``client method path?query status bytes duration request-id``, logged at ``INFO``."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        path, _, query = request.raw_path.partition("?")
        self.logger.info(
            "%s %s %s %d %dB %.2fms %s",
            request.remote,
            request.method,
            f"{path}?{masked_query(query)}" if query else path,
            response.status,
            response.body_length,
            time * 1000,
            response.headers.get("X-Request-Id", "-"),
        )

    @property
    def enabled(self) -> bool:
        """Not even the line is made when ``INFO`` is off."""
        return self.logger.isEnabledFor(logging.INFO)


def masked_query(query: str) -> str:
    """The raw query (still percent-encoded, so no control character reaches the log) with its values masked. A
    parameter without a value is masked whole: the name is all there is, and it may be the secret."""
    pairs = []
    for pair in query.split("&"):
        name, equals, _ = pair.partition("=")
        if name in SHOWN:
            pairs.append(pair)
        else:
            pairs.append(f"{name}={MASK}" if equals else MASK)
    return "&".join(pairs)
