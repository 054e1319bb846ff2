"""``tidings keys``: create API keys with scopes (the key is shown once), list and revoke them (admin scope)."""

from __future__ import annotations

import argparse
import sys

from tidings.cli.context import Context, comma_list, command
from tidings.cli.output import OK

SCOPES = ("send", "read", "admin")
LISTED = ("id", "name", "scopes", "created_at")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    group = command(commands, "keys", common, "create, list and revoke API keys (admin scope)")
    verbs = group.add_subparsers(dest="verb", required=True, metavar="{create,list,revoke}")
    create = command(
        verbs,
        "create",
        common,
        "create an API key; the key is printed this once",
        _create,
        "Create an API key. The key itself is printed this once (with --json: the answer's `key`): keep it then.",
    )
    create.add_argument("name", help="what it is for, e.g. backend")
    create.add_argument(
        "--scopes",
        type=_scopes,
        required=True,
        metavar="A,B",
        help="send (start and check codes, send messages), read (read status), admin (everything); comma-separated",
    )
    command(verbs, "list", common, "list API keys (never the keys themselves)", _list)
    revoke = command(verbs, "revoke", common, "revoke an API key, by its id (not the key itself)", _revoke)
    revoke.add_argument("id", help="the key's id: key_...")


async def _create(args: argparse.Namespace, context: Context) -> int:
    async with context.client() as client:
        key = await client.keys.create(args.name, args.scopes)
    if context.out.as_json:
        context.out.document(key.raw)
        return OK
    context.out.say(f"Created API key {key.id} ({key.name}; scopes: {', '.join(key.scopes)}).")
    context.out.say("The key is shown only this once; keep it now:")
    context.out.say("")
    print(f"    {key.key}", flush=True)  # plain, however wide the terminal: a key folded in two is copied wrong
    context.out.say("")
    if sys.stdout.isatty():
        context.out.say("Use it with --key, or: export TIDINGS_API_KEY=<the key>")
    return OK


async def _list(args: argparse.Namespace, context: Context) -> int:
    async with context.client() as client:
        keys = await client.keys.list()
    if context.out.as_json:
        context.out.lines(key.raw for key in keys)
    else:
        context.out.table("API keys", LISTED, [key.raw for key in keys])
    return OK


async def _revoke(args: argparse.Namespace, context: Context) -> int:
    async with context.client() as client:
        await client.keys.revoke(args.id)
    if context.out.as_json:
        context.out.document({"id": args.id, "revoked": True})
    else:
        context.out.say(f"revoked: {args.id}")
    return OK


def _scopes(text: str) -> list[str]:
    scopes = comma_list(text)
    wrong = [scope for scope in scopes if scope not in SCOPES]
    if wrong or not scopes:
        raise argparse.ArgumentTypeError(f"scopes are {', '.join(SCOPES)} (comma-separated), not {text!r}")
    return scopes
