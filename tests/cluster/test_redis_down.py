"""Redis stops and comes back: the API answers 503 with Retry-After meanwhile, never hangs, and the worker resumes
by itself; nothing acknowledged before the stop is lost (Redis keeps an append-only file, as the guide says)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.conftest import ROOT_KEY, free_port
from tests.dispatch.conftest import APIKEY
from tests.helpers import Server, eventually, next_event
from tidings.testing import yunpian
from tidings.testing.emulator import EMULATOR

pytestmark = pytest.mark.timeout(120)
HEADERS = {"Authorization": f"Bearer {ROOT_KEY}"}


class RedisProcess:
    """A Redis of the test's own, on a free port, with its append-only file in the test's folder."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            message = "redis-server is not installed; it is needed to stop and restart a Redis"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def spawn(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                "--save", "", "--appendonly", "yes", "--appendfsync", "always"]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL)

    async def start(self) -> None:
        self.spawn()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(10)


async def post(session: aiohttp.ClientSession, number: str) -> tuple[int, dict, float]:
    started = time.monotonic()
    async with session.post("/v1/verifications", json={"to": number}) as answer:
        return (
            answer.status,
            {**await answer.json(), "retry-after": answer.headers.get("Retry-After")},
            (time.monotonic() - started),
        )


async def test_redis_down_answers_503_and_the_worker_resumes(tmp_path, run_app):
    emulator_app = yunpian.create_app(apikey=APIKEY, latency=0.5)
    sms_url, sms = await run_app(emulator_app), emulator_app[EMULATOR]
    redis = RedisProcess(tmp_path)
    await redis.start()
    # Sends whose preparation failed while Redis was down come back after their lease: a short one here.
    server = Server(tmp_path, sms_url, database=redis.url, concurrency=2, dispatch="lease = 4\nrequest_timeout = 2",
                    extra="[webhooks]\ntimeout = 2")  # fmt: skip
    await server.start()
    numbers = [f"+86138{n:08d}" for n in range(20)]
    try:
        async with aiohttp.ClientSession(server.url, headers=HEADERS) as session:
            for number in numbers:
                status, body, _ = await post(session, number)
                assert status == 201, body
            redis.stop()
            sent_before = {m.to for m in sms.received}
            status, body, took = await post(session, "+8613900000000")
            assert status == 503 and body["retry-after"] is not None, body
            assert body["error"]["code"] == "store_unavailable"
            assert took < 6, "an answer, not a hang"
            async with session.get("/readyz") as answer:
                assert answer.status == 503
            async with session.get("/metrics") as answer:
                assert answer.status == 200 and "tidings_http_requests_total" in await answer.text(), "still scraped"
            await redis.start()
            await eventually(lambda: {m.to for m in sms.received} >= {n.removeprefix("+86") for n in numbers}, 60)
            status, body, _ = await post(session, "+8613900000001")
            assert status == 201, body
    finally:
        server.stop(signal.SIGTERM)
        redis.stop()
    assert len(sent_before) < len(numbers), "everything was sent before Redis stopped; nothing was tested"


async def test_after_a_restart_a_burst_finds_every_pooled_connection_working(tmp_path, run_app):
    """Every pooled connection dies with the Redis; the next burst must not fail on them one by one."""
    sms_url = await run_app(yunpian.create_app(apikey=APIKEY))
    redis = RedisProcess(tmp_path)
    await redis.start()
    server = Server(tmp_path, sms_url, database=redis.url, role="api")
    await server.start()
    try:
        connector = aiohttp.TCPConnector(force_close=True)  # a request each, so all of them are in flight at once
        async with aiohttp.ClientSession(server.url, headers=HEADERS, connector=connector) as session:
            _, started, _ = await post(session, "+8613700000000")

            async def read() -> int:
                async with session.get(f"/v1/verifications/{started['id']}") as answer:
                    return answer.status

            assert set(await asyncio.gather(*(read() for _ in range(40)))) == {200}
            assert redis.process is not None
            redis.process.kill()  # as a crash or an OOM kill would
            redis.process.wait(10)
            await redis.start()
            await asyncio.sleep(0.5)
            assert await asyncio.gather(*(read() for _ in range(40))) == [200] * 40
    finally:
        server.stop(signal.SIGTERM)
        redis.stop()


async def test_a_node_that_loses_the_relay_ends_its_streams_so_clients_replay(tmp_path, run_app):
    emulator_app = yunpian.create_app(apikey=APIKEY)
    sms_url = await run_app(emulator_app)
    redis = RedisProcess(tmp_path)
    await redis.start()
    server = Server(tmp_path, sms_url, database=redis.url)
    await server.start()
    try:
        async with aiohttp.ClientSession(server.url, headers=HEADERS) as session:
            async with session.put("/v1/subscribers/ada", json={"channels": []}) as answer:
                assert answer.status == 201
            async with session.get("/v1/subscribers/ada/stream") as stream:
                await asyncio.sleep(0.5)  # connected and listening
                killer = aioredis.Redis.from_url(redis.url)
                await killer.client_kill_filter(_type="pubsub")
                await killer.aclose()
                with contextlib.suppress(aiohttp.ClientPayloadError):  # cut, as a server that goes away does
                    await asyncio.wait_for(stream.content.read(), 10)
            async with session.post("/v1/messages", json={"to": ["ada"], "body": "after", "channels": ["stream"]}):
                pass
            await asyncio.sleep(0.5)
            async with session.get("/v1/subscribers/ada/stream", params={"since": "msg_0"}) as stream:
                replayed = await asyncio.wait_for(next_event(stream), 10)
            assert b"after" in replayed
    finally:
        server.stop(signal.SIGTERM)
        redis.stop()


async def test_a_redis_that_hangs_gets_a_503_after_one_socket_timeout(tmp_path, serve):
    """A command that timed out is not sent again, so the answer takes one socket timeout (5 s), not two."""
    redis = RedisProcess(tmp_path)
    await redis.start()
    api = await serve({"database": redis.url})
    assert redis.process is not None
    redis.process.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        answer = await api.get("/readyz", key=None)
        took = time.monotonic() - started
        assert answer.status == 503 and 4 < took < 7, (answer.status, took)
    finally:
        redis.process.send_signal(signal.SIGCONT)
        redis.stop()


async def test_a_stop_while_redis_is_down_ends_within_its_grace(tmp_path, run_app):
    """An outcome that cannot be written must not hold the stop for ever: its job comes back after its lease."""
    emulator_app = yunpian.create_app(apikey=APIKEY, latency=1.0)
    sms_url, sms = await run_app(emulator_app), emulator_app[EMULATOR]
    redis = RedisProcess(tmp_path)
    await redis.start()
    server = Server(tmp_path, sms_url, database=redis.url)  # shutdown_grace = 5
    await server.start()
    try:
        await server.start_verifications(["+8613800138000"])
        await eventually(lambda: sms.requests == 1, 10)  # at the provider, which answers a second later
        redis.stop()
        started = time.monotonic()
        assert await asyncio.to_thread(server.stop, signal.SIGTERM) == 0  # the emulator answers meanwhile
        assert time.monotonic() - started < 15
        assert "1 outcomes not recorded" in server.log.read_text()
    finally:
        if server.process is not None and server.process.poll() is None:
            server.process.kill()
        if redis.process is not None and redis.process.poll() is None:
            redis.stop()
