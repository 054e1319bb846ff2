"""A small HTTP/2 server over plain TCP with prior knowledge (h2c: no TLS, no Upgrade), for emulators of services
that speak only HTTP/2.

aiohttp, which serves the other emulators, serves HTTP/1.1 only, and APNs speaks HTTP/2 only; so this is an
``asyncio.Protocol`` on ``h2``, after h2's asyncio server example, which ``httpx.AsyncClient(http1=False,
http2=True)`` or ``curl --http2-prior-knowledge`` reach. Each request runs in its own task, so one slow answer holds
no other stream; answers go out within the client's flow-control windows, and closing says GOAWAY to every client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes, Settings

LENIENT = ("utf-8", "surrogateescape")
"""Header bytes that are not UTF-8 survive decoding, and come back as they were on encoding."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


Handler = Callable[[dict[str, str], bytes], Awaitable[Answer]]
"""Answers a request from its headers (pseudo-headers such as ``:method`` and ``:path`` among them) and body."""


class H2cServer:
    """Serves ``handler`` to every request on every connection, announcing ``SETTINGS_MAX_CONCURRENT_STREAMS`` as
    ``max_concurrent_streams`` and keeping the first ``body_limit`` bytes of each request body."""

    def __init__(self, handler: Handler, *, max_concurrent_streams: int, body_limit: int) -> None:
        self.handler = handler
        self.max_concurrent_streams = max_concurrent_streams
        self.body_limit = body_limit
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self.base_url = ""
        """``http://host:port`` once started, else empty."""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0: any free port) and answer ``http://host:port``."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port, backlog=8192)
        port = self._server.sockets[0].getsockname()[1]
        self.base_url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        return self.base_url

    async def close(self) -> None:
        """Stop listening, say GOAWAY to every client, and wait for the requests in hand to be cancelled."""
        if self._server is None:
            return
        self._server.close()
        tasks = [task for connection in self._connections for task in connection.tasks.values()]
        for connection in list(self._connections):
            connection.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None


@dataclass
class _Request:
    headers: dict[str, str]
    body: bytearray = field(default_factory=bytearray)


class _Connection(asyncio.Protocol):
    """One client's HTTP/2 connection: frames in, a task per complete request, frames out within the client's
    flow-control windows."""

    def __init__(self, server: H2cServer) -> None:
        self.server = server
        self.h2 = H2Connection(H2Configuration(client_side=False))
        # Replaced before initiate_connection, the limit holds from the first stream rather than from the client's ACK.
        self.h2.local_settings = Settings(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: server.max_concurrent_streams,
                SettingCodes.MAX_HEADER_LIST_SIZE: H2Connection.DEFAULT_MAX_HEADER_LIST_SIZE,
            },
        )
        self.transport: asyncio.Transport | None = None
        self.requests: dict[int, _Request] = {}
        """Streams whose request is still arriving."""
        self.tasks: dict[int, asyncio.Task[None]] = {}
        """Streams being answered."""
        self.windows: dict[int, asyncio.Future[None]] = {}
        """Streams waiting for the client to open its flow-control window."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.server._connections.add(self)
        self.h2.initiate_connection()
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._connections.discard(self)
        for task in self.tasks.values():
            task.cancel()
        self.requests.clear()

    def close(self) -> None:
        self.h2.close_connection()
        self.flush()
        for task in self.tasks.values():
            task.cancel()
        if self.transport is not None:
            self.transport.close()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except ProtocolError:
            self.flush()
            if self.transport is not None:
                self.transport.close()
            return
        limit = self.server.body_limit
        for event in events:
            if isinstance(event, RequestReceived):
                # Decoded here rather than by h2, which fails the whole connection on a header that is not UTF-8.
                headers = cast(list[tuple[bytes, bytes]], event.headers)
                self.requests[event.stream_id] = _Request(
                    {name.decode(*LENIENT): value.decode(*LENIENT) for name, value in headers}
                )
            elif isinstance(event, DataReceived):
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                request = self.requests.get(event.stream_id)
                if request is not None and len(request.body) < limit:
                    request.body += event.data[: limit - len(request.body)]
            elif isinstance(event, StreamEnded):
                request = self.requests.pop(event.stream_id, None)
                if request is not None:
                    self.respond(event.stream_id, request)
            elif isinstance(event, StreamReset):
                self.requests.pop(event.stream_id, None)
                task = self.tasks.get(event.stream_id)
                if task is not None:
                    task.cancel()
            elif isinstance(event, WindowUpdated):
                self.window_opened(event.stream_id)
            elif isinstance(event, RemoteSettingsChanged):
                if SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
                    self.window_opened(0)
            elif isinstance(event, ConnectionTerminated) and self.transport is not None:
                self.transport.close()
        self.flush()

    def respond(self, stream_id: int, request: _Request) -> None:
        task = asyncio.get_running_loop().create_task(self.answer(stream_id, request))
        self.tasks[stream_id] = task
        task.add_done_callback(lambda _: self.tasks.pop(stream_id, None))

    async def answer(self, stream_id: int, request: _Request) -> None:
        answer = await self.server.handler(request.headers, bytes(request.body))
        try:
            self.h2.send_headers(
                stream_id, [(":status", str(answer.status)), *answer.headers], end_stream=not answer.body
            )
            self.flush()
            await self.send_body(stream_id, answer.body)
        except ProtocolError:  # StreamClosedError among them
            pass  # the client reset the stream or said GOAWAY meanwhile

    async def send_body(self, stream_id: int, body: bytes) -> None:
        sent = 0
        while sent < len(body):
            window = self.h2.local_flow_control_window(stream_id)
            if window < 1:
                self.windows[stream_id] = asyncio.get_running_loop().create_future()
                try:
                    await self.windows[stream_id]
                finally:
                    del self.windows[stream_id]
                continue
            size = min(window, len(body) - sent, self.h2.max_outbound_frame_size)
            self.h2.send_data(stream_id, body[sent : sent + size], end_stream=sent + size == len(body))
            sent += size
            self.flush()

    def window_opened(self, stream_id: int) -> None:
        """Wake the stream waiting for this window, or all of them when it is the connection's."""
        for waiting, future in self.windows.items():
            if stream_id in (0, waiting) and not future.done():
                future.set_result(None)
