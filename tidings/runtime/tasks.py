"""Stopping background tasks for good."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

log = logging.getLogger("tidings")
TRIES = 3


async def stop(tasks: Iterable[asyncio.Task], patience: float = 1.0) -> None:
    """Cancel the tasks and wait until they have ended, cancelling again those still running after ``patience``.

    One cancellation is not always enough: redis-py's pub/sub, cancelled while it reconnects, can take the
    cancellation for a lost connection and go on listening; a task left so would hold the event loop open forever
    (aiohttp waits for every task before it exits)."""
    running = {task for task in tasks if not task.done()}
    for _ in range(TRIES):
        if not running:
            return
        for task in running:
            task.cancel()
        _, running = await asyncio.wait(running, timeout=patience)
    for task in running:
        log.warning("task %s did not stop when cancelled", task.get_name())
