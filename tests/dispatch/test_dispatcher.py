"""The dispatcher keeps a full lane busy: a lane that frees up while other lanes are being leased is served at once."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from tests.dispatch.conftest import yunpian_config

RECIPIENTS, CONCURRENCY = 1000, 50


@pytest.mark.parametrize("store", ["sqlite", "redis"])
async def test_a_fan_out_never_pauses_between_rounds(request, serve, yunpian_emulator, store):
    """A message to 1,000 phones through a lane of 50 takes 20 rounds; a wake-up lost between two rounds would
    show as a pause of a second (the dispatcher's longest idle wait) in the emulator's receipts."""
    sms = await yunpian_emulator()
    config = yunpian_config(sms.url)
    config["providers"]["yunpian"]["concurrency"] = CONCURRENCY
    if store == "redis":
        config["database"] = request.getfixturevalue("redis_url")
    api = await serve(config)
    numbers = [f"+86138{i:08d}" for i in range(RECIPIENTS)]
    for start in range(0, RECIPIENTS, 100):
        chunk = numbers[start : start + 100]
        await asyncio.gather(
            *(api.call("PUT", f"/v1/subscribers/p{n[1:]}", {"phone": n, "topics": ["all"]}) for n in chunk)
        )
    sent = await api.post("/v1/messages", {"topic": "all", "body": "【Acme】hello", "channels": ["sms"]})
    assert sent.status == 202, sent.body
    deadline = time.monotonic() + 30
    while len(sms.emulator.received) < RECIPIENTS:
        assert time.monotonic() < deadline, f"{len(sms.emulator.received)} of {RECIPIENTS} sent"
        await asyncio.sleep(0.01)
    times = [received.at for received in sms.emulator.received]
    pause = max(later - earlier for earlier, later in itertools.pairwise(times))
    assert pause < 0.5, f"the sends paused for {pause:.2f} s between two rounds"
