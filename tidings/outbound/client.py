"""The one place that touches the network for providers: a pooled ``aiohttp.ClientSession``, its timeouts, and
the translation of network failures and HTTP statuses into send outcomes."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from tidings.core.types import Permanent, Transient


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON (a proxy's HTML error page, say)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: either delta-seconds or an HTTP date."""
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


PROVIDER_RETRIES = frozenset({408, 425, 429})
"""Besides 5xx: a request that timed out, came too early, or came too often is worth sending again."""
WEBHOOK_RETRIES = frozenset({429})
"""Besides 5xx, as API.md says: a receiver's other 4xx answers are final."""


def outcome_for_status(
    response: Response, error: str | None = None, message: str = "", retry: frozenset[int] = PROVIDER_RETRIES
) -> Transient | Permanent:
    """The usual reading of a failed HTTP answer: 5xx and the ``retry`` statuses are worth retrying, others final."""
    code = error or f"http_{response.status}"
    text = message or response.text[:200]
    if response.status in retry or response.status >= 500:
        return Transient(code, text, retry_after(response.headers))
    return Permanent(code, text)


class AddressRefused(OSError):
    """Raised by a resolver that will not let the client reach a host at all (see ``channels.guard``); the request
    comes back as ``Permanent(error)``, since asking again would be refused again."""

    error = "address_refused"


class HttpClient:
    """One pooled session for every provider, so connections are reused instead of opened per message.

    ``resolver`` replaces aiohttp's own and is closed with the client.
    """

    def __init__(self, timeout: float = 10.0, resolver: AbstractResolver | None = None) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 5.0))
        self.resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=0, ttl_dns_cache=300, enable_cleanup_closed=True, resolver=self.resolver
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self.timeout, headers={"User-Agent": "tidings"}
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        data: Mapping[str, str] | bytes | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        allow_redirects: bool = True,
    ) -> Response | Transient | Permanent:
        """Send a request; a timeout or connection failure comes back as a ``Transient`` outcome, not raised.

        A form is encoded here in one call rather than through aiohttp's ``FormData``, which costs several times
        as much per request and matters at thousands of sends a second.
        """
        if isinstance(data, Mapping):
            data = urlencode(data).encode()
            headers = {**(headers or {}), "Content-Type": "application/x-www-form-urlencoded"}
        try:
            async with self.session.request(
                method, url, data=data, json=json_body, headers=headers, params=params, allow_redirects=allow_redirects
            ) as answer:
                body = await answer.read()
                return Response(answer.status, answer.headers, body)
        except TimeoutError:
            return Transient("timeout", f"no answer from {_host(url)} in time")
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, AddressRefused):
                return Permanent(exc.os_error.error, str(exc.os_error))
            return Transient("connection_error", f"{type(exc).__name__} talking to {_host(url)}")
        except aiohttp.ClientError as exc:
            return Transient("connection_error", f"{type(exc).__name__} talking to {_host(url)}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self.resolver is not None:
            await self.resolver.close()


def _host(url: str) -> str:
    return URL(url).host or url
