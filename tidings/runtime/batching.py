"""Calls made in the same turn of the event loop, handed together to one function.

The dispatcher starts a leased batch of sends in one turn, and a burst of API requests arrives in one turn: a
round trip that can carry many of them (a Redis pipeline, a provider's batch endpoint) then costs one request
instead of one each, without making a lone call wait for company.

``aiodataloader`` batches loads the same way, but for keyed reads: it caches results and merges equal keys, which a
send or a script call must never have.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class TurnBatch(Generic[T, R]):
    """``await batch(item)`` returns the result ``run`` gave for that item.

    ``run`` receives the items of one turn (at most ``limit`` at a time; 0 is no limit) and returns one result per
    item, in order; a result that is an exception is raised to that item's caller, and an exception raised by
    ``run`` itself to every caller of its batch.
    """

    def __init__(self, run: Callable[[list[T]], Awaitable[Sequence[R | BaseException]]], limit: int = 0) -> None:
        self._run = run
        self._limit = limit
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._running: set[asyncio.Task[None]] = set()

    async def __call__(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        size = self._limit or len(pending)
        for start in range(0, len(pending), size):
            task = asyncio.create_task(self._settle(pending[start : start + size]))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _settle(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results: Sequence[R | BaseException] = await self._run([item for item, _ in batch])
        except Exception as exc:
            results = [exc] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
