"""The dispatcher keeps a full lane busy: a lane that frees up while other lanes are being leased is served at once."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import Api, base_config, merge
from tests.dispatch.conftest import yunpian_config
from tests.helpers import eventually, finished
from tidings.core.settings import Settings
from tidings.wiring import build_app

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


LANDLINE = "+861012345678"  # a possible Chinese number, but no mobile: Yunpian refuses it (code 2), alone


async def fan_out(api, numbers: list[str]) -> str:
    for number in numbers:
        await api.call("PUT", f"/v1/subscribers/p{number[1:]}", {"phone": number, "topics": ["t"]})
    sent = await api.post("/v1/messages", {"topic": "t", "body": "【Acme】hello", "channels": ["sms"]})
    assert sent.status == 202, sent.body
    return sent.body["id"]


async def test_a_leased_batch_goes_in_one_request_and_settles_number_by_number(serve, yunpian_emulator):
    sms = await yunpian_emulator()
    api = await serve(yunpian_config(sms.url))
    mobiles = [f"+86138{i:08d}" for i in range(10)]
    done = await finished(api, await fan_out(api, [*mobiles, LANDLINE]))
    assert done["counts"] == {"queued": 0, "delivered": 10, "failed": 1, "expired": 0}
    assert sms.emulator.requests == 1  # one multi_send for the eleven, committed and leased together
    assert sorted(message.to for message in sms.emulator.received) == sorted(n.removeprefix("+86") for n in mobiles)


async def test_a_batch_whose_request_fails_is_retried_whole_and_sent_once(serve, yunpian_emulator):
    sms = await yunpian_emulator(fail_first=1)  # a system error for the whole multi_send
    api = await serve(yunpian_config(sms.url))
    mobiles = [f"+86139{i:08d}" for i in range(10)]
    done = await finished(api, await fan_out(api, mobiles))
    assert done["counts"]["delivered"] == 10
    assert sorted(message.to for message in sms.emulator.received) == sorted(n.removeprefix("+86") for n in mobiles)


async def test_a_batch_in_flight_at_shutdown_is_given_back_and_sent_after_a_restart(tmp_path, serve, yunpian_emulator):
    slow = await yunpian_emulator(latency=10)
    config = merge(base_config(tmp_path), {**yunpian_config(slow.url), "dispatch": {"shutdown_grace": 0.2}})
    server = TestServer(build_app(Settings.model_validate(config)), host="127.0.0.1", port=0)
    await server.start_server()
    api = Api(str(server.make_url("")))
    mobiles = [f"+86137{i:08d}" for i in range(5)]
    message = await fan_out(api, mobiles)
    await eventually(lambda: slow.emulator.requests == 1)
    await api.close()
    await server.close()  # a graceful stop: after the grace time the batch is given back, not lost
    fast = await yunpian_emulator()
    again = await serve(yunpian_config(fast.url))
    done = await finished(again, message)
    assert done["counts"]["delivered"] == 5
    assert sorted(message.to for message in fast.emulator.received) == sorted(n.removeprefix("+86") for n in mobiles)
