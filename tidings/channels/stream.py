"""Live streams: the connections open in this process, and the sender that puts a message on them.

A message is encoded once and the same bytes go to every connection. Each connection has a bounded buffer: a
client that falls that far behind is disconnected (it replays what it missed when it comes back), so one slow
reader never holds up the others or grows the server's memory.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from tidings.core.push import StreamCall
from tidings.core.types import Delivered, SendOutcome
from tidings.ports import PushStore


@dataclass(slots=True)
class StreamEvent:
    """One message as every stream carries it; ``None`` as an id is a heartbeat."""

    id: str | None
    data: bytes
    _sse: bytes | None = field(default=None, repr=False)

    @property
    def sse(self) -> bytes:
        """The Server-Sent Events frame, built once however many connections send it."""
        if self._sse is None:
            if self.id is None:
                self._sse = b": ping\n\n"
            else:
                self._sse = b"id: " + self.id.encode() + b"\nevent: message\ndata: " + self.data + b"\n\n"
        return self._sse


HEARTBEAT = StreamEvent(None, b"")


class Listener:
    """One open connection's queue of events."""

    __slots__ = ("_events", "_limit", "_ready", "dropped", "on_drop", "subscriber_id")

    def __init__(self, subscriber_id: str, limit: int) -> None:
        self.subscriber_id = subscriber_id
        self._events: deque[StreamEvent] = deque()
        self._limit = limit
        self._ready = asyncio.Event()
        self.dropped = False
        self.on_drop: Callable[[], None] | None = None
        """Called when the buffer overflows, to cut the connection even while a write to it is stuck."""

    def push(self, event: StreamEvent) -> bool:
        if self.dropped:
            return False
        if len(self._events) >= self._limit:
            self.dropped = True
            self._ready.set()
            if self.on_drop is not None:
                self.on_drop()
            return False
        self._events.append(event)
        self._ready.set()
        return True

    def close(self) -> None:
        """The client went away: end ``next``."""
        self.dropped = True
        self._ready.set()

    async def next(self) -> StreamEvent | None:
        """The next event; None once the connection is to be dropped."""
        while not self._events:
            if self.dropped:
                return None
            self._ready.clear()
            await self._ready.wait()
        return None if self.dropped else self._events.popleft()


class Hub:
    """The live connections of this process, by subscriber."""

    def __init__(self, buffer: int) -> None:
        self.buffer = buffer
        self._listeners: dict[str, set[Listener]] = {}
        self.dropped = 0
        """Connections cut for falling behind, since the start."""

    @property
    def connections(self) -> int:
        return sum(len(listeners) for listeners in self._listeners.values())

    def close_all(self) -> None:
        for listeners in self._listeners.values():
            for listener in listeners:
                listener.close()

    def listen(self, subscriber_id: str) -> Listener:
        listener = Listener(subscriber_id, self.buffer)
        self._listeners.setdefault(subscriber_id, set()).add(listener)
        return listener

    def leave(self, listener: Listener) -> None:
        listeners = self._listeners.get(listener.subscriber_id)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[listener.subscriber_id]

    def publish(self, subscriber_ids: tuple[str, ...] | list[str], event: StreamEvent) -> int:
        """Hand ``event`` to every connection of these subscribers; returns how many took it."""
        sent = 0
        for subscriber_id in subscriber_ids:
            for listener in self._listeners.get(subscriber_id, ()):
                if listener.dropped:
                    continue
                if listener.push(event):
                    sent += 1
                else:
                    self.dropped += 1
        return sent

    async def heartbeat_forever(self, every: float) -> None:
        """One timer for every connection, so idle proxies keep them open and dead ones are found."""
        while True:
            await asyncio.sleep(every)
            for listeners in list(self._listeners.values()):
                for listener in list(listeners):
                    listener.push(HEARTBEAT)


class Streams:
    """The ``stream`` lane's sender: cache the message for replay, then hand it to the open connections."""

    name = "stream"

    def __init__(self, store: PushStore, hub: Hub) -> None:
        self.store = store
        self.hub = hub

    async def send(self, call: StreamCall) -> SendOutcome:
        if call.subscriber_ids:
            await self.store.record_stream(call.message_id, list(call.subscriber_ids), time.time())
            self.hub.publish(call.subscriber_ids, StreamEvent(call.message_id, call.event))
        return Delivered()
