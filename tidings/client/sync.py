"""``SyncClient``: the same API from blocking code (Django, Flask, scripts).

    with SyncClient() as client:
        client.verifications.start(to="+447700900123")

It is not a second implementation: each of its methods runs the ``Client`` method of the same name on an event
loop of its own, in a background thread, and waits for the result (``blocking``). One thread per client, so a
``SyncClient`` may be shared by the threads of a web server, and works where an event loop already runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar

from tidings.client.client import Client
from tidings.client.resources import Keys, Messages, Subscribers, Verifications

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")


class _Loop:
    """An event loop in a daemon thread, started on first use."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(work, self._running())
        return future.result()

    def iterate(self, items: AsyncIterator[T]) -> Iterator[T]:
        """``items``, one at a time; stopping early closes it (and, for a stream, its connection)."""
        try:
            while True:
                try:
                    yield self.run(_next(items))
                except StopAsyncIteration:
                    return
        finally:
            aclose = getattr(items, "aclose", None)
            if aclose is not None:
                self.run(aclose())

    def close(self) -> None:
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name="tidings-client", daemon=True)
                self._thread.start()
                self._loop = loop
            return self._loop


async def _next(items: AsyncIterator[T]) -> T:
    return await anext(items)


class _Blocking(Generic[R]):
    """A resource of ``Client`` run from blocking code."""

    def __init__(self, resource: R, loop: _Loop) -> None:
        self._resource = resource
        self._loop = loop


def blocking(method: Callable[Concatenate[R, P], Awaitable[T]]) -> Callable[Concatenate[_Blocking[R], P], T]:
    """The coroutine method ``method`` as a method that waits for its result."""

    def call(self: _Blocking[R], *args: P.args, **kwargs: P.kwargs) -> T:
        return self._loop.run(_awaited(method(self._resource, *args, **kwargs)))

    call.__doc__ = method.__doc__
    return call


def blocking_iterator(
    method: Callable[Concatenate[R, P], AsyncIterator[T]],
) -> Callable[Concatenate[_Blocking[R], P], Iterator[T]]:
    """The async iterator method ``method`` as a method that returns a plain iterator."""

    def call(self: _Blocking[R], *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        return self._loop.iterate(method(self._resource, *args, **kwargs))

    call.__doc__ = method.__doc__
    return call


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


class SyncVerifications(_Blocking[Verifications]):
    start = blocking(Verifications.start)
    check = blocking(Verifications.check)
    get = blocking(Verifications.get)
    cancel = blocking(Verifications.cancel)
    list = blocking_iterator(Verifications.list)


class SyncMessages(_Blocking[Messages]):
    send = blocking(Messages.send)
    get = blocking(Messages.get)
    deliveries = blocking_iterator(Messages.deliveries)
    retry = blocking(Messages.retry)
    list = blocking_iterator(Messages.list)


class SyncSubscribers(_Blocking[Subscribers]):
    put = blocking(Subscribers.put)
    get = blocking(Subscribers.get)
    delete = blocking(Subscribers.delete)
    list = blocking_iterator(Subscribers.list)
    token = blocking(Subscribers.token)


class SyncKeys(_Blocking[Keys]):
    create = blocking(Keys.create)
    list = blocking(Keys.list)
    revoke = blocking(Keys.revoke)


class _SyncClient(_Blocking[Client]):
    stream = blocking_iterator(Client.stream)
    deliveries = blocking_iterator(Client.deliveries)
    cluster = blocking(Client.cluster)


class SyncClient(_SyncClient):
    """``Client``'s methods, blocking; made with the same arguments."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_wait: float = 30.0,
    ) -> None:
        client = Client(base_url, api_key, timeout=timeout, max_retries=max_retries, max_wait=max_wait)
        super().__init__(client, _Loop())
        self.verifications = SyncVerifications(client.verifications, self._loop)
        self.messages = SyncMessages(client.messages, self._loop)
        self.subscribers = SyncSubscribers(client.subscribers, self._loop)
        self.keys = SyncKeys(client.keys, self._loop)

    @property
    def base_url(self) -> str:
        return self._resource.base_url

    def close(self) -> None:
        self._loop.run(self._resource.close())
        self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
