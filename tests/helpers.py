"""Helpers that tests in more than one folder share: waiting for a condition, a real server process, queue and
verification fixtures for the backends, and reading a stream's events."""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.conftest import ROOT_KEY, free_port
from tests.dispatch.conftest import APIKEY
from tidings.backends import Backend
from tidings.core.push import Message
from tidings.core.types import PRIORITY_VERIFICATION, Channel, Job, Status, Verification

TEST_NUMBER = "+15005550006"
TEST_CODE = "123456"
TEST_CONFIG = {"verify": {"test_numbers": {TEST_NUMBER: {"code": TEST_CODE, "until": "2099-12-31"}}}}
"""A test number: a fixed code, nothing sent."""


async def eventually(condition, timeout: float = 10.0, every: float = 0.02) -> None:
    """Wait until ``condition()`` (a function, or a coroutine function) is true."""
    deadline = time.monotonic() + timeout
    while not (await result if inspect.isawaitable(result := condition()) else result):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(every)


async def finished(api, message_id: str, timeout: float = 20.0) -> dict:
    """The message once no delivery is queued any more."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await api.get(f"/v1/messages/{message_id}")
        if answer.body["status"] == "done":
            return answer.body
        if time.monotonic() > deadline:
            raise AssertionError(f"message not done in time: {answer.body}")
        await asyncio.sleep(0.05)


class Server:
    """``tidings serve`` in its own process, as a user runs it."""

    def __init__(
        self,
        folder: Path,
        sms_url: str,
        ttl: float = 600,
        concurrency: int = 2,
        port: int | None = None,
        extra: str = "",
        database: str | None = None,
        role: str = "all",
        name: str = "tidings",
        dispatch: str = "",
    ) -> None:
        self.port = port or free_port()
        self.config = folder / f"{name}.toml"
        self.config.write_text(
            f"""
port = {self.port}
database = "{database or f"sqlite:///{folder}/tidings.db"}"
role = "{role}"
api_key = "{ROOT_KEY}"
secret_key = "crash-test"
[verify]
sms_providers = ["yunpian"]
ttl = {ttl}
[limits]
per_ip_hour = 0
per_range_hour = 0
[dispatch]
shutdown_grace = 5
{dispatch}
[providers.yunpian]
base_url = "{sms_url}"
apikey = "{APIKEY}"
concurrency = {concurrency}
{extra}
"""
        )
        self.log = folder / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def spawn(self) -> subprocess.Popen:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tidings", "serve", "--config", str(self.config)],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        return self.process

    async def start(self) -> None:
        self.spawn()
        assert self.process is not None
        deadline = time.monotonic() + 20
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.process.poll() is None, self.log.read_text()
                try:
                    async with session.get(f"{self.url}/readyz") as answer:
                        if answer.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        self.process.kill()
        self.process.wait()
        raise AssertionError("tidings did not start: " + self.log.read_text()[-2000:])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig: int) -> int:
        assert self.process is not None
        os.kill(self.process.pid, sig)
        return self.process.wait(30)

    async def queued(self) -> int:
        """Jobs in the queue, leased ones included, as ``/metrics`` tells."""
        async with aiohttp.ClientSession() as session, session.get(f"{self.url}/metrics") as answer:
            text = await answer.text()
        return sum(int(float(depth)) for depth in re.findall(r"^tidings_queue_depth\{.*\} (\S+)$", text, re.MULTILINE))

    async def start_verifications(self, numbers: list[str]) -> None:
        headers = {"Authorization": f"Bearer {ROOT_KEY}"}
        async with aiohttp.ClientSession(self.url, headers=headers) as session:
            for number in numbers:
                async with session.post("/v1/verifications", json={"to": number}) as answer:
                    assert answer.status == 201, await answer.text()


def job(id: str, *, lane: str = "sms", priority: int = PRIORITY_VERIFICATION, run_at: float = 0.0) -> Job:
    return Job(id=id, kind="test", ref=id, lane=lane, priority=priority, run_at=run_at)


def verification(id: str, to: str = "+8613800138000", now: float | None = None) -> Verification:
    now = time.time() if now is None else now
    return Verification(
        id=id, to=to, channel=Channel.SMS, status=Status.PENDING, sealed_code=b"sealed", locale="en",
        app_name="test", template=None, created_at=now, expires_at=now + 600, updated_at=now,
    )  # fmt: skip


async def enqueue(backend: Backend, jobs: list[Job]) -> None:
    """Jobs reach the queue only with what they send; a message with no recipients carries them here."""
    message = Message("msg_contract" + jobs[0].id, None, "x", None, "normal", time.time(), time.time() + 60)
    await backend.push.create_message(message, [], lambda m, s: (m, [], jobs))


async def next_event(stream: aiohttp.ClientResponse) -> bytes:
    """The next SSE event that is not a heartbeat (a comment)."""
    buffer = b""
    while True:
        buffer += await stream.content.readany()
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            if b"data:" in event:
                return event
