"""What a crash sends twice: ``kill -9`` while a backlog of verification codes drains, then a restart.

    .venv/bin/python bench/crash_duplicates.py --n 3000 --batch-sizes 1,100,1000 --runs 5 --latency 0.1

Each run queues N codes to N numbers with ``tidings serve`` (on a fresh SQLite file) pointed at a provider that
never answers, and kills it: the codes wait in the queue, as a backlog does. Then ``tidings serve`` starts again on
the file, with ``[providers.yunpian] batch_size = B``, against a Yunpian emulator in this process, and leases the
backlog in batches; a random moment (up to one latency) after the emulator has received a third of the codes, the
server is killed with SIGKILL, started again, and runs until the queue is empty. A request the emulator had read
before the kill is still sent, as a provider that has read it would.

Counted per run: numbers that got their code (all N, or the run fails), copies beyond the first (duplicates), how
many of those the emulator had received before the kill (answered, their outcome not yet written) or after it (in
flight at the kill), and how many duplicates carried the same ``uid`` in every copy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen
from common import KEY, raise_open_files, serve_tidings, yunpian_settings

from tidings.testing import yunpian
from tidings.testing.emulator import EMULATOR, Emulator

APIKEY = "bench-apikey"


@contextlib.asynccontextmanager
async def tidings(folder: Path, extra: str, database: str) -> AsyncIterator[tuple[subprocess.Popen, str]]:
    """``serve_tidings`` with its blocking start and stop in a thread, so that the emulator in this loop answers
    meanwhile (a graceful stop waits for the sends in flight)."""
    running, url = serve_tidings(folder, extra, database)
    proc = await asyncio.to_thread(running.__enter__)
    try:
        yield proc, url
    finally:
        await asyncio.to_thread(running.__exit__, None, None, None)


def settings(emulator: str, batch_size: int, concurrency: int) -> str:
    """Every anti-abuse limit off; leases as large as the biggest batch."""
    return yunpian_settings(
        emulator, APIKEY, "batch_size = 1000", f"batch_size = {batch_size}\nconcurrency = {concurrency}"
    )


@contextlib.asynccontextmanager
async def watched_emulator(latency: float, watch: int) -> AsyncIterator[tuple[str, Emulator, asyncio.Event]]:
    """A Yunpian emulator, and an event set once it has received ``watch`` messages. Its handlers are not cancelled
    when a client goes away: a message read before the kill is sent."""
    app = yunpian.create_app(apikey=APIKEY, latency=latency)
    reached = asyncio.Event()

    @web.middleware
    async def watching(request: web.Request, handler):
        answer = await handler(request)
        if len(app[EMULATOR].received) >= watch:
            reached.set()
        return answer

    app.middlewares.append(watching)
    runner = web.AppRunner(app, handler_cancellation=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}", app[EMULATOR], reached
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def silent() -> AsyncIterator[str]:
    """A listener that never answers: the provider while the backlog is queued."""
    server = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.close()


async def queued(api: str) -> int:
    """Jobs in tidings' queue, leased ones included."""
    async with aiohttp.ClientSession() as session, session.get(f"{api}/metrics") as answer:
        text = await answer.text()
    return sum(int(float(depth)) for depth in re.findall(r"^tidings_queue_depth\{.*\} (\S+)$", text, re.MULTILINE))


async def queue_backlog(folder: Path, database: str, numbers: list[str]) -> None:
    """N codes in the queue of ``database``, none of them sent."""
    async with silent() as nowhere, tidings(folder, settings(nowhere, 1, 1), database) as (proc, api):
        bodies = [{"to": number} for number in numbers]
        done = await loadgen.post_all(api, "/v1/verifications", bodies, 64, {"Authorization": f"Bearer {KEY}"})
        if any(status != 201 for status in done["statuses"]):
            raise RuntimeError(f"refused: {sorted(set(done['statuses']))}")
        proc.kill()


async def one_run(folder: Path, args: argparse.Namespace, batch_size: int, rng: random.Random) -> dict:
    numbers = [f"+86137{i:08d}" for i in range(args.n)]
    database = f"sqlite:///{folder}/crash.db"
    await queue_backlog(folder, database, numbers)
    async with watched_emulator(args.latency, round(args.n * args.kill_after)) as (emulator, sms, reached):
        extra = settings(emulator, batch_size, args.concurrency)
        started = time.time()
        async with tidings(folder, extra, database) as (proc, api):
            async with asyncio.timeout(args.timeout):
                await reached.wait()
            await asyncio.sleep(rng.uniform(0, args.latency))
            proc.kill()
            killed_at, at_kill = time.time(), len(sms.received)
        async with tidings(folder, extra, database) as (_, api):
            deadline = time.monotonic() + args.timeout
            while await queued(api):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the queue did not drain in {args.timeout} s")
                await asyncio.sleep(0.1)
        seconds = time.time() - started
    copies = Counter(message.to for message in sms.received)
    if len(copies) < args.n:
        raise RuntimeError(f"only {len(copies)} of {args.n} numbers got their code")
    first: dict[str, float] = {}
    uids: dict[str, set[str | None]] = {}
    for message in sms.received:
        first.setdefault(message.to, message.at)
        uids.setdefault(message.to, set()).add(message.id)
    twice = [number for number, count in copies.items() if count > 1]
    return {
        "at_kill": at_kill,
        "delivered": len(copies),
        "duplicates": sum(copies[number] - 1 for number in twice),
        "answered": sum(copies[number] - 1 for number in twice if first[number] <= killed_at),
        "same_uid": sum(copies[number] - 1 for number in twice if len(uids[number]) == 1 and None not in uids[number]),
        "seconds": seconds,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000, help="codes queued before the kill, to as many numbers")
    parser.add_argument("--batch-sizes", default="1,100,1000", help="Yunpian batch_size of each series")
    parser.add_argument("--runs", type=int, default=3, help="runs per batch size")
    parser.add_argument("--latency", type=float, default=0.1, help="emulator latency in seconds")
    parser.add_argument("--concurrency", type=int, default=1000, help="tidings' sends in flight to Yunpian")
    parser.add_argument("--kill-after", type=float, default=1 / 3, help="share of N received before the kill")
    parser.add_argument("--timeout", type=float, default=120, help="seconds to reach the kill, and to drain after")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    args = parser.parse_args()
    raise_open_files()
    rng = random.Random(args.seed)
    print(
        f"N = {args.n}, emulator latency {args.latency} s, concurrency {args.concurrency}, killed up to "
        f"{args.latency} s after {args.kill_after:.0%} received"
    )
    print(f"{'batch':>5} {'run':>3} {'at kill':>8} {'delivered':>9} {'duplicates':>10} {'answered':>8} "
          f"{'in flight':>9} {'same uid':>8} {'seconds':>7}")  # fmt: skip
    for batch_size in (int(size) for size in args.batch_sizes.split(",")):
        for run in range(1, args.runs + 1):
            with tempfile.TemporaryDirectory() as tmp:
                r = await one_run(Path(tmp), args, batch_size, rng)
            print(
                f"{batch_size:>5} {run:>3} {r['at_kill']:>8} {r['delivered']:>9} {r['duplicates']:>10} "
                f"{r['answered']:>8} {r['duplicates'] - r['answered']:>9} {r['same_uid']:>8} {r['seconds']:>7.1f}",
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())
