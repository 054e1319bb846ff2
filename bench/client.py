"""The client's overhead: N ``verifications.start`` through ``tidings.client.Client`` against a bare aiohttp client
making the same requests, side by side against one tidings server.

    python bench/client.py                      # 3,000 calls per run, 64 in flight, 3 rounds
    python bench/client.py --n 10000 --rounds 5

Both send to N different numbers (limits off, codes go to a Yunpian emulator that answers at once) with the same
bound on calls in flight; each round runs the bare loop and the client one after the other, on fresh numbers, so
that a slow spell of the shared machine weighs on both. The ratio given is the median of the rounds' ratios. The
bare loop does what a hand-written caller would: one pooled session, a JSON body, an ``Idempotency-Key``, the JSON
answer read; the client adds its typed answer, its error mapping and its retry loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import KEY, PYTHON, connector, free_port, process, serve_tidings, yunpian_settings

from tidings.client import Client


def numbers(round_: int, kind: int, n: int) -> list[str]:
    """Distinct valid UK mobile numbers per round and kind, so no call resends another's code."""
    return [f"+447700{round_:01d}{kind:01d}{i:04d}" for i in range(n)]


async def bare(url: str, to: list[str], concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession(url, connector=connector(), headers=headers) as session:

        async def start(number: str) -> None:
            body = json.dumps({"to": number})
            sent = {"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
            async with gate, session.post("/v1/verifications", data=body, headers=sent) as answer:
                if answer.status != 201:
                    raise RuntimeError(f"{answer.status} {await answer.text()}")
                await answer.json()

        began = time.perf_counter()
        await asyncio.gather(*(start(number) for number in to))
        return len(to) / (time.perf_counter() - began)


async def client(url: str, to: list[str], concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)
    async with Client(url, KEY) as tidings:

        async def start(number: str) -> None:
            async with gate:
                await tidings.verifications.start(to=number)

        began = time.perf_counter()
        await asyncio.gather(*(start(number) for number in to))
        return len(to) / (time.perf_counter() - began)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000, help="calls per run (at most 10,000)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not 0 < args.n <= 10_000 or not 0 < args.rounds <= 9:
        parser.error("--n is 1 to 10,000 and --rounds 1 to 9")
    emulator_port = free_port()
    emulator = f"http://127.0.0.1:{emulator_port}"
    emulator_args = [PYTHON, "-m", "tidings.testing", "yunpian", "--port", str(emulator_port), "--apikey", "k"]
    ratios = []
    with tempfile.TemporaryDirectory() as tmp, process(emulator_args, ready_url=f"{emulator}/_emulator/received"):
        context, url = serve_tidings(Path(tmp), yunpian_settings(emulator, "k"))
        with context:
            await bare(url, numbers(9, 9, 200), args.concurrency)  # warm up: connections, caches
            for round_ in range(args.rounds):
                plain = await bare(url, numbers(round_, 0, args.n), args.concurrency)
                ours = await client(url, numbers(round_, 1, args.n), args.concurrency)
                ratios.append(ours / plain)
                print(f"round {round_ + 1}: bare {plain:,.0f}/s, Client {ours:,.0f}/s, {ours / plain:.0%}")
    print(f"Client / bare aiohttp, median of {args.rounds}: {statistics.median(ratios):.0%}")
    print(json.dumps({"ratios": ratios, "median": statistics.median(ratios), "n": args.n}))


if __name__ == "__main__":
    asyncio.run(main())
