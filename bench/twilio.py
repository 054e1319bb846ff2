"""The cost of speaking Twilio: N starts through ``POST /v2/Services/{sid}/Verifications`` (form body, Basic auth,
Twilio's JSON) against N through ``POST /v1/verifications`` (JSON, bearer key), side by side against one tidings.

    python bench/twilio.py                      # 3,000 starts per run, 64 in flight, 5 rounds
    python bench/twilio.py --n 10000 --rounds 5

Both send to N different numbers (limits off, codes go to a Yunpian emulator that answers at once) with the same
bound on requests in flight, over one pooled aiohttp session each; each round runs the native loop and the Twilio
loop one after the other (in turn first), on fresh numbers, so that a slow spell of the shared machine weighs on
both. Two ratios are given, each the median of the rounds': Twilio's throughput as a share of the native one, and
the same per CPU second of the tidings process (its user and system time, from /proc), which a busy neighbour
disturbs much less than it does the wall clock.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import KEY, PYTHON, connector, free_port, process, serve_tidings, yunpian_settings

ACCOUNT = "AC" + "0" * 32
SERVICE = "VA" + "0" * 32
COMPAT = f"""
[twilio_compat]
account_sid = "{ACCOUNT}"
service_sid = "{SERVICE}"
"""


def numbers(round_: int, kind: int, n: int) -> list[str]:
    """Distinct valid UK mobile numbers per round and kind, so no start resends another's code."""
    return [f"+447700{round_:01d}{kind:01d}{i:04d}" for i in range(n)]


def cpu_seconds(pid: int) -> float:
    """User and system time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(url: str, to: list[str], concurrency: int, twilio: bool, pid: int) -> tuple[float, float]:
    """Starts per second of the wall clock, and per CPU second of the server; every answer read and checked."""
    gate = asyncio.Semaphore(concurrency)
    if twilio:
        path = f"/v2/Services/{SERVICE}/Verifications"
        credentials = base64.b64encode(f"{ACCOUNT}:{KEY}".encode()).decode()
        headers = {"Authorization": f"Basic {credentials}", "Content-Type": "application/x-www-form-urlencoded"}
    else:
        path, headers = "/v1/verifications", {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(url, connector=connector(), headers=headers) as session:

        async def start(number: str) -> None:
            body = urlencode({"To": number, "Channel": "sms"}) if twilio else json.dumps({"to": number})
            async with gate, session.post(path, data=body) as answer:
                if answer.status != 201:
                    raise RuntimeError(f"{answer.status} {await answer.text()}")
                await answer.json()

        began, cpu = time.perf_counter(), cpu_seconds(pid)
        await asyncio.gather(*(start(number) for number in to))
        return len(to) / (time.perf_counter() - began), len(to) / max(cpu_seconds(pid) - cpu, 1e-3)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000, help="starts per run (at most 10,000)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not 0 < args.n <= 10_000 or not 0 < args.rounds <= 9:
        parser.error("--n is 1 to 10,000 and --rounds 1 to 9")
    emulator_port = free_port()
    emulator = f"http://127.0.0.1:{emulator_port}"
    emulator_args = [PYTHON, "-m", "tidings.testing", "yunpian", "--port", str(emulator_port), "--apikey", "k"]
    ratios, cpu_ratios = [], []
    with tempfile.TemporaryDirectory() as tmp, process(emulator_args, ready_url=f"{emulator}/_emulator/received"):
        context, url = serve_tidings(Path(tmp), yunpian_settings(emulator, "k") + COMPAT)
        with context as server:
            for kind, twilio in ((8, False), (9, True)):  # warm up both paths: connections, caches
                await run(url, numbers(9, kind, 200), args.concurrency, twilio, server.pid)
            for round_ in range(args.rounds):
                runs = {}
                for twilio in (False, True) if round_ % 2 == 0 else (True, False):
                    runs[twilio] = await run(url, numbers(round_, twilio, args.n), args.concurrency, twilio, server.pid)
                (native, native_cpu), (ours, ours_cpu) = runs[False], runs[True]
                ratios.append(ours / native)
                cpu_ratios.append(ours_cpu / native_cpu)
                print(
                    f"round {round_ + 1}: /v1 {native:,.0f}/s ({native_cpu:,.0f} per CPU s),"
                    f" /v2 (Twilio) {ours:,.0f}/s ({ours_cpu:,.0f} per CPU s): {ours / native:.0%}, per CPU"
                    f" {ours_cpu / native_cpu:.0%}"
                )
    median, cpu_median = statistics.median(ratios), statistics.median(cpu_ratios)
    print(f"Twilio's /v2 / native /v1, median of {args.rounds}: {median:.0%}; per server CPU second {cpu_median:.0%}")
    print(json.dumps({"ratios": ratios, "median": median, "cpu_ratios": cpu_ratios, "cpu_median": cpu_median,
                      "n": args.n}))  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
