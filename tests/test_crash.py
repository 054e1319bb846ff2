"""The server killed with SIGKILL, or stopped with SIGTERM, while codes are queued: nothing is lost."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import defaultdict

import pytest
from aiohttp import web

from tests.dispatch.conftest import APIKEY
from tests.helpers import Server, eventually
from tidings.testing import yunpian
from tidings.testing.emulator import EMULATOR

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def slow_sms(run_app):
    app = yunpian.create_app(apikey=APIKEY, latency=0.2)
    return await run_app(app), app[EMULATOR]


@pytest.fixture
async def slow_sms_that_sends_what_it_got():
    """The same emulator, but a request whose sender dies while it waits is still sent, as a provider that has read
    it does (the test server drops such a request instead)."""
    app = yunpian.create_app(apikey=APIKEY, latency=0.2)
    runner = web.AppRunner(app, handler_cancellation=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}", app[EMULATOR]
    await runner.cleanup()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
async def test_every_queued_code_is_sent_after_a_restart(tmp_path, slow_sms, sig):
    url, sms = slow_sms
    numbers = [f"+86138{i:08d}" for i in range(40)]
    server = Server(tmp_path, url)
    await server.start()
    await server.start_verifications(numbers)
    await eventually(lambda: len(sms.received) >= 4, 10)
    code = server.stop(sig)
    sent_before = len(sms.received)
    assert sent_before < len(numbers), "the queue drained before the stop; nothing was tested"
    if sig == signal.SIGTERM:
        assert code == 0
    restarted = Server(tmp_path, url, port=server.port)
    await restarted.start()
    try:
        await eventually(lambda: {m.to for m in sms.received} >= {n.removeprefix("+86") for n in numbers}, 30)
    finally:
        restarted.stop(signal.SIGTERM)
    ids = [m.to for m in sms.received]
    duplicates = len(ids) - len(set(ids))
    assert duplicates <= 2, "only the sends in flight at the kill may be repeated"
    if sig == signal.SIGTERM:
        assert duplicates == 0


async def test_a_code_sent_again_after_a_kill_carries_the_uid_of_its_first_copy(
    tmp_path, slow_sms_that_sends_what_it_got
):
    """Sent one at a time, every SMS carries its job's id as Yunpian's ``uid``: a copy sent again after a crash is
    told apart from a second code by it."""
    url, sms = slow_sms_that_sends_what_it_got
    numbers = [f"+86137{i:08d}" for i in range(40)]
    server = Server(tmp_path, url, concurrency=8, extra="batch_size = 1")
    await server.start()
    await server.start_verifications(numbers)
    await eventually(lambda: len(sms.received) >= 8, 10)
    server.stop(signal.SIGKILL)
    restarted = Server(tmp_path, url, concurrency=8, port=server.port, extra="batch_size = 1")
    await restarted.start()
    try:
        deadline = time.monotonic() + 30
        while await restarted.queued():  # not "every number seen": copies of numbers seen may still be queued
            assert time.monotonic() < deadline, "not in time"
            await asyncio.sleep(0.05)
    finally:
        restarted.stop(signal.SIGTERM)
    uids: dict[str, set[str | None]] = defaultdict(set)
    for received in sms.received:
        uids[received.to].add(received.id)
    assert set(uids) == {number.removeprefix("+86") for number in numbers}
    assert len(sms.received) > len(numbers), "nothing was sent twice; nothing was tested"
    assert all(len(ids) == 1 and None not in ids for ids in uids.values()), uids


async def test_codes_that_expired_while_down_are_not_sent(tmp_path, slow_sms):
    url, sms = slow_sms
    numbers = [f"+86139{i:08d}" for i in range(20)]
    server = Server(tmp_path, url, ttl=1.5, concurrency=1)
    await server.start()
    await server.start_verifications(numbers)
    await eventually(lambda: len(sms.received) >= 1, 10)
    server.stop(signal.SIGKILL)
    sent = len(sms.received)
    await asyncio.sleep(1.6)
    restarted = Server(tmp_path, url, ttl=1.5, port=server.port)
    await restarted.start()
    await asyncio.sleep(1.0)
    restarted.stop(signal.SIGTERM)
    assert len(sms.received) <= sent + 1
