"""What every API command is given: where tidings is, the key, and how to print; and the one place that turns what
a command raised into an exit status (0 ok, 1 refused, 2 usage, 130 interrupted)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from tidings.cli.output import INTERRUPTED, USAGE, Output, UsageError, refused
from tidings.client import Client, TidingsError


@dataclass
class Context:
    url: str | None
    """``--url``; None: ``TIDINGS_URL``, else the default, as the client decides."""
    key: str | None
    """``--key``; None: ``TIDINGS_API_KEY``."""
    out: Output

    def client(self, *, max_retries: int = 0, max_wait: float = 2.0) -> Client:
        """A one-shot command does not retry: a person at a terminal would rather hear "retry after 30 s" or "is
        tidings running?" at once than wait for it (the client retries a 429 even when it asks for longer than
        ``max_wait``); ``push`` asks for patience."""
        return Client(self.url, self.key, max_retries=max_retries, max_wait=max_wait)

    @property
    def base_url(self) -> str:
        return Client(self.url, self.key).base_url


Handler = Callable[[argparse.Namespace, Context], Coroutine[Any, Any, int]]
T = TypeVar("T")


def execute(handler: Handler, args: argparse.Namespace) -> int:
    """Run one command's coroutine; what it raises becomes a message and an exit status, never a traceback."""
    context = Context(getattr(args, "url", None), getattr(args, "key", None), Output(getattr(args, "json", False)))
    try:
        return asyncio.run(handler(args, context))
    except UsageError as exc:
        print(f"tidings: {exc}", file=sys.stderr)
        return USAGE
    except TidingsError as exc:
        return refused(exc, context.base_url, context.out)
    except KeyboardInterrupt:
        status: int = getattr(args, "interrupted", INTERRUPTED)
        return status
    except BrokenPipeError:  # `tidings tail x | head`: the reader left; nothing more to say to it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def common_options() -> argparse.ArgumentParser:
    """``--url``, ``--key`` and ``--json``, taken before the command or after it (``tidings --json verify get X``
    and ``tidings verify get X --json`` alike): left unset where not given, so the one given anywhere holds."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url", default=argparse.SUPPRESS, help="where tidings answers (else TIDINGS_URL, else http://127.0.0.1:8000)"
    )
    common.add_argument("--key", default=argparse.SUPPRESS, help="the API key (else TIDINGS_API_KEY)")
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the API's JSON answer, one document (lists and streams: one JSON object per line)",
    )
    return common


def command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    common: argparse.ArgumentParser,
    help: str,
    handler: Handler | None = None,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A subcommand that takes the common options and runs ``handler``."""
    parser = commands.add_parser(name, parents=[common], help=help, description=description or help)
    if handler is not None:
        parser.set_defaults(handler=handler)
    return parser


def page_size(limit: int) -> int | None:
    """What to ask per page for at most ``limit`` items (0: every item)."""
    return min(limit, 100) if limit > 0 else None


async def first(items: AsyncIterator[T], limit: int) -> AsyncIterator[T]:
    """At most ``limit`` of ``items`` (0: all), without asking for pages beyond them."""
    count = 0
    async with contextlib.aclosing(items):  # type: ignore[type-var]
        async for item in items:
            yield item
            count += 1
            if limit and count >= limit:
                return


class Answer(Protocol):
    @property
    def raw(self) -> dict[str, Any]: ...


async def listing(
    context: Context, title: str, columns: Sequence[str], items: AsyncIterator[Answer], limit: int
) -> int:
    """A list: with ``--json`` one object per line as the pages come, else a table once all are in."""
    if context.out.as_json:
        count = 0
        async for item in first(items, limit):
            context.out.document(item.raw)
            count += 1
        return count
    return context.out.table(title, columns, [item.raw async for item in first(items, limit)])


def json_object(text: str) -> dict[str, Any]:
    """A JSON object, as an argparse type: anything else is a usage error (exit status 2)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("a JSON object is needed ({...})")
    return value


def comma_list(text: str) -> list[str]:
    """``a,b`` as an argparse type: the names, blanks dropped."""
    return [name.strip() for name in text.split(",") if name.strip()]
