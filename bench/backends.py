"""What each backend costs, and tidings on Redis against arq, side by side in one run.

    python bench/backends.py --n 5000                 # latency 0: the queues' own cost
    python bench/backends.py --n 5000 --latency 0.05

One run starts its own Redis (append-only file, fsync every second, as docs/scaling.md advises) and one Yunpian
emulator, then sends N SMS through each of:

- tidings on Redis, one API node and one worker: N ``POST /v1/verifications`` -> Redis -> worker -> emulator;
- the same with two workers;
- tidings on SQLite, one process (the embedded default);
- the same three with one ``POST /v1/messages`` to a topic of N subscribers with a phone: N SMS, one API call;
- verifications on Redis (one worker) and on SQLite again with one POST per SMS, arq's job, where the rows above
  let Yunpian take the sends started together in one ``multi_send`` (``--batch-size``, 1,000 by default);
- arq, the usual asyncio job queue on Redis: N ``enqueue_job`` from one client, and a worker (uvloop, one pooled
  aiohttp session, ``max_jobs`` as many as tidings' concurrency, a Redis pool that holds them) whose job is the
  same POST to the emulator. It runs first and last, and tidings is compared with the faster of the two runs, so
  that a slow spell of the shared machine cannot favour tidings.

Throughput is N over the time from the first call to the emulator's receipt of the last SMS. Everything shares the
machine's cores, emulator and Redis included, so the run also reports the CPU time that the queue system's own
processes spend per SMS (tidings' API and workers; arq's worker and its enqueuing client).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import aiohttp
import verifications
from common import KEY, PYTHON, connector, free_port, outcome, process, raise_open_files

ARQ_WORKER = """
import asyncio, signal, aiohttp, uvloop
from arq.connections import ArqRedis
from arq.worker import Worker

async def startup(ctx):
    ctx["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

async def shutdown(ctx):
    await ctx["session"].close()

async def send_sms(ctx, number):
    form = {"apikey": APIKEY, "mobile": number.removeprefix("+86"), "text": TEXT}
    async with ctx["session"].post(URL + "/v2/sms/single_send.json", data=form) as answer:
        body = await answer.json(content_type=None)
        if body.get("code") != 0:
            raise RuntimeError(body)

async def main():
    # redis-py's pool refuses a 101st connection instead of waiting, and each finishing job takes one: the pool
    # must hold max_jobs of them, or arq drops the jobs that finish together.
    pool = ArqRedis(host="127.0.0.1", port=PORT, db=1, max_connections=MAX_JOBS + 16)
    worker = Worker(
        functions=[send_sms], redis_pool=pool, on_startup=startup, on_shutdown=shutdown,
        max_jobs=MAX_JOBS, keep_result=0, handle_signals=False,
    )
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    try:
        await worker.main()
    except asyncio.CancelledError:
        pass
    finally:
        await worker.close()

uvloop.run(main())
"""


@contextlib.contextmanager
def redis_server(folder: Path):
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is needed")
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
            "--appendonly", "yes", "--appendfsync", "everysec"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() == b"PONG":
                break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait()


def flush(port: int) -> None:
    subprocess.run(["redis-cli", "-p", str(port), "flushall"], capture_output=True, check=True)


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes have used so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def fan_out(api: str, emulator: str, batch: list[str], timeout: float, pids: list[int]) -> dict:
    """One ``POST /v1/messages`` to a topic whose N subscribers each have a phone: N SMS. The subscribers are
    made first and not timed (they are the app's users)."""
    topic = f"bench-{batch[0][-8:]}"
    async with aiohttp.ClientSession(api, connector=connector(), headers={"Authorization": f"Bearer {KEY}"}) as s:
        gate = asyncio.Semaphore(64)

        async def subscribe(number: str) -> None:
            async with gate, s.put(f"/v1/subscribers/p{number[1:]}", json={"phone": number, "topics": [topic]}) as a:
                if a.status not in (200, 201):
                    raise RuntimeError(await a.text())

        await asyncio.gather(*(subscribe(number) for number in batch))
        cpu = cpu_seconds(pids)
        first_call = time.time()
        body = {"topic": topic, "body": verifications.TEXT, "channels": ["sms"]}
        async with s.post("/v1/messages", json=body) as answer:
            if answer.status != 202:
                raise RuntimeError(await answer.text())
    accepted = time.time()
    seen = await verifications.wait_received(emulator, batch, timeout)
    cpu = cpu_seconds(pids) - cpu
    return {**outcome(seen, dict.fromkeys(batch, first_call), first_call, accepted), "cpu_ms": cpu / len(batch) * 1e3}


async def tidings_on(
    folder: Path,
    emulator: str,
    batch: list[str],
    args,
    database: str | None,
    workers: int,
    push: bool = False,
    batch_size: int | None = None,
) -> dict:
    """One API node and ``workers`` workers on ``database`` (one process doing both on SQLite): N verifications
    through the API, or (``push``) one message to N subscribers; Yunpian's ``batch_size`` is ``--batch-size``
    unless given."""
    size = batch_size or args.batch_size
    with contextlib.ExitStack() as stack:
        if database is None:
            serving, api = verifications.serve(folder, emulator, args.concurrency, batch_size=size)
            pids = [stack.enter_context(serving).pid]
        else:
            serving, api = verifications.serve(folder, emulator, args.concurrency, database, "api", size)
            pids = [stack.enter_context(serving).pid]
            for _ in range(workers):
                worker = verifications.serve(folder, emulator, args.concurrency, database, "worker", size)[0]
                pids.append(stack.enter_context(worker).pid)
        timeout = 120 + 3 * args.latency
        if push:
            return await fan_out(api, emulator, batch, timeout, pids)
        cpu = cpu_seconds(pids)
        result = await verifications.whole_path(api, emulator, batch, 256, timeout)
        return {**result, "cpu_ms": (cpu_seconds(pids) - cpu) / len(batch) * 1e3}


async def arq_run(folder: Path, emulator: str, batch: list[str], args, port: int) -> dict:
    from arq import create_pool
    from arq.connections import RedisSettings

    script = folder / "arq_worker.py"
    script.write_text(
        ARQ_WORKER.replace("APIKEY", repr(verifications.APIKEY)).replace("TEXT", repr(verifications.TEXT))
        .replace("URL", repr(emulator)).replace("PORT", str(port)).replace("MAX_JOBS", str(args.concurrency))
    )  # fmt: skip
    with process([PYTHON, "arq_worker.py"], cwd=folder) as worker:
        await asyncio.sleep(2)  # the worker connects and starts polling
        pool = await create_pool(RedisSettings(host="127.0.0.1", port=port, database=1))
        gate = asyncio.Semaphore(64)  # arq's Redis pool holds 100 connections at most
        called: dict[str, float] = {}

        async def enqueue(number: str) -> None:
            async with gate:
                called[number] = time.time()
                await pool.enqueue_job("send_sms", number)

        worker_cpu, client_cpu = cpu_seconds([worker.pid]), time.process_time()
        first_call = time.time()
        await asyncio.gather(*(enqueue(number) for number in batch))
        accepted = time.time()
        client_cpu = time.process_time() - client_cpu  # this process only enqueues until here
        seen = await verifications.wait_received(emulator, batch, 120 + 3 * args.latency)
        await pool.aclose()
        worker_cpu = cpu_seconds([worker.pid]) - worker_cpu
    return {**outcome(seen, called, first_call, accepted), "cpu_ms": (worker_cpu + client_cpu) / len(batch) * 1e3}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000, help="SMS per measurement")
    parser.add_argument("--latency", type=float, default=0.0, help="emulator latency in seconds")
    parser.add_argument("--concurrency", type=int, default=256, help="sends in flight per worker")
    parser.add_argument(
        "--batch-size", type=int, default=1000, help="tidings' Yunpian batch_size (1: one POST per SMS, as arq's job)"
    )
    args = parser.parse_args()
    raise_open_files()
    results: dict = {"n": args.n, "latency": args.latency, "batch_size": args.batch_size}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        running, emulator = verifications.emulator(args.latency)
        with running, redis_server(folder) as port:
            redis_url = f"redis://127.0.0.1:{port}/0"
            arq = ("arq, 1 worker", lambda batch: arq_run(folder, emulator, batch, args, port))
            runs = [
                arq,
                ("redis, 1 worker", lambda batch: tidings_on(folder, emulator, batch, args, redis_url, 1)),
                ("redis, 2 workers", lambda batch: tidings_on(folder, emulator, batch, args, redis_url, 2)),
                ("sqlite, 1 process", lambda batch: tidings_on(folder, emulator, batch, args, None, 0)),
                ("push: redis, 1 worker", lambda batch: tidings_on(folder, emulator, batch, args, redis_url, 1, True)),
                ("push: redis, 2 workers",
                 lambda batch: tidings_on(folder, emulator, batch, args, redis_url, 2, True)),
                ("push: sqlite, 1 process", lambda batch: tidings_on(folder, emulator, batch, args, None, 0, True)),
            ]  # fmt: skip
            if args.batch_size > 1:  # the same job as arq's, side by side: one POST per SMS
                runs += [
                    ("redis, 1 worker, 1 POST/SMS",
                     lambda batch: tidings_on(folder, emulator, batch, args, redis_url, 1, batch_size=1)),
                    ("sqlite, 1 POST/SMS",
                     lambda batch: tidings_on(folder, emulator, batch, args, None, 0, batch_size=1)),
                ]  # fmt: skip
            runs.append(("arq, 1 worker, again", arq[1]))
            for offset, (name, run) in enumerate(runs):
                flush(port)
                results[name] = await run(verifications.numbers(args.n, offset * 10**6))
    report(results)


def report(r: dict) -> None:
    print(json.dumps(r, indent=2, default=float))
    # arq runs first and last; tidings is compared with the faster of the two, so a slow spell cannot favour it.
    arq_runs = [r["arq, 1 worker"], r["arq, 1 worker, again"]]
    best = max(arq_runs, key=lambda run: run["throughput"])
    arq, arq_cpu = best["throughput"], best["cpu_ms"]
    print(f"\nN = {r['n']}, emulator latency = {r['latency']} s, tidings' Yunpian batch_size = {r['batch_size']}")
    print(f"{'path':<26}{'per second':>12}{'vs arq':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/SMS':>12}{'vs arq':>8}")
    for name in [name for name in r if isinstance(r[name], dict)]:
        run = r[name]
        print(f"{name:<26}{run['throughput']:>12.0f}{run['throughput'] / arq:>8.1f}x{run['p50'] * 1000:>9.0f}"
              f"{run['p99'] * 1000:>9.0f}{run['cpu_ms']:>12.2f}{arq_cpu / run['cpu_ms']:>7.1f}x")  # fmt: skip
    for prefix in ("", "push: "):
        two = r[f"{prefix}redis, 2 workers"]["throughput"] / r[f"{prefix}redis, 1 worker"]["throughput"]
        print(f"{prefix}two workers / one worker: {two:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
