"""Watching a running tidings: ``status`` (nodes, queue depths), ``tail`` (a subscriber's live stream) and
``deliveries`` (failed ones above all)."""

from __future__ import annotations

import argparse
import json

import aiohttp

from tidings.cli.context import Context, command, listing, page_size
from tidings.cli.output import OK, note
from tidings.client import ConnectionFailed, Event

NODES = ("id", "role", "host", "pid", "version", "started_at", "seen_at", "streams", "in_flight")
DELIVERIES = ("message_id", "subscriber_id", "channel", "target", "status", "attempts", "last_error", "updated_at")
PROBE_TIMEOUT = aiohttp.ClientTimeout(total=10)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    command(commands, "status", common, "the backend, the live nodes and the queue depths", _status)

    tail = command(
        commands,
        "tail",
        common,
        "print a subscriber's messages as they arrive (--json: one per line)",
        _tail,
        "Print each message pushed to a subscriber as it arrives, until Ctrl-C (exit status 0). A dropped "
        "connection is opened again, resuming after the last message seen, so none is missed. --key may be an "
        "API key with read scope or the subscriber's own token (`tidings subscribers token`).",
    )
    tail.add_argument("subscriber", help="the subscriber's id")
    tail.add_argument("--since", metavar="ID", help="first the messages after this message id, from the cache")
    tail.set_defaults(interrupted=OK)

    deliveries = command(
        commands,
        "deliveries",
        common,
        "list deliveries, oldest first: --failed for the dead letters (--json: one per line)",
        _deliveries,
    )
    which = deliveries.add_mutually_exclusive_group()
    which.add_argument("--failed", action="store_const", const="failed", dest="status", help="only failed ones")
    which.add_argument("--status", choices=("queued", "delivered", "failed", "expired"))
    deliveries.add_argument("--message", metavar="ID", help="only this message's")
    deliveries.add_argument("--limit", type=int, default=50, metavar="N", help="at most N (default 50; 0: all)")


async def _status(args: argparse.Namespace, context: Context) -> int:
    async with context.client() as client:
        cluster = await client.cluster()
    out = context.out
    if out.as_json:
        out.document(cluster.raw)
        return OK
    out.say(f"backend: {cluster.backend}    queued: {cluster.queued}    nodes: {len(cluster.nodes)}")
    out.table("Nodes", NODES, cluster.nodes)
    out.table("Queues", ("lane", "depth"), [{"lane": lane, "depth": depth} for lane, depth in cluster.queues.items()])
    return OK


async def _tail(args: argparse.Namespace, context: Context) -> int:
    async with context.client() as client:
        await _reachable(client.base_url)
        if not context.out.as_json:
            note(f"listening to {args.subscriber} at {client.base_url} (Ctrl-C to stop)")
        async for event in client.stream(args.subscriber, since=args.since):
            if context.out.as_json:
                context.out.document(event.raw)
            else:
                print(_line(event), flush=True)
    return OK


async def _deliveries(args: argparse.Namespace, context: Context) -> int:
    async with context.client() as client:
        size = page_size(args.limit)
        if args.message is not None:
            items = client.messages.deliveries(args.message, status=args.status, limit=size)
        else:
            items = client.deliveries(status=args.status, limit=size)
        title = "Failed deliveries" if args.status == "failed" else "Deliveries"
        await listing(context, title, DELIVERIES, items, args.limit)
    return OK


async def _reachable(base_url: str) -> None:
    """The stream reconnects for ever, as it should once it ran; a server that is not there at the start is
    said at once instead (``/healthz``: any key, a subscriber's token too, may tail)."""
    try:
        async with aiohttp.ClientSession(timeout=PROBE_TIMEOUT) as session, session.get(f"{base_url}/healthz"):
            return
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ConnectionFailed(f"cannot reach {base_url}: {exc}", code="connection_failed", status=0) from None


def _line(event: Event) -> str:
    """``created_at  id  title: body  {data}``."""
    when = event.created_at.isoformat(timespec="seconds") if event.created_at else ""
    text = ": ".join(part for part in (event.title, event.body) if part)
    data = f"  {json.dumps(event.data, ensure_ascii=False)}" if event.data else ""
    return f"{when}  {event.id}  {text}{data}".replace("\n", " ")  # one line a message, for grep
