"""Several tidings processes on one Redis, as a user runs them: two API nodes and two workers on loopback."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import CODE, ROOT_KEY
from tests.dispatch.conftest import APIKEY
from tests.helpers import Server, eventually, next_event
from tests.push.conftest import SECRET
from tidings.testing import webhooks, yunpian
from tidings.testing.emulator import EMULATOR

pytestmark = pytest.mark.timeout(120)
HEADERS = {"Authorization": f"Bearer {ROOT_KEY}"}
PER_HOST = 32
EXTRA = f"""
[webhooks]
allow_private_networks = true
per_host_concurrency = {PER_HOST}
timeout = 2
"""
LEASE = "lease = 3\nrequest_timeout = 2"


class Cluster:
    def __init__(self, folder: Path, redis_url: str, sms_url: str) -> None:
        def node(name: str, role: str) -> Server:
            return Server(folder, sms_url, database=redis_url, role=role, name=name, extra=EXTRA, dispatch=LEASE)

        self.apis = [node("api-1", "api"), node("api-2", "api")]
        self.workers = [node("worker-1", "worker"), node("worker-2", "worker")]

    async def __aenter__(self) -> Cluster:
        await asyncio.gather(*(server.start() for server in self.apis + self.workers))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for server in self.apis + self.workers:
            if server.process is not None and server.process.poll() is None:
                server.stop(signal.SIGTERM)


@pytest.fixture
async def sms(run_app):
    app = yunpian.create_app(apikey=APIKEY)
    return await run_app(app), app[EMULATOR]


@pytest.fixture
async def receiver(run_app):
    app = webhooks.create_app(secret_for=lambda path: SECRET, latency=0.02)
    return await run_app(app), app[webhooks.RECEIVER]


async def subscribe(cluster: Cluster, hooks_url: str, names: list[str]) -> None:
    """Half the subscribers through each API node."""
    sessions = [aiohttp.ClientSession(api.url, headers=HEADERS) for api in cluster.apis]
    try:

        async def put(n: int, name: str) -> None:
            hook = {"type": "webhook", "url": f"{hooks_url}/hook/{name}", "secret": SECRET}
            body = {"channels": [hook], "topics": ["all"]}
            async with sessions[n % 2].put(f"/v1/subscribers/{name}", json=body) as answer:
                assert answer.status == 201, await answer.text()

        for start in range(0, len(names), 100):
            await asyncio.gather(*(put(start + n, name) for n, name in enumerate(names[start : start + 100])))
    finally:
        for session in sessions:
            await session.close()


async def call(server: Server, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession(server.url, headers=HEADERS) as session,
        session.request(method, path, json=body) as answer,
    ):
        return answer.status, await answer.json()


async def done(api: Server, message_id: str) -> None:
    """Until every delivery of the message is finished (a stream's: the message is in the cache)."""
    for _ in range(500):
        if (await call(api, "GET", f"/v1/messages/{message_id}"))[1]["status"] == "done":
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{message_id} not done in time")


async def send(api: Server, body: dict) -> dict:
    status, message = await call(api, "POST", "/v1/messages", body)
    assert status == 202, message
    return message


async def test_the_cluster_lists_its_nodes_and_each_delivery_is_made_once(tmp_path, redis_url, sms, receiver):
    hooks_url, received = receiver
    names = [f"u{n:04d}" for n in range(1000)]
    async with Cluster(tmp_path, redis_url, sms[0]) as cluster:
        status, listed = await call(cluster.apis[0], "GET", "/v1/cluster")
        assert status == 200 and listed["backend"] == "redis"
        assert Counter(node["role"] for node in listed["nodes"]) == {"api": 2, "worker": 2}
        status, _ = await call(cluster.workers[0], "POST", "/v1/verifications", {"to": "+8613800138000"})
        assert status == 404, "a worker serves no API"
        await subscribe(cluster, hooks_url, names)
        message = await send(cluster.apis[1], {"topic": "all", "body": "hi", "channels": ["webhook"]})
        assert message["recipients"] == len(names)
        await eventually(lambda: len(received.received) >= len(names), 60)
        await asyncio.sleep(0.5)  # anything sent twice would arrive meanwhile
        _, status = await call(cluster.apis[0], "GET", f"/v1/messages/{message['id']}")
    by_path = Counter(hook.path for hook in received.received)
    assert len(by_path) == len(names) and max(by_path.values()) == 1, "each delivery exactly once"
    assert all(hook.verified for hook in received.received)
    assert status["counts"]["delivered"] == len(names)


async def test_a_worker_killed_mid_fan_out_loses_nothing(tmp_path, redis_url, sms, receiver):
    hooks_url, received = receiver
    names = [f"u{n:04d}" for n in range(3000)]
    async with Cluster(tmp_path, redis_url, sms[0]) as cluster:
        await subscribe(cluster, hooks_url, names)
        await send(cluster.apis[0], {"topic": "all", "body": "hi", "channels": ["webhook"]})
        await eventually(lambda: len(received.received) >= len(names) // 5, 30)
        cluster.workers[0].stop(signal.SIGKILL)
        killed_at = time.time()
        assert len(received.received) < len(names), "the fan-out finished before the kill; nothing was tested"
        await eventually(lambda: len({hook.path for hook in received.received}) == len(names), 60)
    by_path = Counter(hook.path for hook in received.received)
    first_seen = {}
    for hook in reversed(received.received):
        first_seen[hook.path] = hook.at
    twice = [path for path, count in by_path.items() if count > 1]
    assert all(first_seen[path] > killed_at - 0.5 for path in twice), "only deliveries in flight repeat"
    assert len(twice) <= 2 * PER_HOST
    ids_by_path: dict[str, set] = {}
    for hook in received.received:
        ids_by_path.setdefault(hook.path, set()).add(hook.id)
    assert all(len(ids) == 1 for ids in ids_by_path.values()), "a repeated delivery keeps its webhook-id"


async def test_a_stream_on_one_node_gets_what_another_accepted(tmp_path, redis_url, sms):
    async with Cluster(tmp_path, redis_url, sms[0]) as cluster:
        first, second = cluster.apis
        async with aiohttp.ClientSession(headers=HEADERS) as session:
            async with session.put(f"{first.url}/v1/subscribers/ada", json={"channels": []}) as answer:
                assert answer.status == 201, await answer.text()
            async with session.get(f"{first.url}/v1/subscribers/ada/stream") as stream:
                assert stream.status == 200
                await send(second, {"to": ["ada"], "body": "across", "channels": ["stream"]})
                event = await asyncio.wait_for(next_event(stream), 10)
            assert b"across" in event
            message_id = next(line for line in event.split(b"\n") if line.startswith(b"id:")).split(b":", 1)[1]
            later = await send(second, {"to": ["ada"], "body": "later", "channels": ["stream"]})
            await done(second, later["id"])  # in the shared cache
            # A client that reconnects to the other node replays what it missed from the shared cache.
            headers = {"Last-Event-ID": message_id.strip().decode()}
            async with session.get(f"{second.url}/v1/subscribers/ada/stream", headers=headers) as stream:
                replayed = await asyncio.wait_for(next_event(stream), 10)
            assert b"later" in replayed and b"across" not in replayed


async def test_checks_spread_over_two_nodes_approve_once_and_count_every_guess(tmp_path, redis_url, sms):
    sms_url, emulator = sms
    async with Cluster(tmp_path, redis_url, sms_url) as cluster:
        sessions = [aiohttp.ClientSession(api.url, headers=HEADERS) for api in cluster.apis]
        try:
            for number in ("+8613800138000", "+8613800138001"):
                async with sessions[0].post("/v1/verifications", json={"to": number}) as answer:
                    assert answer.status == 201, await answer.text()
            await eventually(lambda: len(emulator.received) == 2, 10)
            [sms_text] = [m.text for m in emulator.received if m.to == "13800138000"]
            code = CODE.search(sms_text).group(1)

            async def check(n: int, number: str, guess: str) -> tuple[int, dict]:
                async with sessions[n % 2].post("/v1/verifications/check", json={"to": number, "code": guess}) as a:
                    return a.status, await a.json()

            right = await asyncio.gather(*(check(n, "+8613800138000", code) for n in range(20)))
            assert sum(status == 200 and body["valid"] for status, body in right) == 1
            wrong_code = "0" * len(code) if code != "0" * len(code) else "1" * len(code)
            wrong = await asyncio.gather(*(check(n, "+8613800138001", wrong_code) for n in range(40)))
            judged = [body for status, body in wrong if status == 200]
            assert len(judged) == 5 and not any(body["valid"] for body in judged)
            assert all(status == 429 for status, _ in wrong if status != 200)
        finally:
            for session in sessions:
                await session.close()


async def test_a_retry_on_the_other_node_while_the_first_is_under_way_gets_its_answer(
    tmp_path, redis_url, sms, receiver
):
    """Behind a load balancer a client's retry lands anywhere; the message must still go out once."""
    hooks_url, hooks = receiver
    async with Cluster(tmp_path, redis_url, sms[0]) as cluster:
        names = [f"user-{n:03d}" for n in range(200)]
        await subscribe(cluster, hooks_url, names)
        sessions = [aiohttp.ClientSession(api.url, headers=HEADERS) for api in cluster.apis]
        try:

            async def send_on(n: int) -> tuple[int, dict]:
                await asyncio.sleep(0.02 * n)
                body = {"to": names, "body": "once", "channels": ["webhook"]}
                headers = {"Idempotency-Key": "order-7"}
                async with sessions[n].post("/v1/messages", json=body, headers=headers) as answer:
                    return answer.status, await answer.json()

            (first_status, first), (second_status, second) = await asyncio.gather(send_on(0), send_on(1))
            assert first_status == second_status == 202 and first["id"] == second["id"], (first, second)
            await eventually(lambda: len(hooks.received) >= 200, 30)
            await asyncio.sleep(0.5)
            assert len(hooks.received) == 200, "each subscriber once"
        finally:
            for session in sessions:
                await session.close()


async def test_a_node_that_cannot_listen_stops_instead_of_hanging(tmp_path, redis_url, sms):
    """Its port taken, a node has already connected to Redis and started listening to it: all that must stop, and
    the process exit, so that a supervisor sees the failure."""
    async with Cluster(tmp_path, redis_url, sms[0]) as cluster:
        taken = cluster.apis[0].port
        for attempt in range(3):
            late = Server(tmp_path, sms[0], port=taken, database=redis_url, name=f"late-{attempt}", extra=EXTRA)
            process = late.spawn()
            try:
                assert await asyncio.to_thread(process.wait, 15) == 1
            finally:
                if process.poll() is None:
                    process.kill()
            assert "address already in use" in late.log.read_text()
