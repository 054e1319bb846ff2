"""``tidings subscribers``: create or replace, read, delete and list subscribers; a token for one's live stream."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tidings.cli.context import Context, comma_list, command, json_object, listing, page_size
from tidings.cli.output import OK, UsageError

FIELDS = ("name", "locale", "phone", "email", "channels", "topics")
"""What ``PUT /v1/subscribers/{id}`` takes (the client's ``subscribers.put`` arguments)."""
SHOWN = ("id", "name", "locale", "phone", "email", "topics", "channels", "created_at", "updated_at")
LISTED = ("id", "name", "phone", "email", "topics", "updated_at")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    group = command(commands, "subscribers", common, "create, read, delete and list subscribers")
    verbs = group.add_subparsers(dest="verb", required=True, metavar="{put,get,delete,list,token}")

    put = command(
        verbs,
        "put",
        common,
        "create or replace a subscriber",
        _put,
        "Create or replace a subscriber: what is not given is not kept. The fields come from --body (or "
        "--body-file), as the API's PUT body, then the options over them.",
    )
    put.add_argument("id", help="the subscriber's id, your own ([A-Za-z0-9._:-], up to 128)")
    put.add_argument("--name")
    put.add_argument("--locale")
    put.add_argument("--phone", help="E.164, for the sms channel")
    put.add_argument("--email", help="for the email channel")
    put.add_argument("--topics", type=comma_list, metavar="A,B", help="the topics it follows, comma-separated")
    put.add_argument(
        "--channel-json",
        action="append",
        type=json_object,
        metavar="JSON",
        help='one channel, as the API takes it: \'{"type": "webhook", "url": "https://..."}\' (repeat for more)',
    )
    source = put.add_mutually_exclusive_group()
    source.add_argument("--body", type=json_object, metavar="JSON", help="the whole PUT body")
    source.add_argument("--body-file", type=Path, metavar="PATH", help="a file holding the whole PUT body")

    get = command(verbs, "get", common, "show a subscriber", _get)
    get.add_argument("id")
    delete = command(verbs, "delete", common, "delete a subscriber", _delete)
    delete.add_argument("id")
    listed = command(verbs, "list", common, "list subscribers, newest first (--json: one per line)", _list)
    listed.add_argument("--topic", help="only those following this topic")
    listed.add_argument("--limit", type=int, default=50, metavar="N", help="at most N (default 50; 0: all)")
    token = command(
        verbs, "token", common, "a short-lived token that opens this subscriber's live stream alone", _token
    )
    token.add_argument("id")
    token.add_argument("--ttl", type=int, metavar="SECONDS", help="how long it is good for")


def fields(body: dict[str, Any], where: str) -> dict[str, Any]:
    """``body`` as ``subscribers.put`` arguments; a field the API does not take is a usage error here, named with
    ``where`` it came from, rather than a request refused."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise UsageError(f"{where}: `{unknown[0]}` is not a subscriber field (they are {', '.join(FIELDS)})")
    return body


async def _put(args: argparse.Namespace, context: Context) -> int:
    body = dict(args.body or {})
    if args.body_file is not None:
        body = _read_body(args.body_file)
    if body.pop("id", args.id) != args.id:
        raise UsageError("the body's `id` differs from the id given")
    for name in ("name", "locale", "phone", "email", "topics"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    if args.channel_json:
        body["channels"] = args.channel_json
    async with context.client() as client:
        subscriber = await client.subscribers.put(args.id, **fields(body, "--body"))
    return _show(context, "Subscriber", subscriber.raw)


async def _get(args: argparse.Namespace, context: Context) -> int:
    async with context.client() as client:
        subscriber = await client.subscribers.get(args.id)
    return _show(context, "Subscriber", subscriber.raw)


async def _delete(args: argparse.Namespace, context: Context) -> int:
    async with context.client() as client:
        await client.subscribers.delete(args.id)
    if context.out.as_json:
        context.out.document({"id": args.id, "deleted": True})
    else:
        context.out.say(f"deleted: {args.id}")
    return OK


async def _list(args: argparse.Namespace, context: Context) -> int:
    async with context.client() as client:
        items = client.subscribers.list(topic=args.topic, limit=page_size(args.limit))
        await listing(context, "Subscribers", LISTED, items, args.limit)
    return OK


async def _token(args: argparse.Namespace, context: Context) -> int:
    async with context.client() as client:
        token = await client.subscribers.token(args.id, ttl=args.ttl)
    return _show(context, "Stream token", token.raw)


def _show(context: Context, title: str, raw: dict[str, Any]) -> int:
    if context.out.as_json:
        context.out.document(raw)
    else:
        context.out.record(title, raw, [key for key in (*SHOWN, "token", "subscriber_id", "expires_at") if key in raw])
    return OK


def _read_body(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--body-file: cannot read {path}: {exc}") from None
    try:
        return json_object(text)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"--body-file {path}: {exc}") from None
