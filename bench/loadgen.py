"""A lean HTTP/1.1 load generator for the benchmarks: keep-alive connections on raw asyncio streams.

It exists so that the process driving the API costs the shared CPUs as little as possible (a tenth of an aiohttp
client per request), the way wrk does, while still recording the time each request was sent, which wrk cannot.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlsplit


async def post_all(url: str, path: str, bodies: list[dict], connections: int, headers: dict[str, str]) -> dict:
    """POST every body over ``connections`` keep-alive connections; returns send times and statuses by index."""
    parts = urlsplit(url)
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    sent_at: list[float] = [0.0] * len(bodies)
    statuses: list[int] = [0] * len(bodies)
    next_index = iter(range(len(bodies)))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            for index in next_index:
                payload = json.dumps(bodies[index]).encode()
                head = (
                    f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
                    f"{extra}Content-Length: {len(payload)}\r\n\r\n"
                ).encode()
                sent_at[index] = time.time()
                writer.write(head + payload)
                status_line = await reader.readline()
                statuses[index] = int(status_line.split()[1])
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return {"sent_at": sent_at, "statuses": statuses}
