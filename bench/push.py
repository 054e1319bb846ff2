"""Push: one message to N webhooks and to N live streams, side by side with a hand-written sender.

    python bench/push.py --webhooks 1000 --streams 1000        # a quick look
    python bench/push.py                                       # 10,000 webhooks, 20,000 streams
    python bench/push.py --webhooks 0 --streams 20000 --ws-share 0.5

Webhooks (``--webhooks N``): N subscribers, each with a webhook on one local receiver
(``python -m tidings.testing webhooks``, answering after ``--latency``); all three paths send the same signed JSON
to the same N URLs with the same bound C on requests in flight (tidings: ``[webhooks] concurrency`` and
``per_host_concurrency``):

- tidings (whole path): ``POST /v1/messages`` to the topic, until the receiver has had all N deliveries;
- pooled gather: one ``aiohttp.ClientSession``, ``gather`` bounded by a semaphore of C, each request signed with
  ``standardwebhooks`` as tidings signs it: the practical limit of a hand-written fan-out;
- one after another: one session, each delivery awaited in turn, timed on a sample and extrapolated to N.

Streams (``--streams N``): N subscribers on one tidings process hold a live stream open (SSE, and WebSocket for
``--ws-share`` of them) from client processes of at most ``--per-client`` connections each
(``bench/streamclients.py``, bare asyncio protocols). It reads the server's RSS before and after they connect
(memory per connection), then sends one message to the topic and times it from the ``POST`` to its arrival on every
connection. N is cut to what the server's open-file limit leaves room for, when that limit cannot be raised.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from standardwebhooks import Webhook

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import KEY, PYTHON, connector, free_port, percentile, process, raise_open_files, serve_tidings

HERE = Path(__file__).resolve().parent
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = "Your parcel has left the depot and arrives today between 14:00 and 16:00."
AUTH = {"Authorization": f"Bearer {KEY}"}
FD_MARGIN = 64
"""Open files the server keeps free for what comes after the streams: the API call, SQLite's journal."""


def raise_files_for(connections: int) -> int:
    """Raise the soft and hard open-file limits (root may raise the hard one); children started afterwards inherit
    them, the tidings server through ``common.process`` as well. Returns the soft limit reached."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    wanted = connections * 2 + 1000
    if wanted > hard:
        with contextlib.suppress(ValueError, OSError):  # not root: the hard limit stays as it is
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
    return raise_open_files(wanted)


def webhook_receiver(latency: float):
    port = free_port()
    args = [PYTHON, "-m", "tidings.testing", "webhooks", "--port", str(port), "--latency", str(latency)]
    return process(args, ready_url=f"http://127.0.0.1:{port}/_receiver/count"), f"http://127.0.0.1:{port}"


async def put_subscribers(api: str, bodies: dict[str, dict], concurrency: int = 64) -> None:
    """Set up, not timed: the subscribers, a bounded number of PUTs at a time."""
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(api, connector=connector(), headers=AUTH) as session:

        async def put(subscriber_id: str, body: dict) -> None:
            async with gate, session.put(f"/v1/subscribers/{subscriber_id}", json=body) as answer:
                if answer.status not in (200, 201):
                    raise RuntimeError(f"PUT {subscriber_id}: {answer.status} {await answer.text()}")

        await asyncio.gather(*(put(subscriber_id, body) for subscriber_id, body in bodies.items()))


def open_files(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


# Webhooks


def hook_ids(n: int) -> list[str]:
    return [f"w{i:06d}" for i in range(n)]


async def receiver_count(session: aiohttp.ClientSession, hooks: str) -> int:
    async with session.get(f"{hooks}/_receiver/count") as answer:
        return (await answer.json())["received"]


async def tidings_webhooks(api: str, hooks: str, n: int, timeout: float) -> dict:
    """One message to the topic; done when the receiver has N more requests than before. The receiver's count is
    read every 20 ms, so the times below are good to about that."""
    async with aiohttp.ClientSession(connector=connector(), headers=AUTH) as session:
        before = await receiver_count(session, hooks)
        message = {"topic": "all", "body": BODY, "channels": ["webhook"]}
        started = time.time()
        async with session.post(f"{api}/v1/messages", json=message) as answer:
            sent = await answer.json()
            if answer.status != 202 or sent["recipients"] != n:
                raise RuntimeError(f"POST /v1/messages: {answer.status} {sent}")
        accepted = time.time() - started
        marks: list[tuple[float, int]] = []
        deadline = time.monotonic() + timeout
        while (not marks or marks[-1][1] < n) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            got = await receiver_count(session, hooks) - before
            marks.append((time.time() - started, got))
        elapsed, got = marks[-1]
        async with session.get(f"{api}/v1/messages/{sent['id']}") as answer:
            counts = (await answer.json())["counts"]

    def share_at(q: float) -> float:
        return next((t for t, count in marks if count >= q * n), float("nan"))

    return {
        "received": got,
        "seconds": elapsed,
        "throughput": got / elapsed,
        "accepted_seconds": accepted,
        "p50_seconds": share_at(0.5),
        "p99_seconds": share_at(0.99),
        "counts_when_received": counts,
    }


def event_body(message_id: str, subscriber_id: str, created_at: str) -> bytes:
    """The JSON a tidings webhook carries (``Message.event()`` and the subscriber), encoded the same compact way."""
    event = {
        "id": message_id,
        "title": None,
        "body": BODY,
        "data": None,
        "priority": "normal",
        "topic": "all",
        "created_at": created_at,
        "subscriber_id": subscriber_id,
    }
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


async def deliver(session: aiohttp.ClientSession, hooks: str, subscriber_id: str, n: int, created_at: str) -> None:
    """One signed delivery, built and signed per request as tidings does (the key is decoded for each one too)."""
    message_id = "msg_bench"
    delivery_id = f"dlv_bench.{n}"
    body = event_body(message_id, subscriber_id, created_at)
    timestamp = int(time.time())
    signature = Webhook(SECRET).sign(delivery_id, dt.datetime.fromtimestamp(timestamp, dt.UTC), body.decode())
    headers = {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
        "Content-Type": "application/json",
        "User-Agent": "bench",
    }
    async with session.post(f"{hooks}/hook/{subscriber_id}", data=body, headers=headers) as answer:
        await answer.read()
        if not 200 <= answer.status < 300:
            raise RuntimeError(f"receiver answered {answer.status}")


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def pooled(hooks: str, ids: list[str], concurrency: int) -> dict:
    gate = asyncio.Semaphore(concurrency)
    created_at = now_rfc3339()
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector()) as session:

        async def bounded(n: int, subscriber_id: str) -> None:
            async with gate:
                await deliver(session, hooks, subscriber_id, n, created_at)

        await asyncio.gather(*(bounded(n, subscriber_id) for n, subscriber_id in enumerate(ids)))
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "throughput": len(ids) / elapsed}


async def one_after_another(hooks: str, ids: list[str]) -> dict:
    created_at = now_rfc3339()
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector()) as session:
        for n, subscriber_id in enumerate(ids):
            await deliver(session, hooks, subscriber_id, n, created_at)
    elapsed = time.perf_counter() - started
    return {"sample": len(ids), "seconds": elapsed, "throughput": len(ids) / elapsed}


async def webhooks_part(folder: Path, n: int, concurrency: int, latency: float, sample: int, timeout: float) -> dict:
    ids = hook_ids(n)
    result: dict = {"n": n, "concurrency": concurrency, "latency": latency}
    running, hooks = webhook_receiver(latency)
    with running:
        config = (
            f"[webhooks]\nallow_private_networks = true\nconcurrency = {concurrency}\n"
            f"per_host_concurrency = {concurrency}\n"
        )
        serving, api = serve_tidings(folder, config)
        with serving:
            started = time.perf_counter()
            channel = {"type": "webhook", "secret": SECRET}
            bodies = {i: {"channels": [{**channel, "url": f"{hooks}/hook/{i}"}], "topics": ["all"]} for i in ids}
            await put_subscribers(api, bodies)
            result["setup_seconds"] = time.perf_counter() - started
            result["tidings"] = await tidings_webhooks(api, hooks, n, timeout)
        result["pooled"] = await pooled(hooks, ids, concurrency)
        result["one_after_another"] = await one_after_another(hooks, ids[:sample])
    return result


# Streams


async def start_clients(api: str, kind: str, first: int, count: int, concurrency: int, timeout: float):
    args = [PYTHON, str(HERE / "streamclients.py"), "--url", api, "--key", KEY, "--kind", kind]
    args += ["--first", str(first), "--count", str(count), "--concurrency", str(concurrency)]
    args += ["--timeout", str(timeout)]
    return await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**26
    )


async def line_from(client: asyncio.subprocess.Process, timeout: float) -> dict:
    line = await asyncio.wait_for(client.stdout.readline(), timeout)
    if not line:
        raise RuntimeError(f"stream client exited with {await client.wait()}")
    return json.loads(line)


async def streams_part(
    folder: Path, n: int, ws_share: float, concurrency: int, per_client: int, timeout: float
) -> dict:
    """Connect the SSE share, then the WebSocket share (RSS read after each), then one message to all of them.

    A process cannot hold more connections than its open-file limit: where that limit cannot be raised far enough
    (no CAP_SYS_RESOURCE, as in many containers), N is cut to what the server has room for, and the report says so.
    """
    limit = raise_files_for(n)
    result: dict = {"asked": n, "open_files_limit": limit}
    # The server's own cap keeps 256 files for the API; here the bench keeps its margin itself.
    serving, api = serve_tidings(folder, f"[streams]\nmax_connections = {n}")
    clients: list[asyncio.subprocess.Process] = []
    with serving as server:
        room = limit - open_files(server.pid) - FD_MARGIN
        n = result["n"] = min(n, room)
        ws = round(n * ws_share)
        groups = [(kind, first, count) for kind, first, count in (("sse", 0, n - ws), ("ws", n - ws, ws)) if count]
        started = time.perf_counter()
        await put_subscribers(api, {f"s{i:06d}": {"topics": ["live"]} for i in range(n)})
        result["setup_seconds"] = time.perf_counter() - started
        await asyncio.sleep(1)
        result["rss_kb"] = {"idle": rss_kb(server.pid)}
        result["connected"] = {}
        try:
            for kind, first, count in groups:
                shares = [
                    (start, min(per_client, first + count - start)) for start in range(first, first + count, per_client)
                ]
                started_now = [
                    await start_clients(api, kind, start, size, concurrency, timeout) for start, size in shares
                ]
                clients += started_now
                opened = await asyncio.gather(*(line_from(client, timeout + 30) for client in started_now))
                failures: collections.Counter[str] = collections.Counter()
                for report in opened:
                    failures.update(report["failures"])
                result["connected"][kind] = {
                    "connected": sum(report["connected"] for report in opened),
                    "failures": dict(failures),
                    "connect_seconds": max(report["connect_seconds"] for report in opened),
                    "client_processes": len(opened),
                }
                await asyncio.sleep(2)  # idle: what each connection holds once its handshake's garbage is gone
                result["rss_kb"][f"with_{kind}"] = rss_kb(server.pid)
            async with aiohttp.ClientSession(connector=connector(), headers=AUTH) as session:
                message = {"topic": "live", "body": "x", "channels": ["stream"]}
                sent_at = time.time()
                async with session.post(f"{api}/v1/messages", json=message) as answer:
                    sent = await answer.json()
                    if answer.status != 202:
                        raise RuntimeError(f"POST /v1/messages: {answer.status} {sent}")
                result["accepted_seconds"] = time.time() - sent_at
                reports = await asyncio.gather(*(line_from(client, 60) for client in clients))
        finally:
            for client in clients:
                if client.returncode is None:
                    client.stdin.write(b"stop\n")
                    client.stdin.close()
                    try:
                        await asyncio.wait_for(client.wait(), 30)
                    except TimeoutError:
                        client.kill()
                        await client.wait()
        result["rss_kb"]["after_message"] = rss_kb(server.pid)
    latencies = [at - sent_at for report in reports for at in report["received"]]
    result["sent_at"] = sent_at  # epoch seconds, to line up with the server's own logs
    result["recipients"] = sent["recipients"]
    result["received"] = len(latencies)
    result["lost"] = sum(report["lost"] for report in reports)
    result["p50_seconds"] = percentile(latencies, 50)
    result["p99_seconds"] = percentile(latencies, 99)
    result["first_seconds"] = min(latencies, default=float("nan"))
    result["last_seconds"] = max(latencies, default=float("nan"))
    result["client_max_rss_kb"] = max(report["client_max_rss_kb"] for report in reports)
    rss, before = result["rss_kb"], result["rss_kb"]["idle"]
    connected = 0
    for kind, _, _ in groups:
        count = result["connected"][kind]["connected"]
        connected += count
        result[f"kb_per_{kind}"] = (rss[f"with_{kind}"] - before) / max(count, 1)
        before = rss[f"with_{kind}"]
    result["connected_total"] = connected
    result["kb_per_connection"] = (before - rss["idle"]) / max(connected, 1)
    return result


# Report


def report(r: dict) -> None:
    print(json.dumps(r, indent=2, default=float))
    if "webhooks" in r:
        w = r["webhooks"]
        n, t, pooled_rate = w["n"], w["tidings"], w["pooled"]["throughput"]
        print(
            f"\nWebhooks: one message to N = {n:,} subscribers on one local receiver answering after "
            f"{w['latency'] * 1000:g} ms, C = {w['concurrency']}"
        )
        print(f"{'path':<24}{'per second':>12}{'vs pooled':>11}{'time for N':>13}")
        alone = w["one_after_another"]
        rows = [
            ("tidings (whole path)", t["throughput"], ""),
            ("pooled gather", pooled_rate, ""),
            ("one after another", alone["throughput"], f"  (timed on {alone['sample']}, extrapolated)"),
        ]
        for name, rate, note in rows:
            print(f"{name:<24}{rate:>12,.0f}{rate / pooled_rate:>10.0%}{n / rate:>12.2f}s{note}")
        ratio = t["throughput"] / pooled_rate
        print(
            f"target: tidings >= 50% of pooled: {ratio:.0%}, {'reached' if ratio >= 0.5 else 'not reached'}; "
            f"{t['received']:,} received"
        )
        print(
            f"tidings: POST answered in {t['accepted_seconds'] * 1000:.0f} ms; from the POST, half the deliveries "
            f"had arrived at {t['p50_seconds']:.2f} s, 99% at {t['p99_seconds']:.2f} s, all at {t['seconds']:.2f} s"
        )
    if "streams" in r:
        s = r["streams"]
        print(f"\nStreams: one message to N = {s['n']:,} live connections on one tidings process")
        if s["n"] < s["asked"]:
            print(
                f"({s['asked']:,} asked: the open-file limit is {s['open_files_limit']:,} and could not be raised, "
                f"so the server has room for {s['n']:,})"
            )
        for kind, opened in s["connected"].items():
            failed = f", failed: {opened['failures']}" if opened["failures"] else ""
            print(
                f"{kind:<4}: {opened['connected']:,} connected in {opened['connect_seconds']:.1f} s from "
                f"{opened['client_processes']} client process(es){failed}; server memory "
                f"{s[f'kb_per_{kind}']:.1f} KB per connection"
            )
        rss = s["rss_kb"]
        kb = s["kb_per_connection"]
        connected = next(value for name, value in reversed(rss.items()) if name.startswith("with_"))
        print(
            f"server RSS {rss['idle'] / 1024:.0f} MB idle -> {connected / 1024:.0f} MB connected: "
            f"{kb:.1f} KB per connection (target <= 20 KB: {'reached' if kb <= 20 else 'not reached'})"
        )
        last, accepted = s["last_seconds"], s["accepted_seconds"]
        print(
            f"POST -> event on every client: p50 {s['p50_seconds']:.2f} s, p99 {s['p99_seconds']:.2f} s, last "
            f"{last:.2f} s (target <= 1 s: {'reached' if last <= 1 else 'not reached'})"
        )
        print(
            f"  POST -> 202 {accepted:.2f} s, 202 -> first client {s['first_seconds'] - accepted:.2f} s, "
            f"first -> last client {last - s['first_seconds']:.2f} s"
        )
        print(f"{s['received']:,} of {s['connected_total']:,} received, {s['lost']} lost")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--webhooks", type=int, default=10_000, help="webhook subscribers (0 skips the part)")
    parser.add_argument("--concurrency", type=int, default=256, help="webhook requests in flight, every path")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds the receiver takes to answer")
    parser.add_argument("--sample", type=int, default=500, help="deliveries timed one after another")
    parser.add_argument("--streams", type=int, default=20_000, help="live connections (0 skips the part)")
    parser.add_argument("--ws-share", type=float, default=0.0, help="share of the streams opened as WebSocket")
    parser.add_argument("--connect-concurrency", type=int, default=200, help="stream handshakes in flight")
    parser.add_argument("--per-client", type=int, default=10_000, help="streams held by one client process")
    parser.add_argument("--timeout", type=float, default=180, help="seconds each phase may take, at most")
    args = parser.parse_args()
    if not 0 <= args.ws_share <= 1:
        parser.error("--ws-share is a share between 0 and 1")
    raise_files_for(max(args.streams, args.concurrency))
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.webhooks:
            # one after another takes sample x latency: keep it to about ten seconds
            sample = min(args.sample, args.webhooks, max(10, int(10 / args.latency)) if args.latency else args.sample)
            results["webhooks"] = await webhooks_part(
                folder, args.webhooks, args.concurrency, args.latency, sample, args.timeout
            )
        if args.streams:
            results["streams"] = await streams_part(
                folder, args.streams, args.ws_share, args.connect_concurrency, args.per_client, args.timeout
            )
    report(results)


if __name__ == "__main__":
    asyncio.run(main())
