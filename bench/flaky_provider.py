"""Verification codes through a provider that fails: how many arrive, and how late, with tidings' default retries.

    python bench/flaky_provider.py                       # 30% of requests failing, then a 20 s outage
    python bench/flaky_provider.py --n 2000 --skip-outage
    python bench/flaky_provider.py --m 500 --outage 20 --skip-flaky

tidings runs on SQLite with its default retry and circuit breaker settings (only the anti-abuse limits are off),
sending through one Yunpian emulator that also counts the requests it answers. Two measurements:

- flaky: the emulator fails a share of requests (``--failure-rate``, chosen by ``--seed``); N verifications to N
  numbers, with Yunpian's batches (``multi_send``) and again with one request per SMS (``batch_size = 1``), since a
  failed batch fails every code it carries;
- outage: the emulator fails every request for ``--outage`` seconds; M verifications start over the first
  ``--spread`` seconds of it. Reported: the requests the emulator got while down (the circuit breaker holds the sends
  back, so far fewer than M times the retries) and how long after its end the codes arrived.

Each waits until every number has its code at the emulator, or every code still missing has left ``pending``, or
its time limit passes.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import re
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    KEY,
    PYTHON,
    connector,
    free_port,
    percentile,
    process,
    raise_open_files,
    serve_tidings,
    yunpian_settings,
)

APIKEY = "bench-apikey"

EMULATOR = """
import sys, time
from aiohttp import web
from tidings.server import new_loop
from tidings.testing.yunpian import create_app

port, failure_rate, seed = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
arrivals = []

@web.middleware
async def count(request, handler):
    if not request.path.startswith("/v2/"):
        return await handler(request)
    at = time.time()
    response = await handler(request)
    arrivals.append((at, response.status))
    return response

async def requests(request):
    return web.json_response(arrivals)

app = create_app(apikey="APIKEY", failure_rate=failure_rate, seed=seed)
app.middlewares.append(count)
app.router.add_get("/_bench/requests", requests)
web.run_app(app, host="127.0.0.1", port=port, loop=new_loop(), access_log=None, print=None, backlog=8192)
""".replace("APIKEY", APIKEY)


def emulator(folder: Path, failure_rate: float, seed: int):
    """tidings' Yunpian emulator, with each request's arrival time and status at ``GET /_bench/requests``: the
    emulator itself only lists the messages it accepted, not the requests it failed."""
    port = free_port()
    script = folder / "emulator.py"
    script.write_text(EMULATOR)
    args = [PYTHON, str(script), str(port), str(failure_rate), str(seed)]
    return process(args, ready_url=f"http://127.0.0.1:{port}/_bench/requests"), f"http://127.0.0.1:{port}"


def serve(folder: Path, emulator_url: str, batch_size: int | None = None):
    """tidings with its default dispatch settings, every anti-abuse limit off."""
    batch = f"batch_size = {batch_size}" if batch_size is not None else ""
    return serve_tidings(folder, yunpian_settings(emulator_url, APIKEY, provider=batch))


def numbers(n: int, offset: int = 0) -> list[str]:
    return [f"+86139{offset + i:08d}" for i in range(n)]


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=connector(), headers={"Authorization": f"Bearer {KEY}"})


async def start(session: aiohttp.ClientSession, api: str, number: str, ids: dict, called: dict) -> None:
    called[number] = time.time()
    async with session.post(f"{api}/v1/verifications", json={"to": number}) as answer:
        body = await answer.json()
        if answer.status != 201:
            raise RuntimeError(f"{answer.status}: {body}")
        ids[number] = body["id"]


async def start_all(session: aiohttp.ClientSession, api: str, batch: list[str], concurrency: int):
    """Every verification as fast as the API takes them, ``concurrency`` at a time; their ids and call times."""
    ids: dict[str, str] = {}
    called: dict[str, float] = {}
    gate = asyncio.Semaphore(concurrency)

    async def bounded(number: str) -> None:
        async with gate:
            await start(session, api, number, ids, called)

    await asyncio.gather(*(bounded(number) for number in batch))
    return ids, called


async def start_spread(session: aiohttp.ClientSession, api: str, batch: list[str], began: float, spread: float):
    """The verifications started evenly over ``spread`` seconds from ``began``, as users would."""
    ids: dict[str, str] = {}
    called: dict[str, float] = {}

    async def at(i: int, number: str) -> None:
        await asyncio.sleep(max(0.0, began + i * spread / len(batch) - time.time()))
        await start(session, api, number, ids, called)

    await asyncio.gather(*(at(i, number) for i, number in enumerate(batch)))
    return ids, called


async def received(session: aiohttp.ClientSession, emulator_url: str) -> tuple[dict[str, float], int]:
    """Each number's first receipt at the emulator, and how many messages it accepted in all (more than the
    numbers if a code was sent twice)."""
    async with session.get(f"{emulator_url}/_emulator/received") as answer:
        messages = await answer.json()
    first: dict[str, float] = {}
    for message in messages:
        number = message["to"] if message["to"].startswith("+") else f"+86{message['to']}"
        first[number] = min(first.get(number, message["at"]), message["at"])
    return first, len(messages)


async def statuses(session: aiohttp.ClientSession, api: str, ids: dict[str, str]) -> dict[str, str]:
    """Each verification's status, 64 reads at a time."""
    gate = asyncio.Semaphore(64)
    found: dict[str, str] = {}

    async def read(number: str, vid: str) -> None:
        async with gate, session.get(f"{api}/v1/verifications/{vid}") as answer:
            found[number] = (await answer.json())["status"]

    await asyncio.gather(*(read(number, vid) for number, vid in ids.items()))
    return found


async def none_pending(session: aiohttp.ClientSession, api: str, ids: dict[str, str]) -> bool:
    return "pending" not in (await statuses(session, api, ids)).values()


async def wait_done(session: aiohttp.ClientSession, api: str, emulator_url: str, ids: dict[str, str], deadline: float):
    """Poll the emulator until every number has its code. A code that failed will never arrive, so when none arrived
    since the last poll, read the missing ones' statuses (200 first, to spare the server while most are pending):
    all of them failed is done too."""
    before = -1
    while True:
        seen, messages = await received(session, emulator_url)
        missing = {number: vid for number, vid in ids.items() if number not in seen}
        if not missing or time.time() > deadline:
            return seen, messages
        if len(seen) == before:
            sample = dict(itertools.islice(missing.items(), 200))
            if await none_pending(session, api, sample) and await none_pending(session, api, missing):
                return seen, messages
        before = len(seen)
        await asyncio.sleep(0.5)


async def requests(session: aiohttp.ClientSession, emulator_url: str) -> list[tuple[float, int]]:
    async with session.get(f"{emulator_url}/_bench/requests") as answer:
        return [(at, status) for at, status in await answer.json()]


async def sends(session: aiohttp.ClientSession, api: str) -> dict[str, float]:
    """tidings' own count of its sends by outcome (``deferred``: held back by the open circuit, without a request)."""
    async with session.get(f"{api}/metrics") as answer:
        text = await answer.text()
    found = re.findall(r'^tidings_jobs_total\{outcome="(\w+)",provider="yunpian"\} ([\d.e+]+)$', text, re.M)
    return {outcome: float(count) for outcome, count in found}


def summary(seen: dict[str, float], called: dict[str, float], messages: int, found: dict[str, str]) -> dict:
    got = [number for number in called if number in seen]
    latencies = [seen[number] - called[number] for number in got]
    counts: dict[str, int] = {}
    for status in found.values():
        counts[status] = counts.get(status, 0) + 1
    return {
        "delivered": len(got),
        "duplicates": messages - len(got),
        "statuses": counts,
        "last": max((seen[number] for number in got), default=float("nan")),
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
    }


def pauses(arrivals: list[tuple[float, int]], since: float, at_least: float = 1.5) -> list[tuple[float, float]]:
    """Where the provider got no request for ``at_least`` seconds (the circuit open, or the retries waiting): the
    start of each pause, from ``since``, and its length."""
    times = sorted(at for at, _ in arrivals)
    return [(a - since, b - a) for a, b in itertools.pairwise(times) if b - a >= at_least]


async def flaky(folder: Path, args: argparse.Namespace, batch_size: int | None) -> dict:
    """N verifications at once through a provider failing a share of requests."""
    running, emulator_url = emulator(folder, args.failure_rate, args.seed)
    with running:
        serving, api = serve(folder, emulator_url, batch_size)
        with serving:
            async with client() as session:
                first_call = time.time()
                ids, called = await start_all(session, api, numbers(args.n), args.concurrency)
                accepted = time.time()
                seen, messages = await wait_done(session, api, emulator_url, ids, first_call + args.timeout)
                result = summary(seen, called, messages, await statuses(session, api, ids))
                result["sends"] = await sends(session, api)
                arrivals = await requests(session, emulator_url)
    result.update(
        name=f"{args.failure_rate:.0%} failing, " + ("one POST per SMS" if batch_size == 1 else "batched"),
        total=args.n,
        accepted=accepted - first_call,
        last=result["last"] - first_call,
        requests=len(arrivals),
        failed_requests=sum(status >= 500 for _, status in arrivals),
        pauses=pauses(arrivals, first_call),
    )
    return result


async def outage(folder: Path, args: argparse.Namespace) -> dict:
    """M verifications started during the first seconds of an outage of the only provider."""
    running, emulator_url = emulator(folder, 0.0, args.seed)
    with running:
        serving, api = serve(folder, emulator_url)
        with serving:
            async with client() as session:
                asked = time.time()
                async with session.post(f"{emulator_url}/_emulator/outage", params={"seconds": args.outage}) as answer:
                    answer.raise_for_status()
                down = (asked + time.time()) / 2
                up = down + args.outage
                ids, called = await start_spread(session, api, numbers(args.m), down, args.spread)
                seen, messages = await wait_done(session, api, emulator_url, ids, up + args.outage_timeout)
                result = summary(seen, called, messages, await statuses(session, api, ids))
                result["sends"] = await sends(session, api)
                arrivals = await requests(session, emulator_url)
    during = [at - down for at, _ in arrivals if down <= at < up]
    after_end = [seen[number] - up for number in called if number in seen]
    result.update(
        name=f"{args.outage:g} s outage",
        total=args.m,
        last=result["last"] - up,
        requests=len(arrivals),
        during=during,
        failed_requests=sum(status >= 500 for _, status in arrivals),
        after_p50=percentile(after_end, 50),
        after_p99=percentile(after_end, 99),
    )
    return result


def report(results: list[dict]) -> None:
    print(f"\n{'':<32}{'delivered':>12}{'failed':>8}{'requests':>10}{'of them failed':>16}{'sent twice':>12}")
    for r in results:
        failed = r["statuses"].get("failed", 0)
        delivered = f"{r['delivered']}/{r['total']}"
        row = f"{r['name']:<32}{delivered:>12}{failed:>8}{r['requests']:>10}{r['failed_requests']:>16}"
        print(f"{row}{r['duplicates']:>12}")
    for r in results:
        sends = ", ".join(f"{outcome} {count:.0f}" for outcome, count in sorted(r["sends"].items()))
        others = {status: count for status, count in r["statuses"].items() if status not in ("pending", "failed")}
        print(f"\n{r['name']}: statuses {r['statuses']}; tidings' sends by outcome: {sends}")
        if others:
            print(f"  neither pending nor failed: {others}")
        if "during" in r:
            times = ", ".join(f"{t:.1f}" for t in r["during"][:40])
            print(f"  {len(r['during'])} requests while the provider was down, at +s: {times}")
            print(
                f"  last code {r['last']:.1f} s after the outage's end; after the end p50 {r['after_p50']:.1f} s, "
                f"p99 {r['after_p99']:.1f} s; call -> receipt p50 {r['p50']:.1f} s, p99 {r['p99']:.1f} s"
            )
        else:
            quiet = ", ".join(f"+{start:.1f} s for {length:.1f} s" for start, length in r["pauses"]) or "none"
            print(f"  no request to the provider for 1.5 s or more from: {quiet}")
            print(
                f"  API accepted them in {r['accepted']:.1f} s; last code {r['last']:.1f} s after the first call; "
                f"call -> receipt p50 {r['p50']:.2f} s, p99 {r['p99']:.2f} s"
            )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="verifications through the failing provider")
    parser.add_argument("--failure-rate", type=float, default=0.3, help="share of requests the emulator fails")
    parser.add_argument("--seed", type=int, default=1, help="seed of the emulator's choice of failing requests")
    parser.add_argument("--concurrency", type=int, default=64, help="API calls in flight when starting N")
    parser.add_argument("--timeout", type=float, default=120, help="seconds from the first call to give up waiting")
    parser.add_argument("--no-single", action="store_true", help="skip the run with one request per SMS")
    parser.add_argument("--skip-flaky", action="store_true", help="only the outage")
    parser.add_argument("--m", type=int, default=500, help="verifications started during the outage")
    parser.add_argument("--outage", type=float, default=20, help="seconds the emulator fails every request")
    parser.add_argument("--spread", type=float, default=10, help="seconds of the outage over which the M start")
    parser.add_argument("--outage-timeout", type=float, default=90, help="seconds after the outage to give up")
    parser.add_argument("--skip-outage", action="store_true", help="only the failing share")
    args = parser.parse_args()
    raise_open_files()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if not args.skip_flaky:
            results.append(await flaky(folder, args, None))
            print(f"{results[-1]['name']}: done", file=sys.stderr)
            if not args.no_single:
                results.append(await flaky(folder, args, 1))
                print(f"{results[-1]['name']}: done", file=sys.stderr)
        if not args.skip_outage:
            results.append(await outage(folder, args))
            print(f"{results[-1]['name']}: done", file=sys.stderr)
    report(results)


if __name__ == "__main__":
    asyncio.run(main())
