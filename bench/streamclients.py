"""Hold thousands of live streams open on one tidings server, cheaply, and time when a message reaches each of them.

    python bench/streamclients.py --url http://127.0.0.1:8000 --key KEY --kind sse --first 0 --count 10000

Started by ``bench/push.py``, one process per kind of stream. Every connection is a bare ``asyncio.Protocol`` on
uvloop, with no task, reader or response object of its own: 20,000 aiohttp client responses would cost the shared
CPUs and memory more than the server being measured. SSE is read by looking for ``event: message``; WebSocket is a
minimal RFC 6455 client (unmasked server frames in, masked pongs out, no extensions), enough to hold a connection
through the server's pings and to see its first text frame.

It prints one JSON line once every connection is open or has failed, then a second one, with the receipt time
(``time.time()``) of the first message on each connection, once every open connection has had one, or on ``stop``,
end of input or its ``--timeout``; then it closes everything and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import uvloop

MARK = b"event: message"


class Stream(asyncio.Protocol):
    """One connection: the upgrade or SSE handshake, then the first message's arrival time."""

    __slots__ = ("buffer", "kind", "on_settled", "opened", "received_at", "request", "tail", "transport")

    def __init__(self, kind: str, request: bytes, on_settled: Callable[[Stream], None]) -> None:
        self.kind = kind
        self.request = request
        self.on_settled = on_settled
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.tail = b""
        self.received_at: float | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.opened.done():
            self.buffer += data
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = int(self.buffer.split(b" ", 2)[1])
            data, self.buffer = self.buffer[end + 4 :], b""
            if status != (200 if self.kind == "sse" else 101):
                self.opened.set_exception(ConnectionError(f"http_{status}"))
                self.transport.close()
                return
            self.opened.set_result(None)
        if self.kind == "sse":
            self._sse(data)
        else:
            self._frames(data)

    def _sse(self, data: bytes) -> None:
        if self.received_at is None:
            seen = self.tail + data
            if MARK in seen:
                self._received()
            else:
                self.tail = seen[-len(MARK) :]

    def _frames(self, data: bytes) -> None:
        buffer = self.buffer + data
        while len(buffer) >= 2:
            opcode, length, start = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if length == 126:
                length, start = int.from_bytes(buffer[2:4]), 4
            elif length == 127:
                length, start = int.from_bytes(buffer[2:10]), 10
            if len(buffer) < start + length:
                break
            payload, buffer = buffer[start : start + length], buffer[start + length :]
            if opcode == 0x1 and self.received_at is None:
                self._received()
            elif opcode == 0x9:  # ping: a pong, masked as every client frame must be
                mask = os.urandom(4)
                masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + mask + masked)
            elif opcode == 0x8:
                self.transport.close()
        self.buffer = buffer

    def _received(self) -> None:
        self.received_at = time.time()
        self.on_settled(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed before the handshake"))
        elif self.received_at is None:
            self.on_settled(self)


def request(kind: str, netloc: str, path: str, key: str) -> bytes:
    head = f"GET {path} HTTP/1.1\r\nHost: {netloc}\r\nAuthorization: Bearer {key}\r\n"
    if kind == "sse":
        return (head + "Accept: text/event-stream\r\n\r\n").encode()
    nonce = base64.b64encode(os.urandom(16)).decode()
    return (
        head + f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {nonce}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def run(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    parts = urlsplit(args.url)
    suffix = "stream" if args.kind == "sse" else "ws"
    gate = asyncio.Semaphore(args.concurrency)
    failures: collections.Counter[str] = collections.Counter()
    streams: list[Stream] = []
    waiting: set[Stream] = set()
    all_settled = asyncio.Event()

    def settled(stream: Stream) -> None:
        """A stream has had its message, or has closed without it."""
        if stream in waiting:
            waiting.remove(stream)
            if not waiting:
                all_settled.set()

    async def open_one(n: int) -> None:
        path = f"/v1/subscribers/{args.prefix}{args.first + n:06d}/{suffix}"
        stream = Stream(args.kind, request(args.kind, parts.netloc, path, args.key), settled)
        async with gate:
            if time.monotonic() > deadline:
                failures["not_tried_before_timeout"] += 1
                return
            try:
                await asyncio.wait_for(loop.create_connection(lambda: stream, parts.hostname, parts.port), 30)
                await asyncio.wait_for(stream.opened, 30)
            except (OSError, TimeoutError) as exc:
                failures[type(exc).__name__ if not str(exc).startswith("http_") else str(exc)] += 1
                if stream.transport is not None:
                    stream.transport.abort()
                return
        streams.append(stream)
        if stream.received_at is None and not stream.transport.is_closing():
            waiting.add(stream)

    started = time.monotonic()
    deadline = started + args.timeout
    await asyncio.gather(*(open_one(n) for n in range(args.count)))
    report = {"kind": args.kind, "connected": len(streams), "failures": dict(failures)}
    report["connect_seconds"] = round(time.monotonic() - started, 3)
    print(json.dumps(report), flush=True)

    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    told = asyncio.create_task(stdin.readline())  # "stop", or b"" when bench/push.py has gone
    done = asyncio.create_task(all_settled.wait())
    if not waiting:
        all_settled.set()
    await asyncio.wait({told, done}, timeout=args.timeout, return_when=asyncio.FIRST_COMPLETED)
    for task in (told, done):
        task.cancel()
    received = [stream.received_at for stream in streams if stream.received_at is not None]
    lost = sum(1 for stream in streams if stream.received_at is None and stream.transport.is_closing())
    for stream in streams:
        stream.transport.abort()
    report = {"kind": args.kind, "received": received, "lost": lost}
    report["client_max_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(report), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--kind", choices=("sse", "ws"), default="sse")
    parser.add_argument("--prefix", default="s", help="subscriber ids are the prefix and a 6-digit number")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=200, help="handshakes in flight at once")
    parser.add_argument("--timeout", type=float, default=300, help="seconds for each phase (connect, wait), at most")
    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
