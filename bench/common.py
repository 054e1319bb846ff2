"""Shared pieces of the benchmarks: processes started and stopped in pairs, free ports, percentiles."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
KEY = "tk_bench-root-key-0123456789abcdefghijkl"


def raise_open_files(wanted: int = 65536) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def process(
    args: list[str], env: dict[str, str] | None = None, ready_url: str | None = None, cwd: Path | None = None
) -> Iterator[subprocess.Popen]:
    """Run a process for the duration of the block; wait until ``ready_url`` answers. Its stderr goes to a file
    (a pipe nobody reads would stop a chatty process once full)."""
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            args,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            preexec_fn=raise_open_files,
        )
        try:
            if ready_url is not None:
                wait_ready(ready_url, proc, errors)
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_ready(url: str, proc: subprocess.Popen, errors: IO[bytes], timeout: float = 20) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            errors.seek(0)
            raise RuntimeError(f"{proc.args} exited: {errors.read().decode()[-4000:]}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def connector() -> aiohttp.TCPConnector:
    return aiohttp.TCPConnector(limit=0)


def serve_tidings(
    folder: Path, extra: str, database: str | None = None, role: str = "all"
) -> tuple[contextlib.AbstractContextManager, str]:
    """``tidings serve`` on a fresh SQLite database (so that no run starts with another's queue), or on
    ``database``, with ``extra`` TOML after the common settings; returns the process's context and its URL."""
    run = len(list(folder.glob("tidings-*.toml")))
    config = folder / f"tidings-{run}.toml"
    config.write_text(
        f"""
database = "{database or f"sqlite:///{folder}/bench-{run}.db"}"
role = "{role}"
api_key = "{KEY}"
secret_key = "bench"
log_level = "WARNING"
max_body_size = 1048576
{extra}
"""
    )
    port = free_port()
    args = [PYTHON, "-m", "tidings", "serve", "--config", str(config), "--port", str(port)]
    return process(args, ready_url=f"http://127.0.0.1:{port}/healthz", cwd=folder), f"http://127.0.0.1:{port}"


def yunpian_settings(emulator: str, apikey: str, dispatch: str = "", provider: str = "") -> str:
    """tidings sending through a Yunpian emulator with every anti-abuse limit off (a benchmark is one client sending
    to one number range); ``dispatch`` and ``provider`` are more lines of those sections."""
    return f"""
[verify]
sms_providers = ["yunpian"]
resend_cooldown = 0
[limits]
per_number_hour = 0
per_number_day = 0
per_ip_hour = 0
per_range_hour = 0
[dispatch]
{dispatch}
[providers.yunpian]
base_url = "{emulator}"
apikey = "{apikey}"
{provider}
"""


def outcome(seen: dict[str, float], called: dict[str, float], first_call: float, accepted: float) -> dict:
    """Throughput from the first call to the last receipt, and each SMS's time from its call to its receipt. A run
    that lost messages measured nothing, and says so."""
    got = [number for number in called if number in seen]
    if len(got) < len(called):
        raise RuntimeError(f"only {len(got)} of {len(called)} messages arrived")
    last = max(seen[number] for number in got)
    latencies = [seen[number] - called[number] for number in got]
    return {
        "sent": len(got),
        "seconds": last - first_call,
        "throughput": len(got) / (last - first_call),
        "api_seconds": accepted - first_call,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
    }
