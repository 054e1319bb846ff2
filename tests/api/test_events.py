"""``GET /v1/events``: the live tail of every try of every send, resumable, capped, for `read` keys."""

from __future__ import annotations

import asyncio
import json

from tests.conftest import ROOT_KEY
from tidings.api.events import MAX_TAILS

AUTH = {"Authorization": f"Bearer {ROOT_KEY}"}


async def events(stream, count: int) -> list[tuple[str, dict]]:
    """The next ``count`` events (id, data) of an open stream; comments and the retry line are skipped."""
    found: list[tuple[str, dict]] = []
    buffer = b""
    while len(found) < count:
        buffer += await asyncio.wait_for(stream.content.readany(), 10)
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            fields = dict(line.split(": ", 1) for line in block.decode().splitlines() if ": " in line)
            if "data" in fields:
                found.append((fields["id"], json.loads(fields["data"])))
    return found


async def test_every_send_shows_up_live_and_a_reconnect_resumes(serve):
    api = await serve()
    async with api.session.get("/v1/events", headers=AUTH) as stream:
        assert stream.status == 200 and stream.headers["Content-Type"] == "text/event-stream"
        started = await api.post("/v1/verifications", {"to": "+447700900123"})
        [(first_id, event)] = await events(stream, 1)
    assert (event["kind"], event["ref"], event["provider"], event["outcome"], event["error"]) == (
        "verification",
        started.body["id"],
        "console",
        "delivered",
        None,
    )
    assert event["at"].endswith("Z") and "+447700900123" not in json.dumps(event), "no address in the tail"
    again = await api.post("/v1/verifications", {"to": "+447700900124"})
    async with api.session.get("/v1/events", headers={**AUTH, "Last-Event-ID": first_id}) as stream:
        [(_, missed)] = await events(stream, 1)
    assert missed["ref"] == again.body["id"], "what was sent while away comes first"


async def test_event_streams_are_capped_and_need_read(serve):
    api = await serve()
    sender = (await api.post("/v1/keys", {"name": "s", "scopes": ["send"]})).body["key"]
    assert (await api.get("/v1/events", key=sender)).status == 403
    streams = [await api.session.get("/v1/events", headers=AUTH) for _ in range(MAX_TAILS)]
    try:
        assert all(stream.status == 200 for stream in streams)
        refused = await api.get("/v1/events")
        assert refused.status == 429 and refused.headers["Retry-After"]
    finally:
        for stream in streams:
            stream.close()
