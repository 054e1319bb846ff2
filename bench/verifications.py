"""Verification codes through the whole path, side by side with the ways people send SMS by hand.

    python bench/verifications.py --n 2000 --latency 0
    python bench/verifications.py --n 10000 --latency 5
    python bench/verifications.py --api-only            # the API against a bare aiohttp handler

One run starts a Yunpian emulator with the given latency and measures, against it:

- tidings: N POST /v1/verifications -> SQLite -> dispatcher -> emulator, timed from each API call to the emulator's
  receipt of that number's SMS;
- pooled: one aiohttp session, ``gather`` bounded by a semaphore (the practical limit of a hand-written sender);
- session-per-SMS: a new ``ClientSession`` for every SMS, ``gather`` (the common naive version);
- one-after-another: awaiting each SMS in turn (timed on a sample and extrapolated when N would take too long).

and ``POST /v1/verifications`` (answered once durably committed) against a bare aiohttp handler that returns a
constant, with wrk and with an aiohttp client: both servers up, taking turns under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen
from common import (
    KEY,
    PYTHON,
    connector,
    free_port,
    outcome,
    percentile,
    process,
    raise_open_files,
    serve_tidings,
    yunpian_settings,
)

APIKEY = "bench-apikey"
TEXT = "【tidings】您的验证码是123456，10分钟内有效。"


def numbers(n: int, offset: int = 0) -> list[str]:
    return [f"+86139{offset + i:08d}" for i in range(n)]


def bare_mobile(number: str) -> str:
    return number.removeprefix("+86")


async def send_one(session: aiohttp.ClientSession, url: str, number: str) -> None:
    form = {"apikey": APIKEY, "mobile": bare_mobile(number), "text": TEXT}
    async with session.post(f"{url}/v2/sms/single_send.json", data=form) as answer:
        body = await answer.json(content_type=None)
        if body.get("code") != 0:
            raise RuntimeError(body)


async def pooled(url: str, batch: list[str], concurrency: int) -> float:
    started = time.perf_counter()
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=connector()) as session:

        async def bounded(number: str) -> None:
            async with gate:
                await send_one(session, url, number)

        await asyncio.gather(*(bounded(number) for number in batch))
    return len(batch) / (time.perf_counter() - started)


async def session_per_sms(url: str, batch: list[str]) -> float:
    started = time.perf_counter()

    async def alone(number: str) -> None:
        async with aiohttp.ClientSession() as session:
            await send_one(session, url, number)

    await asyncio.gather(*(alone(number) for number in batch))
    return len(batch) / (time.perf_counter() - started)


async def one_after_another(url: str, batch: list[str]) -> float:
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        for number in batch:
            await send_one(session, url, number)
    return len(batch) / (time.perf_counter() - started)


async def received(url: str) -> dict[str, float]:
    """The emulator's receipt time for each number it accepted."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/_emulator/received") as answer:
        return {f"+86{m['to']}" if not m["to"].startswith("+") else m["to"]: m["at"] for m in await answer.json()}


async def wait_received(emulator: str, batch: list[str], timeout: float) -> dict[str, float]:
    """Receipt times once the emulator has every number of ``batch`` (or the timeout passed). Polled every 0.2 s:
    the list grows large, and reading it costs the emulator, which also serves the sends."""
    deadline = time.monotonic() + timeout
    while True:
        seen = await received(emulator)
        if all(number in seen for number in batch) or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.2)


async def whole_path(
    api: str, emulator: str, batch: list[str], concurrency: int, timeout: float, lean: bool = True
) -> dict:
    """N verifications through the API; done when the emulator has received every one of them.

    ``lean`` drives the API with the lean load generator (cheap for the shared CPUs, like wrk); otherwise with an
    aiohttp client, which costs the machine about as much as tidings' own work.
    """
    headers = {"Authorization": f"Bearer {KEY}"}
    first_call = time.time()
    if lean:
        done = await loadgen.post_all(api, "/v1/verifications", [{"to": n} for n in batch], concurrency, headers)
        if any(status != 201 for status in done["statuses"]):
            raise RuntimeError(f"refused: {sorted(set(done['statuses']))}")
        called = dict(zip(batch, done["sent_at"], strict=True))
    else:
        called = {}
        gate = asyncio.Semaphore(concurrency)
        async with aiohttp.ClientSession(api, connector=connector(), headers=headers) as session:

            async def start(number: str) -> None:
                async with gate:
                    called[number] = time.time()
                    async with session.post("/v1/verifications", json={"to": number}) as answer:
                        if answer.status != 201:
                            raise RuntimeError(await answer.text())

            await asyncio.gather(*(start(number) for number in batch))
    accepted = time.time()
    return outcome(await wait_received(emulator, batch, timeout), called, first_call, accepted)


def serve(
    folder: Path,
    emulator: str,
    concurrency: int,
    database: str | None = None,
    role: str = "all",
    batch_size: int = 1000,
):
    """tidings sending through the Yunpian emulator, with every anti-abuse limit off; ``batch_size`` 1 sends one
    request per SMS, as the baselines do, instead of a ``multi_send`` for the sends started together."""
    return serve_tidings(
        folder,
        yunpian_settings(
            emulator, APIKEY, f"concurrency = {concurrency}\nbatch_size = 1000", f"batch_size = {batch_size}"
        ),
        database,
        role,
    )


def emulator(latency: float):
    port = free_port()
    args = [
        PYTHON,
        "-m",
        "tidings.testing",
        "yunpian",
        "--port",
        str(port),
        "--latency",
        str(latency),
        "--apikey",
        APIKEY,
    ]
    return process(args, ready_url=f"http://127.0.0.1:{port}/_emulator/received"), f"http://127.0.0.1:{port}"


WRK_SCRIPT = """
counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer KEY"
request = function()
  counter = counter + 1
  local body = string.format('{"to": "+86137%08d"}', (counter * 7919 + math.random(0, 99999) * 100000) % 100000000)
  return wrk.format(nil, "/v1/verifications", nil, body)
end
"""
BARE = """
import uvloop
from aiohttp import web
async def handle(request):
    await request.read()
    return web.json_response({"status": "ok"}, status=201)
app = web.Application()
app.router.add_post("/v1/verifications", handle)
app.router.add_get("/healthz", handle)
web.run_app(app, host="127.0.0.1", port=PORT, loop=uvloop.new_event_loop(), access_log=None, print=None)
"""


def wrk(url: str, script: Path, seconds: int, connections: int) -> dict:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50, p99 = (re.search(rf"{q}%\s+([\d.]+)(us|ms|s)", out).groups() for q in (50, 99))
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rate,
        "p50_ms": float(p50[0]) * scale[p50[1]],
        "p99_ms": float(p99[0]) * scale[p99[1]],
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
    }


async def aiohttp_load(url: str, seconds: float, concurrency: int, turn: int = 0) -> dict:
    """The same load as wrk's, from one aiohttp session: a Python client, so both servers see the same slower load.
    Each ``turn`` sends to numbers of its own, so that no turn resends to another's numbers."""
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession(connector=connector(), headers=headers) as session:

        async def worker(offset: int) -> None:
            nonlocal errors
            i = 0
            while time.perf_counter() < stop:
                i += 1
                started = time.perf_counter()
                body = {"to": f"+8613{turn % 10}{(offset * 1_000_000 + i) % 100_000_000:08d}"}
                async with session.post(url, json=body) as answer:
                    await answer.read()
                    errors += answer.status >= 300
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        elapsed = time.perf_counter() - began
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "errors": errors,
    }


def bare_server(folder: Path):
    """A bare aiohttp handler (one process, uvloop, a constant answer); returns its context and its URL."""
    port = free_port()
    script = folder / f"bare-{port}.py"
    script.write_text(BARE.replace("PORT", str(port)))
    return process([PYTHON, str(script)], ready_url=f"http://127.0.0.1:{port}/healthz"), f"http://127.0.0.1:{port}"


async def bare_accepting(folder: Path, batch: list[str], concurrency: int) -> float:
    """Seconds a bare handler takes to answer the same N calls from the same load generator: the least any aiohttp
    server on this machine could take to accept them now."""
    running, url = bare_server(folder)
    with running:
        started = time.time()
        await loadgen.post_all(url, "/v1/verifications", [{"to": n} for n in batch], concurrency,
                               {"Authorization": f"Bearer {KEY}"})  # fmt: skip
        return time.time() - started


async def api_vs_bare(folder: Path, seconds: int, connections: int, rounds: int) -> dict:
    """POST /v1/verifications against a bare handler, with wrk and with an aiohttp client.

    Both servers run for the whole measurement and take turns, bare then tidings, ``rounds`` times with each load
    generator, so that a slow spell of the shared machine weighs on both; each ratio is the median of its rounds.
    tidings runs against an emulator that answers after 60 s, one send at a time, so the dispatcher sits idle and
    the figure is the API's own: each answer still waits for the verification and its job to be committed.
    """
    script = folder / "post.lua"
    script.write_text(WRK_SCRIPT.replace("KEY", KEY))
    bare, bare_base = bare_server(folder)
    bare_url = f"{bare_base}/v1/verifications"
    turns = itertools.count()
    loads = {
        "wrk": lambda url: asyncio.to_thread(wrk, url, script, seconds, connections),
        "aiohttp": lambda url: aiohttp_load(url, seconds, connections, next(turns)),
    }
    results: dict = {}
    held, emulator_url = emulator(60.0)
    serving, api = serve(folder, emulator_url, 1)
    with bare, held, serving:
        for tool, load in loads.items():
            pairs = [(await load(bare_url), await load(f"{api}/v1/verifications")) for _ in range(rounds)]
            ratios = sorted(ours["rps"] / bare["rps"] for bare, ours in pairs)
            results[tool] = {
                "rounds": [{"bare": bare, "tidings": ours} for bare, ours in pairs],
                "ratio": ratios[len(ratios) // 2],
                "tidings_p99_ms": max(ours["p99_ms"] for _, ours in pairs),
            }
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="verifications per measurement")
    parser.add_argument("--latency", type=float, default=0.0, help="emulator latency in seconds")
    parser.add_argument("--concurrency", type=int, default=256, help="client concurrency for the API calls")
    parser.add_argument("--send-concurrency", type=int, default=10000, help="tidings' concurrency per provider")
    parser.add_argument("--seconds", type=int, default=5, help="duration of each API measurement")
    parser.add_argument("--rounds", type=int, default=3, help="turns of bare and tidings per load generator")
    parser.add_argument(
        "--batch-size", type=int, default=1000, help="tidings' Yunpian batch_size (1: one request per SMS)"
    )
    parser.add_argument("--api-only", action="store_true", help="only the API against a bare handler")
    parser.add_argument("--no-api", action="store_true", help="skip the wrk measurement")
    args = parser.parse_args()
    raise_open_files()
    results: dict = {"n": args.n, "latency": args.latency, "batch_size": args.batch_size}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        running, url = emulator(args.latency)
        with running:
            if not args.api_only:
                serving, api = serve(folder, url, args.send_concurrency, batch_size=args.batch_size)
                with serving:
                    results["tidings"] = await whole_path(
                        api, url, numbers(args.n), args.concurrency, timeout=60 + 3 * args.latency
                    )
                serving, api = serve(folder, url, args.send_concurrency, batch_size=args.batch_size)
                with serving:
                    results["tidings_aiohttp_client"] = await whole_path(
                        api,
                        url,
                        numbers(args.n, 4 * 10**6),
                        args.concurrency,
                        timeout=60 + 3 * args.latency,
                        lean=False,
                    )
                results["bare_accepting"] = await bare_accepting(folder, numbers(args.n, 5 * 10**6), args.concurrency)
                pooled_concurrency = max(args.concurrency, args.send_concurrency if args.latency else 0)
                results["pooled"] = await pooled(url, numbers(args.n, 10**6), min(pooled_concurrency, args.n))
                results["session_per_sms"] = await session_per_sms(url, numbers(args.n, 2 * 10**6))
                sample = args.n if args.latency == 0 else 2
                results["one_after_another"] = await one_after_another(url, numbers(min(sample, 500), 3 * 10**6))
        if not args.no_api and shutil.which("wrk"):
            results["api"] = await api_vs_bare(folder, args.seconds, 64, args.rounds)
    report(results)


def report(r: dict) -> None:
    print(json.dumps(r, indent=2, default=float))
    if "tidings" in r:
        t = r["tidings"]
        print(f"\nN = {r['n']}, emulator latency = {r['latency']} s, tidings' Yunpian batch_size = {r['batch_size']}")
        print(f"{'path':<22}{'per second':>12}{'vs pooled':>11}{'time for N':>13}")
        for name, rate in (
            ("tidings (whole path)", t["throughput"]),
            ("pooled gather", r["pooled"]),
            ("session per SMS", r["session_per_sms"]),
            ("one after another", r["one_after_another"]),
        ):
            print(f"{name:<22}{rate:>12.0f}{rate / r['pooled']:>10.0%}{r['n'] / rate:>12.1f}s")
        slow = r["tidings_aiohttp_client"]["throughput"]
        print(f"{'tidings, API driven by an aiohttp client':<22}: {slow:.0f}/s, {slow / r['pooled']:.0%} of pooled")
        print(
            f"tidings: all {t['sent']} delivered in {t['seconds']:.2f} s (API accepted them in "
            f"{t['api_seconds']:.2f} s); call -> receipt p50 {t['p50'] * 1000:.0f} ms, p99 {t['p99'] * 1000:.0f} ms"
        )
        print(f"a bare aiohttp handler answered the same {r['n']} calls in {r['bare_accepting']:.2f} s")
    for tool, a in r.get("api", {}).items():
        print(f"\nPOST /v1/verifications with {tool}, turn by turn (64 connections):")
        for turn in a["rounds"]:
            ours, bare = turn["tidings"], turn["bare"]
            print(
                f"  tidings {ours['rps']:.0f}/s (p50 {ours['p50_ms']:.1f} ms, p99 {ours['p99_ms']:.1f} ms, "
                f"{ours['errors']} non-2xx) vs bare aiohttp {bare['rps']:.0f}/s (p99 {bare['p99_ms']:.1f} ms): "
                f"{ours['rps'] / bare['rps']:.0%}"
            )
        print(f"  median ratio {a['ratio']:.0%}; tidings' worst p99 {a['tidings_p99_ms']:.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
