"""Calls made in one turn of the event loop reach the batch function together, and each caller gets its own result."""

from __future__ import annotations

import asyncio

import pytest

from tidings.runtime.batching import TurnBatch


async def test_calls_of_one_turn_go_together_and_later_calls_apart():
    batches: list[list[int]] = []

    async def double(items: list[int]) -> list[int]:
        batches.append(items)
        return [item * 2 for item in items]

    batch = TurnBatch(double, limit=3)
    assert await asyncio.gather(*(batch(i) for i in range(7))) == [0, 2, 4, 6, 8, 10, 12]
    assert await batch(7) == 14
    assert batches == [[0, 1, 2], [3, 4, 5], [6], [7]]


async def test_errors_reach_their_own_callers():
    async def picky(items: list[int]) -> list[int | Exception]:
        return [ValueError(item) if item % 2 else item for item in items]

    async def broken(items: list[int]) -> list[int]:
        raise RuntimeError("down")

    results = await asyncio.gather(*(TurnBatch(picky)(i) for i in range(2)), return_exceptions=True)
    assert results[0] == 0 and isinstance(results[1], ValueError)
    failing = TurnBatch(broken)
    results = await asyncio.gather(failing(1), failing(2), return_exceptions=True)
    assert [str(result) for result in results] == ["down", "down"]


async def test_a_cancelled_caller_leaves_the_others_their_results():
    release = asyncio.Event()

    async def slow(items: list[int]) -> list[int]:
        await release.wait()
        return items

    batch = TurnBatch(slow)
    first, second = asyncio.ensure_future(batch(1)), asyncio.ensure_future(batch(2))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await second == 2
    with pytest.raises(asyncio.CancelledError):
        await first
