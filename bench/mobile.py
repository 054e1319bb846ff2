"""Mobile push: one message to N subscribers, half APNs and half FCM, side by side with bare client loops.

    python bench/mobile.py --n 2000                       # a quick look
    python bench/mobile.py                                # 100,000 subscribers, emulators at 0 and at 50 ms
    python bench/mobile.py --n 20000 --latencies 0.05 --rounds 2

tidings is set up once (SQLite) with ``[providers.apns]`` and ``[providers.fcm]`` pointing at the two emulators
(``python -m tidings.testing apns``: HTTP/2 without TLS; ``python -m tidings.testing fcm``: HTTP/1.1, with its OAuth
token endpoint), and N subscribers of the topic ``all`` (not timed): even ones with an APNs device token, odd ones
with an FCM registration token. For each emulator latency both emulators are started afresh on the same ports (tidings
reconnects and fetches a new FCM access token: a two-recipient warm-up message does that before anything is timed),
then, ``--rounds`` times, in turns:

- tidings: ``POST /v1/messages {"topic": "all", "channels": ["apns", "fcm"]}``; the 202 is timed (``accepted``),
  then ``GET /v1/messages/{id}`` every ``--poll`` seconds until nothing is queued. Throughput is delivered / time
  from the POST. tidings' RSS is read every 100 ms. Each service's share is counted at the emulator afterwards (its
  received list, reset before the run): every token once, and the last one's arrival time.
- bare loops, the two at once as tidings sends both at once: APNs, N/2 requests over the same number of HTTP/2
  connections (``httpx.AsyncClient(http2=True)``, one connection each, picked in turn), ``gather`` under a semaphore
  of C, each request built as tidings builds it (``tidings.core.mobile.apns_request``, an ES256 provider token);
  FCM, N/2 requests on one pooled ``aiohttp.ClientSession`` under a semaphore of C, the body ``{"message":
  fcm_message(call)}`` with an access token fetched once from the emulator (the JWT-bearer grant): the practical
  limit of a hand-written sender to each.

The ratio is tidings' throughput against the bare loops' combined one (N / the later of the two to finish). The CPU
time of every process over each run is read from ``/proc`` to tell where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import hashlib
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import KEY, PYTHON, connector, free_port, percentile, process, serve_tidings
from push import put_subscribers, raise_files_for, rss_kb

from tidings.channels.apns import ProviderToken
from tidings.channels.fcm import GRANT, ServiceAccount
from tidings.core.mobile import apns_request, fcm_message
from tidings.core.push import MobileCall
from tidings.server import new_loop
from tidings.testing.fcm import make_service_account

AUTH = {"Authorization": f"Bearer {KEY}"}
TEAM_ID = "BENCHTEAM1"
KEY_ID = "BENCHKEY01"
TOPIC = "com.example.app"
PROJECT = "tidings-bench"
TITLE = "Your parcel"
BODY = "Your parcel has left the depot and arrives today between 14:00 and 16:00."
DATA = {"k": "v"}
TTL = 86400
TICK = os.sysconf("SC_CLK_TCK")
URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# Set-up


def subscriber_id(i: int) -> str:
    return f"m{i:07d}"


def apns_token(i: int) -> str:
    return hashlib.sha256(f"apns{i}".encode()).hexdigest()  # 64 hex digits, as today's device tokens


def fcm_token(i: int) -> str:
    """About the length of a real registration token (``<instance id>:APA91b<...>``), ~150 characters."""
    digest = hashlib.sha512(f"fcm{i}".encode()).digest() * 2
    tail = "".join(URLSAFE[byte % 64] for byte in digest)
    return f"fcm:{i:07d}-APA91b{tail}"[:152]


def channel_of(i: int) -> dict:
    return {"type": "apns", "token": apns_token(i)} if i % 2 == 0 else {"type": "fcm", "token": fcm_token(i)}


@dataclasses.dataclass(frozen=True)
class Keys:
    p8: Path
    account: Path
    pem: bytes
    """The ``.p8`` file's text."""
    info: dict
    """The service account's JSON."""


def write_keys(folder: Path, fcm_url: str) -> Keys:
    """The team's ``.p8`` (an EC P-256 key, PKCS#8 PEM, as Apple gives it) and an FCM service account whose
    ``token_uri`` is the emulator's."""
    key = ec.generate_private_key(ec.SECP256R1())
    p8 = folder / f"AuthKey_{KEY_ID}.p8"
    p8.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    account = folder / "service-account.json"
    account.write_text(json.dumps(make_service_account(f"{fcm_url}/token", PROJECT)))
    return Keys(p8, account, p8.read_bytes(), json.loads(account.read_text()))


def tidings_settings(apns: str, fcm: str, keys: Keys, connections: int, concurrency: int) -> str:
    return f"""
[providers.apns]
base_url = "{apns}"
sandbox_url = "{apns}"
team_id = "{TEAM_ID}"
key_id = "{KEY_ID}"
private_key_file = "{keys.p8}"
topic = "{TOPIC}"
connections = {connections}
concurrency = {concurrency}

[providers.fcm]
base_url = "{fcm}"
service_account_file = "{keys.account}"
concurrency = {concurrency}
"""


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 20) -> None:
    """The APNs emulator speaks only HTTP/2, which ``common.wait_ready``'s urllib does not: wait for its port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def apns_emulator(port: int, p8: Path, latency: float):
    args = [PYTHON, "-m", "tidings.testing", "apns", "--port", str(port), "--team-id", TEAM_ID, "--key-id", KEY_ID]
    args += ["--key-file", str(p8), "--topic", TOPIC, "--min-token-interval", "0", "--latency", str(latency)]
    return process(args)


def fcm_emulator(port: int, account: Path, latency: float):
    args = [PYTHON, "-m", "tidings.testing", "fcm", "--port", str(port), "--service-account-file", str(account)]
    args += ["--project-id", PROJECT, "--latency", str(latency)]
    return process(args, ready_url=f"http://127.0.0.1:{port}/_emulator/received")


async def setup_subscribers(api: str, n: int, chunk: int = 10_000) -> float:
    started = time.perf_counter()
    for first in range(0, n, chunk):
        done = min(n, first + chunk)
        await put_subscribers(
            api, {subscriber_id(i): {"channels": [channel_of(i)], "topics": ["all"]} for i in range(first, done)}
        )
        print(f"  subscribers: {done:,} of {n:,} ({time.perf_counter() - started:.0f} s)", flush=True)
    return time.perf_counter() - started


# Measuring


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


class Processes:
    """The CPU seconds of each process of the run, read at the start and at the end of each measurement."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def read(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    @staticmethod
    def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {name: round(after[name] - before[name], 2) for name in before}


class Emulators:
    """Control routes of both emulators: reset before a run, and the count of what each received after it."""

    def __init__(self, apns: str, fcm: str) -> None:
        self.apns_url, self.fcm_url = apns, fcm
        self.h2 = httpx.AsyncClient(http1=False, http2=True, timeout=120)
        self.http = aiohttp.ClientSession(connector=connector(), timeout=aiohttp.ClientTimeout(total=120))

    async def close(self) -> None:
        await self.h2.aclose()
        await self.http.close()

    async def reset(self) -> None:
        (await self.h2.post(f"{self.apns_url}/_emulator/reset")).raise_for_status()
        async with self.http.post(f"{self.fcm_url}/_emulator/reset") as answer:
            answer.raise_for_status()

    async def received(self, started: float) -> dict:
        """What each emulator accepted since its reset: how many, how many distinct tokens, and when the first and
        last arrived (seconds after ``started``, an epoch time)."""
        apns = (await self.h2.get(f"{self.apns_url}/_emulator/received")).json()
        async with self.http.get(f"{self.fcm_url}/_emulator/received") as answer:
            fcm = await answer.json()
        out = {}
        for name, got in (("apns", apns), ("fcm", fcm)):
            at = [item["at"] for item in got]
            out[name] = {
                "received": len(got),
                "distinct": len({item["to"] for item in got}),
                "first_seconds": round(min(at) - started, 3) if at else None,
                "last_seconds": round(max(at) - started, 3) if at else None,
            }
        return out


def stderr_of(pid: int) -> str:
    """What a process started by ``common.process`` wrote to stderr so far (a temporary file: its descriptor 2)."""
    try:
        return Path(f"/proc/{pid}/fd/2").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def stderr_summary(text: str) -> dict:
    lines = [line for line in text.splitlines() if line.strip()]
    return {"lines": len(lines), "last": lines[-8:]}


async def sample_rss(pid: int, into: list[tuple[float, int]], started: float, every: float = 0.1) -> None:
    """``(seconds after started, RSS in KB)`` every ``every`` s."""
    while True:
        into.append((time.perf_counter() - started, rss_kb(pid)))
        await asyncio.sleep(every)


def jobs_counts(metrics: str) -> dict[tuple[str, str], float]:
    """``tidings_jobs_total{provider, outcome}`` from the Prometheus text."""
    counts: dict[tuple[str, str], float] = {}
    for line in metrics.splitlines():
        if line.startswith("tidings_jobs_total{"):
            labels, value = line[len("tidings_jobs_total{") :].rsplit("} ", 1)
            fields = dict(part.split("=", 1) for part in labels.split(","))
            counts[(fields["provider"].strip('"'), fields["outcome"].strip('"'))] = float(value)
    return counts


async def read_jobs(session: aiohttp.ClientSession, api: str) -> dict[tuple[str, str], float]:
    async with session.get(f"{api}/metrics") as answer:
        return jobs_counts(await answer.text())


async def wait_done(
    session: aiohttp.ClientSession, api: str, message_id: str, started: float, timeout: float, poll: float
) -> tuple[list[tuple[float, dict]], list[float]]:
    """``GET /v1/messages/{id}`` every ``poll`` s until it is done: the counts at each reading (seconds after
    ``started``, a ``time.perf_counter()``), and how long each GET took."""
    marks: list[tuple[float, dict]] = []
    gets: list[float] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(poll)
        asked = time.perf_counter()
        async with session.get(f"{api}/v1/messages/{message_id}") as answer:
            body = await answer.json()
        gets.append(time.perf_counter() - asked)
        counts = body["counts"]
        marks.append((time.perf_counter() - started, counts))
        if body["status"] == "done":  # not merely nothing queued: a large topic's deliveries come after the answer
            break
    return marks, gets


async def warm_up(api: str, timeout: float = 60) -> dict:
    """One message to one APNs and one FCM subscriber: tidings reconnects to the fresh emulators and fetches a new
    access token before anything is timed."""
    async with aiohttp.ClientSession(connector=connector(), headers=AUTH) as session:
        started = time.perf_counter()
        message = {"to": [subscriber_id(0), subscriber_id(1)], "title": TITLE, "body": "warm-up",
                   "channels": ["apns", "fcm"]}  # fmt: skip
        async with session.post(f"{api}/v1/messages", json=message) as answer:
            sent = await answer.json()
            if answer.status != 202:
                raise RuntimeError(f"POST /v1/messages: {answer.status} {sent}")
        marks, _ = await wait_done(session, api, sent["id"], started, timeout, 0.05)
        async with session.get(f"{api}/v1/messages/{sent['id']}/deliveries") as answer:
            rows = (await answer.json()).get("deliveries", [])
        deliveries = [{key: row.get(key) for key in ("channel", "status", "attempts", "last_error")} for row in rows]
        return {"seconds": round(marks[-1][0], 3), "counts": marks[-1][1], "deliveries": deliveries}


async def tidings_run(
    api: str, pid: int, n: int, timeout: float, poll: float, emulators: Emulators, cpu: Processes
) -> dict:
    rss: list[tuple[float, int]] = []
    sampler = None
    try:
        async with aiohttp.ClientSession(connector=connector(), headers=AUTH) as session:
            jobs_before = await read_jobs(session, api)
            message = {"topic": "all", "title": TITLE, "body": BODY, "data": DATA, "channels": ["apns", "fcm"]}
            rss_before = rss_kb(pid)
            cpu_before = cpu.read()
            wall = time.time()
            started = time.perf_counter()
            sampler = asyncio.create_task(sample_rss(pid, rss, started))
            async with session.post(f"{api}/v1/messages", json=message) as answer:
                sent = await answer.json()
                if answer.status != 202 or sent["recipients"] != n:
                    raise RuntimeError(f"POST /v1/messages: {answer.status} {sent}")
            accepted = time.perf_counter() - started
            marks, gets = await wait_done(session, api, sent["id"], started, timeout, poll)
            cpu_after = cpu.read()
            jobs_after = await read_jobs(session, api)
            failed_rows: list = []
            if marks[-1][1].get("failed", 0):
                async with session.get(f"{api}/v1/messages/{sent['id']}/deliveries?status=failed") as answer:
                    failed_rows = (await answer.json()).get("deliveries", [])[:5]
    finally:
        if sampler is not None:
            sampler.cancel()
    elapsed, counts = marks[-1]
    peak_at, peak = max(rss, key=lambda mark: mark[1], default=(0.0, rss_before))
    delivered = counts.get("delivered", 0)

    def share_at(q: float) -> float | None:
        return next((round(t, 3) for t, c in marks if c.get("delivered", 0) >= q * n), None)

    jobs = {
        f"{provider}.{outcome}": jobs_after[(provider, outcome)] - jobs_before.get((provider, outcome), 0.0)
        for provider, outcome in jobs_after
        if provider in ("apns", "fcm") and jobs_after[(provider, outcome)] != jobs_before.get((provider, outcome), 0.0)
    }
    at_emulators = await emulators.received(wall)
    per_service = {}
    for name in ("apns", "fcm"):
        got = at_emulators[name]
        last = got["last_seconds"]
        per_service[name] = {**got, "throughput": got["received"] / last if last else 0.0}
    return {
        "accepted_seconds": round(accepted, 3),
        "seconds": round(elapsed, 3),
        "done": counts.get("queued", 0) == 0 and counts.get("delivered", 0) + counts.get("failed", 0) > 0,
        "counts": counts,
        "throughput": delivered / elapsed,
        "first_delivered_seconds": share_at(1 / n),
        "p50_seconds": share_at(0.5),
        "jobs": jobs,
        "per_service": per_service,
        "failed_examples": failed_rows,
        "rss_mb_before": round(rss_before / 1024, 1),
        "rss_mb_max": round(peak / 1024, 1),
        "rss_mb_max_at_seconds": round(peak_at, 1),
        "rss_mb_after": round(rss_kb(pid) / 1024, 1),
        "polls": len(gets),
        "poll_get_ms_p50": round(percentile(gets, 50) * 1000, 1),
        "poll_get_ms_max": round(max(gets, default=0) * 1000, 1),
        "cpu_seconds": Processes.spent(cpu_before, cpu_after),
    }


async def bare_apns(url: str, pem: bytes, tokens: list[str], connections: int, concurrency: int) -> dict:
    """N/2 notifications over ``connections`` HTTP/2 connections, each request built as tidings builds it."""
    key = serialization.load_pem_private_key(pem, password=None)
    provider = ProviderToken(key, KEY_ID, TEAM_ID, 3000)  # type: ignore[arg-type]
    clients = [
        httpx.AsyncClient(
            http1=False,
            http2=True,
            timeout=httpx.Timeout(10),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            follow_redirects=False,
        )
        for _ in range(connections)
    ]
    turn = itertools.cycle(clients)
    gate = asyncio.Semaphore(concurrency)
    statuses: collections.Counter[str] = collections.Counter()

    async def one(i: int, token: str) -> None:
        call = MobileCall(f"dlv_bare_apns_{i}", token, "production", TITLE, BODY, DATA, "normal", TTL)
        async with gate:
            now = time.time()
            headers, payload = apns_request(call, TOPIC, now)
            try:
                answer = await next(turn).post(
                    f"{url}/3/device/{token}",
                    content=payload,
                    headers={**headers, "authorization": f"bearer {provider.get(now)}"},
                )
                statuses[str(answer.status_code)] += 1
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1

    started = time.perf_counter()
    try:
        await asyncio.gather(*(one(i, token) for i, token in enumerate(tokens)))
        elapsed = time.perf_counter() - started
    finally:
        for client in clients:
            await client.aclose()
    return {"seconds": elapsed, "throughput": len(tokens) / elapsed, "statuses": dict(statuses)}


async def access_token(info: dict) -> str:
    service = ServiceAccount(info)
    async with aiohttp.ClientSession() as session:
        form = {"grant_type": GRANT, "assertion": service.assertion(time.time())}
        async with session.post(service.token_uri, data=form) as answer:
            body = await answer.json()
            if answer.status != 200:
                raise RuntimeError(f"FCM token endpoint: {answer.status} {body}")
            return body["access_token"]


async def bare_fcm(fcm: str, project: str, tokens: list[str], concurrency: int, bearer: str) -> dict:
    """N/2 sends on one pooled session, each body built as tidings builds it."""
    url = f"{fcm}/v1/projects/{project}/messages:send"
    gate = asyncio.Semaphore(concurrency)
    statuses: collections.Counter[str] = collections.Counter()
    headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json; charset=UTF-8"}
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector(), timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def one(i: int, token: str) -> None:
            call = MobileCall(f"dlv_bare_fcm_{i}", token, "production", TITLE, BODY, DATA, "normal", TTL)
            async with gate:
                body = json.dumps({"message": fcm_message(call)}, ensure_ascii=False, separators=(",", ":")).encode()
                try:
                    async with session.post(url, data=body, headers=headers) as answer:
                        await answer.json()
                        statuses[str(answer.status)] += 1
                except (aiohttp.ClientError, TimeoutError) as exc:
                    statuses[type(exc).__name__] += 1

        await asyncio.gather(*(one(i, token) for i, token in enumerate(tokens)))
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "throughput": len(tokens) / elapsed, "statuses": dict(statuses)}


async def bare_run(
    apns: str, fcm: str, keys: Keys, n: int, connections: int, concurrency: int, timeout: float,
    emulators: Emulators, cpu: Processes,
) -> dict:  # fmt: skip
    apns_tokens = [apns_token(i) for i in range(0, n, 2)]
    fcm_tokens = [fcm_token(i) for i in range(1, n, 2)]
    bearer = await access_token(keys.info)
    cpu_before = cpu.read()
    wall = time.time()
    started = time.perf_counter()

    async def timed(coro) -> dict:
        result = await coro
        result["finished_seconds"] = round(time.perf_counter() - started, 3)
        return result

    a, f = await asyncio.wait_for(
        asyncio.gather(
            timed(bare_apns(apns, keys.pem, apns_tokens, connections, concurrency)),
            timed(bare_fcm(fcm, keys.info["project_id"], fcm_tokens, concurrency, bearer)),
        ),
        timeout,
    )
    elapsed = time.perf_counter() - started
    cpu_after = cpu.read()
    ok = a["statuses"].get("200", 0) + f["statuses"].get("200", 0)
    return {
        "seconds": round(elapsed, 3),
        "throughput": ok / elapsed,
        "delivered": ok,
        "failed": n - ok,
        "apns": a,
        "fcm": f,
        "at_emulators": await emulators.received(wall),
        "cpu_seconds": Processes.spent(cpu_before, cpu_after),
    }


async def latency_part(
    api: str, server_pid: int, ports: tuple[int, int], keys: Keys, latency: float,
    args: argparse.Namespace,
) -> dict:  # fmt: skip
    apns_port, fcm_port = ports
    apns, fcm = f"http://127.0.0.1:{apns_port}", f"http://127.0.0.1:{fcm_port}"
    result: dict = {"latency": latency, "rounds": []}
    with (
        apns_emulator(apns_port, keys.p8, latency) as apns_proc,
        fcm_emulator(fcm_port, keys.account, latency) as fcm_proc,
    ):
        wait_port(apns_port, apns_proc)
        emulators = Emulators(apns, fcm)
        cpu = Processes({"tidings": server_pid, "apns_emulator": apns_proc.pid, "fcm_emulator": fcm_proc.pid,
                         "bench": os.getpid()})  # fmt: skip
        try:
            result["warm_up"] = await warm_up(api)
            print(f"  warm-up: {result['warm_up']['deliveries']} in {result['warm_up']['seconds']} s", flush=True)
            for number in range(args.rounds):
                one: dict = {}
                order = ("tidings", "bare") if number % 2 == 0 else ("bare", "tidings")
                for path in order:
                    await emulators.reset()
                    await asyncio.sleep(1)  # the previous run's connections settle
                    if path == "tidings":
                        one[path] = await tidings_run(api, server_pid, args.n, args.timeout, args.poll, emulators, cpu)
                    else:
                        one[path] = await bare_run(
                            apns, fcm, keys, args.n, args.connections, args.concurrency, args.timeout,
                            emulators, cpu,
                        )  # fmt: skip
                    print(f"  round {number + 1}, {path}: {one[path]['throughput']:,.0f}/s in "
                          f"{one[path]['seconds']:.2f} s", flush=True)  # fmt: skip
                one["ratio"] = one["tidings"]["throughput"] / one["bare"]["throughput"]
                result["rounds"].append(one)
            result["emulator_stderr"] = {"apns": stderr_summary(stderr_of(apns_proc.pid)),
                                         "fcm": stderr_summary(stderr_of(fcm_proc.pid))}  # fmt: skip
        finally:
            await emulators.close()
    return result


# Report


def report(r: dict) -> None:
    n = r["n"]
    print(
        f"\nMobile push: one message to N = {n:,} subscribers ({(n + 1) // 2:,} APNs, {n // 2:,} FCM), "
        f"APNs over {r['connections']} HTTP/2 connection(s), at most C = {r['concurrency']} in flight per service"
    )
    print(f"set-up (not timed): {n:,} PUT /v1/subscribers in {r['setup_seconds']:.0f} s; RSS idle "
          f"{r['rss_mb_idle']:.0f} MB")  # fmt: skip
    for part in r["latencies"]:
        print(
            f"\nemulators answering after {part['latency'] * 1000:g} ms (warm-up, {part['warm_up']['seconds']} s: "
            f"{part['warm_up']['deliveries']})"
        )
        print(f"{'round':<6}{'path':<9}{'APNs/s':>9}{'FCM/s':>9}{'all/s':>9}{'time':>9}{'vs bare':>9}"
              f"{'failed':>8}  CPU s (tidings / APNs emu / FCM emu / bench)")  # fmt: skip
        for number, one in enumerate(part["rounds"], 1):
            t, b = one["tidings"], one["bare"]
            rows = [
                ("tidings", t["per_service"]["apns"]["throughput"], t["per_service"]["fcm"]["throughput"],
                 t["throughput"], t["seconds"], f"{one['ratio']:.0%}", t["counts"].get("failed", 0) + (n - sum(
                     t["counts"].get(k, 0) for k in ("delivered", "failed"))), t["cpu_seconds"]),
                ("bare", b["apns"]["throughput"], b["fcm"]["throughput"], b["throughput"], b["seconds"], "100%",
                 b["failed"], b["cpu_seconds"]),
            ]  # fmt: skip
            for name, apns, fcm, combined, seconds, ratio, failed, cpu in rows:
                spent = " / ".join(f"{cpu[k]:.1f}" for k in ("tidings", "apns_emulator", "fcm_emulator", "bench"))
                print(f"{number:<6}{name:<9}{apns:>9,.0f}{fcm:>9,.0f}{combined:>9,.0f}{seconds:>8.2f}s{ratio:>9}"
                      f"{failed:>8}  {spent}")  # fmt: skip
            own, bare_own = t["cpu_seconds"]["tidings"] * 1000 / n, b["cpu_seconds"]["bench"] * 1000 / n
            print(f"      CPU per notification: tidings' process {own:.2f} ms, the bare loops' {bare_own:.2f} ms "
                  f"({bare_own / own:.0%})")  # fmt: skip
            accepted, rss = t["accepted_seconds"], t["rss_mb_max"]
            print(
                f"      tidings: POST answered in {accepted * 1000:,.0f} ms (target < 1 s: "
                f"{'reached' if accepted < 1 else 'not reached'}); max RSS {rss:.0f} MB at "
                f"{t['rss_mb_max_at_seconds']} s (target < 300 MB: "
                f"{'reached' if rss < 300 else 'not reached'}); ratio {one['ratio']:.0%} (target >= 60%: "
                f"{'reached' if one['ratio'] >= 0.6 else 'not reached'})"
            )
            print(
                f"      tidings: first delivery {t['first_delivered_seconds']} s, half {t['p50_seconds']} s, all "
                f"{t['seconds']:.2f} s after the POST; counts {t['counts']}; at the emulators APNs "
                f"{t['per_service']['apns']['received']:,} ({t['per_service']['apns']['distinct']:,} tokens) by "
                f"{t['per_service']['apns']['last_seconds']} s, FCM {t['per_service']['fcm']['received']:,} "
                f"({t['per_service']['fcm']['distinct']:,}) by {t['per_service']['fcm']['last_seconds']} s; "
                f"GET /v1/messages/{{id}} p50 {t['poll_get_ms_p50']} ms, max {t['poll_get_ms_max']} ms"
            )
            print(f"      bare: APNs {b['apns']['statuses']} in {b['apns']['seconds']:.2f} s, FCM "
                  f"{b['fcm']['statuses']} in {b['fcm']['seconds']:.2f} s")  # fmt: skip
    print(f"\ntidings RSS {r['rss_mb_idle']:.0f} MB idle after the set-up, {r['rss_mb_end']:.0f} MB at the end")
    logs = [("tidings", r["tidings_stderr"])]
    logs += [(f"{name} emulator ({part['latency'] * 1000:g} ms)", part["emulator_stderr"][name])
             for part in r["latencies"] for name in ("apns", "fcm")]  # fmt: skip
    for name, log in logs:
        if log["lines"]:
            print(f"{name} stderr: {log['lines']} line(s), the last:")
            for line in log["last"]:
                print(f"    {line[:300]}")
    print(json.dumps(r, default=float, separators=(",", ":")))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="subscribers, half APNs and half FCM")
    parser.add_argument("--latencies", default="0,0.05", help="emulator latencies in seconds, comma-separated")
    parser.add_argument("--rounds", type=int, default=1, help="tidings and bare runs, in turns, per latency")
    parser.add_argument("--connections", type=int, default=2, help="HTTP/2 connections to APNs")
    parser.add_argument("--concurrency", type=int, default=1000, help="requests in flight per service")
    parser.add_argument("--timeout", type=float, default=300, help="seconds each run may take, at most")
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between GET /v1/messages/{id}")
    args = parser.parse_args()
    latencies = [float(value) for value in args.latencies.split(",") if value.strip()]
    raise_files_for(4 * args.concurrency)
    results: dict = {"n": args.n, "connections": args.connections, "concurrency": args.concurrency,
                     "started_at": time.strftime("%Y-%m-%d %H:%M:%S"), "latencies": []}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ports = (free_port(), free_port())
        apns, fcm = f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}"
        keys = write_keys(folder, fcm)
        serving, api = serve_tidings(folder, tidings_settings(apns, fcm, keys, args.connections, args.concurrency))
        with serving as server:
            print(f"tidings at {api}; APNs emulator {apns}, FCM emulator {fcm}", flush=True)
            results["setup_seconds"] = await setup_subscribers(api, args.n)
            await asyncio.sleep(1)
            results["rss_mb_idle"] = round(rss_kb(server.pid) / 1024, 1)
            for latency in latencies:
                print(f"latency {latency * 1000:g} ms", flush=True)
                results["latencies"].append(await latency_part(api, server.pid, ports, keys, latency, args))
            results["rss_mb_end"] = round(rss_kb(server.pid) / 1024, 1)
            results["tidings_stderr"] = stderr_summary(stderr_of(server.pid))
    report(results)


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(main())
