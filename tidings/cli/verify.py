"""``tidings verify``: send a code, check one, read, cancel and list verifications."""

from __future__ import annotations

import argparse

from tidings.cli.context import Context, command, listing, page_size
from tidings.cli.output import OK, REFUSED, UsageError
from tidings.client import Verification

SHOWN = ("id", "to", "channel", "status", "send_count", "attempts_left", "expires_at", "created_at", "updated_at")
LISTED = ("id", "to", "channel", "status", "send_count", "created_at")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    group = command(commands, "verify", common, "send and check one-time codes")
    verbs = group.add_subparsers(dest="verb", required=True, metavar="{send,check,get,cancel,list}")

    send = command(
        verbs,
        "send",
        common,
        "send a code",
        _send,
        "Send a code to a phone number (or an address, with --channel email). A second send to the same address "
        "while one is pending sends the same code again.",
    )
    send.add_argument("to", help="E.164 phone number, or an email address with --channel email")
    send.add_argument("--channel", choices=("sms", "email"), help="default: sms")
    send.add_argument("--locale", help="the text's language, e.g. zh-CN")
    send.add_argument("--code-length", type=int, metavar="N", help="4 to 10 digits")
    send.add_argument("--template", help="the name of a template of the settings ([verify] templates)")
    send.add_argument("--app-name", help="the name the text gives")

    check = command(
        verbs,
        "check",
        common,
        "check a code",
        _check,
        "Check the code a person typed, by their address (`check TO CODE`) or by verification id "
        "(`check --id ID CODE`). Exit status 0: approved; 1: a wrong code (or no verification to check).",
    )
    check.add_argument("to", metavar="TO", help="the address the code was sent to (with --id: the code)")
    check.add_argument("code", nargs="?", metavar="CODE", help="the code the person typed")
    check.add_argument("--id", help="the verification's id, instead of its address")

    get = command(verbs, "get", common, "show a verification", _get)
    get.add_argument("id")
    cancel = command(verbs, "cancel", common, "cancel a pending verification", _cancel)
    cancel.add_argument("id")

    listing = command(verbs, "list", common, "list verifications, newest first (--json: one per line)", _list)
    listing.add_argument(
        "--status", choices=("pending", "approved", "canceled", "expired", "max_attempts_reached", "failed")
    )
    listing.add_argument("--to", help="only those sent to this address")
    listing.add_argument("--limit", type=int, default=50, metavar="N", help="at most N (default 50; 0: all)")


async def _send(args: argparse.Namespace, context: Context) -> int:
    async with context.client() as client:
        verification = await client.verifications.start(
            args.to,
            args.channel,
            locale=args.locale,
            code_length=args.code_length,
            template=args.template,
            app_name=args.app_name,
        )
    return _show(context, "Code sent", verification)


async def _check(args: argparse.Namespace, context: Context) -> int:
    if args.id is not None:
        if args.code is not None:
            raise UsageError("verify check --id ID CODE: give the code alone after the id")
        to, code = None, args.to
    elif args.code is not None:
        to, code = args.to, args.code
    else:
        raise UsageError("verify check TO CODE (or --id ID CODE)")
    async with context.client() as client:
        check = await client.verifications.check(code=code, to=to, id=args.id)
    if context.out.as_json:
        context.out.document(check.raw)
    elif check.valid:
        context.out.say(f"approved: {check.id}")
    else:
        left = "" if check.attempts_left is None else f": {check.attempts_left} attempts left"
        context.out.say(f"wrong code{left} ({check.id}, {check.status})")
    return OK if check.valid else REFUSED


async def _get(args: argparse.Namespace, context: Context) -> int:
    async with context.client() as client:
        verification = await client.verifications.get(args.id)
    return _show(context, "Verification", verification)


async def _cancel(args: argparse.Namespace, context: Context) -> int:
    async with context.client() as client:
        verification = await client.verifications.cancel(args.id)
    return _show(context, "Canceled", verification)


async def _list(args: argparse.Namespace, context: Context) -> int:
    async with context.client() as client:
        items = client.verifications.list(status=args.status, to=args.to, limit=page_size(args.limit))
        await listing(context, "Verifications", LISTED, items, args.limit)
    return OK


def _show(context: Context, title: str, verification: Verification) -> int:
    if context.out.as_json:
        context.out.document(verification.raw)
    else:
        context.out.record(title, verification.raw, SHOWN)
    return OK
