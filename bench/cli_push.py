"""``tidings push --file``: how long a file of N ids takes to be accepted, how often the progress bar moves, and
whether the CLI's memory stays flat as the file grows (it reads the file as it sends it).

    python bench/cli_push.py                         # 10,000 then 100,000 ids
    python bench/cli_push.py --sizes 10000 100000 300000 --rounds 2

It starts ``tidings serve`` (SQLite), creates the largest N subscribers with ``PUT /v1/subscribers/{id}`` (a bounded
number at a time; not timed), writes one CSV file per size, then for each size runs, as a user would:

    tidings push --file ids-N.csv --body hi --channels stream

under a pseudo-terminal (so that it draws its bar, as at a terminal; 120 columns), reading what it draws with the
time each piece arrived. The bar's frames are split at rich's "go to the start of the line and clear it"; a frame
whose text (ANSI codes removed) differs from the one before is a visible update. Then the same push with ``--json``
and stdout a pipe (no bar), for its time alone. Each run is timed from its start to its exit (the interpreter's
start included), and its own summary says the seconds from reading the file's first line to the last answer. The
CLI's peak RSS is its ``VmHWM`` (``/proc/<pid>/status``), read every 5 ms until it exits. Every run must reach N
recipients, or the benchmark says so and stops.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import fcntl
import itertools
import json
import os
import pty
import re
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import KEY, PYTHON, connector, serve_tidings

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
FRAME = b"\r\x1b[2K"
"""What rich's live display writes before each redraw of a one-line bar."""
SUMMARY = re.compile(r"accepted ([\d,]+) ids in ([\d,]+) messages: ([\d,]+) recipients .*\(([\d.]+) s\)")


async def put_subscribers(url: str, ids: list[str], concurrency: int = 64) -> float:
    started = time.monotonic()
    pending = iter(ids)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession(url, connector=connector(), headers=headers) as session:

        async def worker() -> None:
            for subscriber_id in pending:
                async with session.put(f"/v1/subscribers/{subscriber_id}", json={}) as answer:
                    if answer.status not in (200, 201):
                        raise RuntimeError(f"PUT {subscriber_id}: {answer.status} {await answer.text()}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.monotonic() - started


class Peak:
    """A process's peak RSS, read from ``VmHWM`` every few milliseconds until it exits. Not ``ru_maxrss``: a
    child forked from this process (which holds every id) starts with this one's pages as its high-water mark,
    which outlives the ``exec``."""

    def __init__(self, pid: int) -> None:
        self.kb = 0
        self.path = Path(f"/proc/{pid}/status")
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while True:
            try:
                status = self.path.read_text()
            except OSError:
                return
            found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
            if found is None:  # a zombie: the process has ended
                return
            self.kb = int(found[1])
            time.sleep(0.005)

    def mb(self) -> float:
        self.thread.join(5)
        return self.kb / 1024


def environment(url: str) -> dict[str, str]:
    return {**os.environ, "TIDINGS_URL": url, "TIDINGS_API_KEY": KEY, "TERM": "xterm-256color"}


def in_a_terminal(args: list[str], url: str) -> dict:
    """Run ``tidings ...`` with a pseudo-terminal as stdin, stdout and stderr; what it drew, when, its peak RSS."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    started = time.monotonic()
    process = subprocess.Popen([PYTHON, "-m", "tidings", *args], stdin=slave, stdout=slave, stderr=slave,
                               env=environment(url), close_fds=True)  # fmt: skip
    os.close(slave)
    peak = Peak(process.pid)
    chunks: list[tuple[float, bytes]] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the other side is closed
                return
            if not data:
                return
            chunks.append((time.monotonic() - started, data))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    process.wait()
    seconds = time.monotonic() - started
    reader.join(5)
    os.close(master)
    return {"status": process.returncode, "seconds": seconds, "max_rss_mb": peak.mb(), "chunks": chunks}


def frames(chunks: list[tuple[float, bytes]]) -> tuple[list[tuple[float, str]], str]:
    """Each drawing of the bar (its text, and when its bytes arrived); and the plain text printed after it."""
    data = b"".join(chunk for _, chunk in chunks)
    ends = list(itertools.accumulate(len(chunk) for _, chunk in chunks))
    starts = [0] + [match.end() for match in re.finditer(re.escape(FRAME), data)]
    drawn = []
    for n, start in enumerate(starts):
        end = starts[n + 1] - len(FRAME) if n + 1 < len(starts) else len(data)
        when = chunks[bisect.bisect_right(ends, start)][0] if start < len(data) else chunks[-1][0]
        drawn.append((when, ANSI.sub(b"", data[start:end]).decode(errors="replace")))
    last, _, after = drawn[-1][1].partition("\n")
    drawn[-1] = (drawn[-1][0], last)
    return [(when, text.strip()) for when, text in drawn], after.strip()


def updates(drawn: list[tuple[float, str]]) -> dict:
    """Frames per second over the bar's life, those that changed what is shown, and the longest wait for one."""
    if len(drawn) < 2:
        return {"frames": len(drawn), "per_second": float("nan"), "changed_per_second": float("nan"), "gap": 0.0}
    span = drawn[-1][0] - drawn[0][0]
    changes = [drawn[0][0]] + [t for (_, before), (t, text) in itertools.pairwise(drawn) if text != before]
    gaps = [b - a for a, b in itertools.pairwise(changes)] or [span]
    return {
        "frames": len(drawn),
        "span": span,
        "per_second": (len(drawn) - 1) / span if span else float("nan"),
        "changed_per_second": (len(changes) - 1) / span if span else float("nan"),
        "gap": max(gaps),
    }


def with_json(args: list[str], url: str) -> dict:
    started = time.monotonic()
    process = subprocess.Popen([PYTHON, "-m", "tidings", *args, "--json"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=environment(url))  # fmt: skip
    peak = Peak(process.pid)
    out, err = process.communicate()
    seconds = time.monotonic() - started
    if process.returncode != 0:
        raise RuntimeError(f"tidings push --json failed: {err.decode()[-2000:]}")
    return {"seconds": seconds, "max_rss_mb": peak.mb(), "summary": json.loads(out)}


def run(size: int, path: Path, url: str, body: str) -> dict:
    push = ["push", "--file", str(path), "--body", body, "--channels", "stream"]
    shown = in_a_terminal(push, url)
    drawn, after = frames(shown["chunks"])
    summary = SUMMARY.search(after)
    if shown["status"] != 0 or summary is None or int(summary[3].replace(",", "")) != size:
        raise RuntimeError(f"push of {size:,} ids: exit {shown['status']}: {after[-2000:]}")
    quiet = with_json(["push", "--file", str(path), "--body", f"{body} (json)", "--channels", "stream"], url)
    if quiet["summary"]["recipients"] != size:
        raise RuntimeError(f"push --json of {size:,} ids: {quiet['summary']}")
    return {
        "size": size,
        "seconds": shown["seconds"],
        "own_seconds": float(summary[4]),
        "max_rss_mb": shown["max_rss_mb"],
        "updates": updates(drawn),
        "last_frame": drawn[-1][1] if drawn else "",
        "json_seconds": quiet["seconds"],
        "json_own_seconds": quiet["summary"]["seconds"],
        "json_max_rss_mb": quiet["max_rss_mb"],
    }


def report(result: dict) -> None:
    u = result["updates"]
    print(f"\n{result['size']:,} ids: accepted in {result['seconds']:.2f} s from start to exit "
          f"({result['own_seconds']:.1f} s by its own count), peak RSS {result['max_rss_mb']:.1f} MB")  # fmt: skip
    print(
        f"  bar: {u['frames']} frames over {u.get('span', 0):.2f} s = {u['per_second']:.1f}/s, "
        f"{u['changed_per_second']:.1f}/s that changed what is shown, longest wait for a change {u['gap']:.2f} s"
    )
    print(f"  last frame: {result['last_frame']}")
    print(f"  --json, no bar: {result['json_seconds']:.2f} s ({result['json_own_seconds']:.2f} s its own count), "
          f"peak RSS {result['json_max_rss_mb']:.1f} MB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=1)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server, url = serve_tidings(Path(folder), "")
        with server:
            ids = [f"s{i:07d}" for i in range(max(options.sizes))]
            print(f"PUT {len(ids):,} subscribers (not timed) ...", flush=True)
            print(f"  {asyncio.run(put_subscribers(url, ids)):.1f} s", flush=True)
            files = {}
            for size in options.sizes:
                files[size] = Path(folder) / f"ids-{size}.csv"
                files[size].write_text("id\n" + "".join(f"{i}\n" for i in ids[:size]))
            for round in range(1, options.rounds + 1):
                for size in options.sizes:
                    report(run(size, files[size], url, "hi" if round == 1 else f"hi ({round})"))


if __name__ == "__main__":
    main()
