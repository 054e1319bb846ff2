"""Live streams: the connections open in this process, and the sender that puts a message on them.

A message is framed once (an SSE event in an HTTP chunk, a WebSocket text frame) and the same bytes are written
straight to every connection's transport: no task wakes up per connection, so one message reaches tens of
thousands of streams in a few milliseconds of work each thousand. A connection whose unsent bytes pass its limit is
cut (the client replays what it missed when it comes back), so one slow reader never holds up the others or grows
the server's memory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tidings.core.push import StreamCall
from tidings.core.types import Delivered, SendOutcome
from tidings.ports import PushStore, Relay


@dataclass(slots=True)
class StreamEvent:
    """One message as every stream carries it; an empty id is a heartbeat."""

    id: str
    data: bytes
    _frames: dict[str, bytes] = field(default_factory=dict, repr=False)

    def framed(self, kind: str) -> bytes:
        """The bytes for one kind of connection, built once however many connections get them."""
        frame = self._frames.get(kind)
        if frame is None:
            frame = self._frames[kind] = FRAMINGS[kind](self)
        return frame


def _sse(event: StreamEvent) -> bytes:
    """A heartbeat is a comment line alone: with a blank line after it, some clients would see an empty event."""
    if not event.id:
        return b": ping\n"
    return b"id: " + event.id.encode() + b"\nevent: message\ndata: " + event.data + b"\n\n"


def _chunk(payload: bytes) -> bytes:
    """HTTP/1.1 chunked framing, as the response to an HTTP/1.1 client is sent."""
    return b"%x\r\n%b\r\n" % (len(payload), payload)


def _ws_text(event: StreamEvent) -> bytes:
    """An unmasked RFC 6455 text frame (server to client). Written here because aiohttp's writer frames per
    connection, while here one frame serves them all. Heartbeats are aiohttp's own pings: no frame."""
    if not event.id:
        return b""
    size = len(event.data)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 1 << 16:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + event.data


FRAMINGS: dict[str, Callable[[StreamEvent], bytes]] = {
    "sse": _sse,
    "sse-chunked": lambda event: _chunk(_sse(event)),
    "ws": _ws_text,
}
HEARTBEAT = StreamEvent("", b"")


class Listener:
    """One open connection. Until ``go_live`` (while the handler replays the cache) events are held back, so the
    replay and the live events arrive in order and each once."""

    __slots__ = ("_held", "_limit", "cut", "done", "kind", "subscriber_id", "token", "transport")

    def __init__(
        self, subscriber_id: str, transport: asyncio.Transport, kind: str, limit: int, token: str | None = None
    ) -> None:
        self.subscriber_id = subscriber_id
        self.transport = transport
        self.kind = kind
        self.token = token
        """The subscriber token it was opened with, if any."""
        self._limit = limit
        self._held: list[StreamEvent] | None = []
        self.cut = False
        """Cut for falling behind."""
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        """Resolved when the connection is over: the client left, fell behind, or the server stops."""

    def push(self, event: StreamEvent) -> bool:
        """Send ``event`` now; False when the connection is over or was just cut for falling behind."""
        if self.done.done():
            return False
        if self._held is not None:
            self._held.append(event)
            return True
        transport = self.transport
        if transport.is_closing():
            self.close()
            return False
        if transport.get_write_buffer_size() > self._limit:
            self.cut = True
            transport.abort()
            self.close()
            return False
        frame = event.framed(self.kind)
        if frame:
            transport.write(frame)
        return True

    def go_live(self, replayed: set[str]) -> None:
        """The replay is written: send what arrived meanwhile (but what the replay had), then everything at once."""
        held, self._held = self._held or [], None
        for event in held:
            if event.id not in replayed:
                self.push(event)

    def close(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class Hub:
    """The live connections of this process, by subscriber."""

    def __init__(self, buffer: int, capacity: int, per_subscriber: int = 0, per_token: int = 0) -> None:
        self.buffer = buffer
        self.capacity = capacity
        """Connections this process holds at most."""
        self.per_subscriber = per_subscriber
        self.per_token = per_token
        """Connections one subscriber, and one subscriber token, hold at most (0: no cap)."""
        self._listeners: dict[str, set[Listener]] = {}
        self._by_token: dict[str, int] = {}
        self.connections = 0
        self.dropped = 0
        """Connections cut for falling behind, since the start."""

    @property
    def full(self) -> bool:
        return self.connections >= self.capacity

    def crowded(self, subscriber_id: str, token: str | None) -> str | None:
        """Why one more connection of this subscriber (with this token) is refused, or None: one client must not
        hold every file the process has."""
        if self.per_subscriber and len(self._listeners.get(subscriber_id, ())) >= self.per_subscriber:
            return f"subscriber {subscriber_id!r} already holds {self.per_subscriber} streams"
        if token is not None and self.per_token and self._by_token.get(token, 0) >= self.per_token:
            return f"this subscriber token already holds {self.per_token} streams"
        return None

    def listen(self, subscriber_id: str, transport: asyncio.Transport, kind: str, token: str | None = None) -> Listener:
        listener = Listener(subscriber_id, transport, kind, self.buffer, token)
        self._listeners.setdefault(subscriber_id, set()).add(listener)
        if token is not None:
            self._by_token[token] = self._by_token.get(token, 0) + 1
        self.connections += 1
        return listener

    def leave(self, listener: Listener) -> None:
        listener.close()
        listeners = self._listeners.get(listener.subscriber_id)
        if listeners is not None and listener in listeners:
            listeners.discard(listener)
            self.connections -= 1
            if not listeners:
                del self._listeners[listener.subscriber_id]
            if listener.token is not None:
                left = self._by_token.pop(listener.token) - 1
                if left:
                    self._by_token[listener.token] = left

    def publish(self, subscriber_ids: tuple[str, ...] | list[str], event: StreamEvent) -> int:
        """Write ``event`` to every connection of these subscribers; returns how many took it."""
        sent = 0
        for subscriber_id in subscriber_ids:
            for listener in self._listeners.get(subscriber_id, ()):
                sent += self._push(listener, event)
        return sent

    def deliver(self, message_id: str, event: bytes, subscriber_ids: list[str]) -> None:
        """What the relay hands over (see ``ports.Deliver``)."""
        self.publish(subscriber_ids, StreamEvent(message_id, event))

    def close_all(self) -> None:
        """The server stops: end every stream (clients reconnect, to this node or another)."""
        for listeners in self._listeners.values():
            for listener in listeners:
                listener.transport.close()
                listener.close()

    async def heartbeat_forever(self, every: float) -> None:
        """One timer for every connection, so idle proxies keep them open and departed clients are noticed."""
        while True:
            await asyncio.sleep(every)
            for listeners in list(self._listeners.values()):
                for listener in list(listeners):
                    self._push(listener, HEARTBEAT)

    def _push(self, listener: Listener, event: StreamEvent) -> bool:
        was_cut = listener.cut
        if listener.push(event):
            return True
        self.dropped += listener.cut and not was_cut
        return False


class Streams:
    """The ``stream`` lane's sender: keep the message for replay, then hand it to the open connections of every
    process (through the relay).

    Caching first is what makes a message reach a client that is connecting meanwhile: the client listens before
    it reads the cache, so it finds the message in the cache, or receives it live, or both (and drops the
    duplicate)."""

    name = "stream"

    def __init__(self, store: PushStore, relay: Relay) -> None:
        self.store = store
        self.relay = relay

    async def send(self, call: StreamCall) -> SendOutcome:
        if call.subscriber_ids:
            ids = list(call.subscriber_ids)
            await self.store.record_stream(call.message_id, ids, time.time())
            await self.relay.publish(call.message_id, call.event, ids)
        return Delivered()
