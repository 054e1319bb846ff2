"""The relay and the node registry when one process is the whole deployment (the SQLite backend)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tidings.ports import Deliver, Node


class LocalRelay:
    """Events go straight to this process's connections."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    async def publish(self, message_id: str, event: bytes, subscriber_ids: list[str]) -> None:
        if self._deliver is not None:
            self._deliver(message_id, event, subscriber_ids)

    async def run(self, deliver: Deliver, lost: Callable[[], None]) -> None:
        self._deliver = deliver
        try:
            await asyncio.Future()
        finally:
            self._deliver = None


class LocalNodes:
    """This process is the only node; it is forgotten, as a node on Redis is, once it stops reporting."""

    def __init__(self) -> None:
        self._me: Node | None = None
        self._until = 0.0

    async def beat(self, node: Node, ttl: float) -> None:
        self._me, self._until = node, node.seen_at + ttl

    async def live(self, now: float) -> list[Node]:
        return [self._me] if self._me is not None and now < self._until else []
