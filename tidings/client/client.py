"""``Client``: the API from asyncio code.

async with Client() as client:                      # TIDINGS_URL and TIDINGS_API_KEY, or pass them
    verification = await client.verifications.start(to="+447700900123")
    check = await client.verifications.check(to="+447700900123", code="123456")
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self
from urllib.parse import quote

from tidings.client.http import Http
from tidings.client.models import Cluster, Delivery, Event
from tidings.client.resources import Keys, Messages, Subscribers, Verifications


class Client:
    """``base_url`` defaults to ``TIDINGS_URL`` (else ``http://127.0.0.1:8000``), ``api_key`` to
    ``TIDINGS_API_KEY``. ``timeout`` bounds one request; 429, 503 and unreachable servers are tried again up to
    ``max_retries`` times, waiting what the server asks (at most ``max_wait`` seconds at a time)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_wait: float = 30.0,
    ) -> None:
        self._http = Http(base_url, api_key, timeout=timeout, max_retries=max_retries, max_wait=max_wait)
        self.verifications = Verifications(self._http)
        self.messages = Messages(self._http)
        self.subscribers = Subscribers(self._http)
        self.keys = Keys(self._http)

    @property
    def base_url(self) -> str:
        return self._http.base_url

    async def stream(
        self, subscriber_id: str, *, since: str | None = None, reconnect_wait: float = 1.0
    ) -> AsyncIterator[Event]:
        """The subscriber's messages as they are pushed, for as long as this is iterated. A dropped connection is
        opened again, resuming after the last message seen (or ``since``, a message id), so none is missed."""
        path = f"/v1/subscribers/{quote(subscriber_id, safe='')}/stream"
        async for event in self._http.events(path, since, reconnect_wait):
            yield Event.of(event)

    async def deliveries(self, *, status: str | None = None, limit: int | None = None) -> AsyncIterator[Delivery]:
        """Every message's deliveries, oldest first (``status="failed"``: the dead letters)."""
        params = {name: value for name, value in (("status", status), ("limit", limit)) if value is not None}
        async for item in self._http.pages("/v1/deliveries", "deliveries", params):
            yield Delivery.of(item)

    async def cluster(self) -> Cluster:
        """The live nodes and the queue depths."""
        return Cluster.of(await self._http.call("GET", "/v1/cluster"))

    async def close(self) -> None:
        await self._http.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()
