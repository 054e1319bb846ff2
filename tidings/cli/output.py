"""What the commands print: readable tables for people, the API's JSON for scripts (``--json``), and an error as
its code, its message and a one-line hint, never a traceback.

Answers go to stdout; notes and errors to stderr, so that ``--json`` output stays one clean document.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from tidings.client import ConnectionFailed, TidingsError

OK = 0
REFUSED = 1
USAGE = 2
INTERRUPTED = 130
"""128 + SIGINT, as shells report a command stopped by Ctrl-C."""
WIDE = 200
"""Columns for tables written to a pipe or a file, where no terminal says its width: ids are not folded."""


class UsageError(Exception):
    """A mistake in what was typed that parsing could not see (bad ``--data`` JSON, an unreadable ``--file``):
    exit status 2, as argparse's own."""


class Output:
    """Where and how a command prints, ``as_json`` or for people."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        terminal = sys.stdout.isatty()
        self.console = Console(highlight=False, soft_wrap=False, width=None if terminal else WIDE)
        self.terminal = terminal

    def document(self, data: Any) -> None:
        """One JSON document (the API's answer), on one line."""
        print(json.dumps(data, ensure_ascii=False, separators=(",", ":")), flush=True)

    def lines(self, items: Iterable[Mapping[str, Any]]) -> int:
        """JSON lines, one object per line, written as they come; returns how many."""
        count = 0
        for item in items:
            self.document(item)
            count += 1
        return count

    def record(self, title: str, data: Mapping[str, Any], keys: Sequence[str] | None = None) -> None:
        """One object as a two-column table: its fields (``keys``, in that order, else all) and their values."""
        table = Table(title=title, show_header=False, title_justify="left", title_style="bold")
        table.add_column(style="dim")
        table.add_column(overflow="fold")
        for key in keys or list(data):
            if key in data:
                table.add_row(key, text(data[key]))
        self.console.print(table)

    def table(self, title: str, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> int:
        """Rows as a table with a column per key of ``columns``; returns how many rows."""
        table = Table(title=title, title_justify="left", title_style="bold")
        for column in columns:
            table.add_column(column, overflow="fold")
        count = 0
        for row in rows:
            table.add_row(*(text(row.get(column)) for column in columns))
            count += 1
        if count:
            self.console.print(table)
        else:
            self.console.print(f"{title}: none", markup=False)
        return count

    def say(self, message: str) -> None:
        """A line for people on stdout (nothing with ``--json``)."""
        if not self.as_json:
            self.console.print(message, markup=False)


def note(message: str) -> None:
    """A remark for people that is not the answer (``resuming at line N``): stderr, with ``--json`` too."""
    print(f"tidings: {message}", file=sys.stderr, flush=True)


def text(value: Any) -> str:
    """A value as a table cell: lists joined, objects as compact JSON, nothing as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ", ".join(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def refused(error: TidingsError, url: str, out: Output) -> int:
    """Say what the API (or the network) refused and what to do about it; the exit status for it (1)."""
    if out.as_json:
        body = dict(error.body) or {"code": error.code, "message": error.message}
        out.document({"error": body})
    status = f" ({error.status})" if error.status else ""
    print(f"tidings: {error.code}{status}: {error.message}", file=sys.stderr)
    advice = hint(error, url)
    if advice:
        print(f"  hint: {advice}", file=sys.stderr)
    return REFUSED


def hint(error: TidingsError, url: str) -> str | None:
    """One line on what to do next, for the errors a person meets at a terminal."""
    if isinstance(error, ConnectionFailed):
        return f"is tidings running at {url}? start it with `tidings serve` (or pass --url / TIDINGS_URL)"
    if error.status == 401:
        return "check --key / TIDINGS_API_KEY"
    if error.status == 403:
        scope = error.body.get("scope")
        if scope:
            return (
                f"this key lacks the `{scope}` scope: use one that has it (`tidings keys create NAME --scopes {scope}`)"
            )
        return "this key lacks the scope this needs: use a key with `send`, `read` or `admin` as the call needs"
    if error.status == 429:
        if error.retry_after is not None:
            return f"retry after {math.ceil(error.retry_after)} s"
        return "a limit was reached: retry later"
    if error.status == 404:
        return NOT_FOUND.get(error.code, "check the id")
    if error.status in (400, 422):
        suggestion = error.body.get("did_you_mean")
        if suggestion:
            return f"did you mean `{suggestion}`?"
        return f"check `{error.field}`" if error.field else None
    if error.status >= 500:
        return "tidings is busy or its store is down: try again shortly (`tidings status` shows the queues)"
    return None


NOT_FOUND = {
    "verification_not_found": "none by that id, or none pending for that address: `tidings verify send` starts one",
    "verification_expired": "its code expired: send a new one with `tidings verify send`",
    "verification_approved": "its code was already used: a code is accepted once",
    "verification_canceled": "it was canceled: send a new one with `tidings verify send`",
    "subscriber_not_found": "`tidings subscribers put ID` creates it; `tidings subscribers list` shows those there are",
    "key_not_found": "revoke by the key's id (key_...), as `tidings keys list` shows it, not by the key itself",
    "message_not_found": "a message id is msg_..., as `tidings push` printed it",
}
