"""``tidings push``: one message to subscriber ids, to a topic, or to every id of a CSV or JSONL file.

A file is streamed in messages of ``--batch`` ids, ``--concurrency`` of them in flight, each with an
``Idempotency-Key`` derived from the run and its ids (``batches``): running the same command again after Ctrl-C, a
kill or a crash sends nothing twice, and the progress file (``progress``) lets it start where it stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from pathlib import Path
from typing import IO, Any

from tidings.cli import batches
from tidings.cli.batches import Batch, Position, Record
from tidings.cli.context import Context, comma_list, command, json_object
from tidings.cli.output import INTERRUPTED, OK, UsageError, note, refused
from tidings.cli.progress import Bar, Ledger, ProgressFile, Tally
from tidings.client import Accepted, Client, TidingsError

MAX_BATCH = 10_000
"""The API's limit on ``to``."""
PUTS_IN_FLIGHT = 16
"""Subscribers of a JSONL batch PUT at once."""
MESSAGE = ("title", "body", "data", "channels", "priority", "ttl", "collapse_key", "badge", "sound")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    push = command(
        commands,
        "push",
        common,
        "push a message to ids, a topic, or every id of a CSV/JSONL file",
        _push,
        "Push one message to subscribers: --to ids, a --topic, or every id of a --file, sent in messages of --batch "
        "ids with a progress bar (on a terminal; --json prints one summary instead). CSV: the first column is the "
        "id (a header `id` or `subscriber_id` is skipped). JSONL: a line is an id in quotes, or a subscriber "
        '({"id": ..., "name": ..., "channels": [...]}) that is PUT before its batch is sent. Stopped (Ctrl-C, a '
        "kill, a crash), the same command run again resumes and sends no batch twice: each batch's Idempotency-Key "
        "comes from the file, the message and its ids, and the server keeps them 24 h (so the same push of the "
        "same file within 24 h sends nothing new; change the message to send again).",
    )
    to = push.add_mutually_exclusive_group(required=True)
    to.add_argument("--to", type=comma_list, metavar="U1,U2", help=f"subscriber ids, comma-separated (≤ {MAX_BATCH:,})")
    to.add_argument("--topic", help="every subscriber of this topic")
    to.add_argument("--file", type=Path, metavar="PATH", help="a CSV or JSONL (.jsonl, .ndjson) file of ids")
    push.add_argument("--title")
    push.add_argument("--body")
    push.add_argument("--data", type=json_object, metavar="JSON", help="a JSON object the app gets as it is")
    push.add_argument("--channels", type=comma_list, metavar="A,B", help="e.g. stream,webhook (default: all)")
    push.add_argument("--priority", choices=("low", "normal", "high"))
    push.add_argument("--ttl", type=int, metavar="SECONDS", help="how long it may wait to be delivered")
    push.add_argument("--collapse-key", help="a newer message with the same key replaces this one (mobile)")
    push.add_argument("--badge", type=int, help="the app icon's badge (APNs)")
    push.add_argument("--sound", help="a sound to play (mobile)")
    push.add_argument("--batch", type=_batch_size, default=1000, metavar="N", help="ids a message (default 1000)")
    push.add_argument("--concurrency", type=_positive, default=4, metavar="N", help="messages in flight (default 4)")
    push.add_argument("--format", choices=("csv", "jsonl"), help="of --file (default: from its name)")
    push.add_argument("--restart", action="store_true", help="read the file from its start, ignoring its progress")


async def _push(args: argparse.Namespace, context: Context) -> int:
    message = {name: value for name in MESSAGE if (value := getattr(args, name)) is not None}
    if args.file is not None:
        return await FilePush(args, context, message).run()
    if args.to is not None and not 0 < len(args.to) <= MAX_BATCH:
        raise UsageError(f"--to: 1 to {MAX_BATCH:,} ids (more: put them in a --file)")
    async with context.client(max_retries=3, max_wait=10.0) as client:
        accepted = await client.messages.send(to=args.to, topic=args.topic, **message)
    if context.out.as_json:
        context.out.document(accepted.raw)
    else:
        unknown = f"; no such subscriber: {', '.join(accepted.unknown)}" if accepted.unknown else ""
        context.out.say(f"accepted: {accepted.id}, {accepted.recipients:,} recipients{unknown}")
    return OK


class FilePush:
    """One run over a file: batches read as slots free up, sent, and their answers tallied."""

    def __init__(self, args: argparse.Namespace, context: Context, message: dict[str, Any]) -> None:
        self.args = args
        self.context = context
        self.message = message
        self.path: Path = args.file
        self.in_flight: dict[asyncio.Task[Accepted], Batch] = {}
        self.signal: int | None = None
        self.failure: tuple[Batch, TidingsError] | None = None
        self.unknown: list[str] = []
        """A few of the ids that named no subscriber, to show."""

    async def run(self) -> int:
        handle = batches.open_file(self.path)
        with handle:
            run = batches.run_fingerprint(self.path, self.message, self.args.batch)
            progress = ProgressFile(self.path, run)
            tally = None if self.args.restart else progress.load()
            if tally is not None and (tally.line > 1 or tally.done):
                note(f"resuming at line {tally.line:,}: {tally.ids:,} ids already accepted in {tally.messages:,} "
                     "messages (--restart to read the file from its start)")  # fmt: skip
            tally = tally or Tally()
            resumed_at = tally.line if tally.line > 1 else None
            ledger = Ledger(tally)
            started = time.monotonic()
            kind = batches.file_format(self.path, self.args.format)
            enabled = self.context.out.terminal and not self.context.out.as_json
            bar = Bar(enabled, self.path.stat().st_size, tally)
            async with self.context.client(max_retries=5, max_wait=30.0) as client:
                with bar, _Signals(self):
                    try:
                        await self._send_all(client, handle, kind, run, ledger, progress, bar)
                    finally:
                        await self._drain(ledger, progress, bar)
            return self._report(ledger.snapshot(), progress, resumed_at, time.monotonic() - started)

    async def _send_all(
        self, client: Client, handle: IO[bytes], kind: str, run: str, ledger: Ledger, progress: ProgressFile, bar: Bar
    ) -> None:
        tally = ledger.tally
        start = Position(tally.offset, tally.line)
        for batch in batches.batches(handle, kind, self.args.batch, start, tally.batch):
            if self.signal is not None or self.failure is not None:
                return
            if ledger.read(batch):
                continue
            while len(self.in_flight) >= self.args.concurrency:
                await self._settle_some(ledger, progress, bar)
                if self.signal is not None or self.failure is not None:
                    ledger.forget(batch)
                    return
            key = batches.batch_key(run, batch)
            self.in_flight[asyncio.ensure_future(self._send(client, batch, key))] = batch

    async def _send(self, client: Client, batch: Batch, key: str) -> Accepted:
        subscribers = [record for record in batch.records if record.subscriber is not None]
        if subscribers:
            await _put_all(client, subscribers)
        return await client.messages.send(to=batch.ids, idempotency_key=key, **self.message)

    async def _settle_some(self, ledger: Ledger, progress: ProgressFile, bar: Bar) -> None:
        done, _ = await asyncio.wait(self.in_flight, return_when=asyncio.FIRST_COMPLETED)
        before = ledger.tally.messages
        for task in done:
            batch = self.in_flight.pop(task)
            if task.cancelled():
                continue
            error = task.exception()
            if isinstance(error, TidingsError):
                self.failure = self.failure or (batch, error)
                continue
            if error is not None:
                raise error
            accepted = task.result()
            ledger.accept(batch, accepted.recipients)
            if accepted.unknown and len(self.unknown) < 10:
                self.unknown.extend(accepted.unknown[: 10 - len(self.unknown)])
        if ledger.tally.messages > before:
            progress.save(ledger.snapshot())
            bar.update(ledger.tally)

    async def _drain(self, ledger: Ledger, progress: ProgressFile, bar: Bar) -> None:
        """The batches in flight, finished (or canceled by a second Ctrl-C) and tallied, whatever stopped the run:
        an answer that came is never left out of the progress file."""
        while self.in_flight:
            try:
                await self._settle_some(ledger, progress, bar)
            except asyncio.CancelledError:
                for task in self.in_flight:
                    task.cancel()
                raise

    def _report(self, tally: Tally, progress: ProgressFile, resumed_at: int | None, seconds: float) -> int:
        finished = self.signal is None and self.failure is None
        if finished:
            progress.remove()
        summary = {
            "file": str(self.path), "finished": finished, "messages": tally.messages, "ids": tally.ids,
            "recipients": tally.recipients, "skipped": tally.ids - tally.recipients, "unknown": self.unknown,
            "resumed_at_line": resumed_at, "stopped_at_line": None if finished else tally.line,
            "seconds": round(seconds, 3),
        }  # fmt: skip
        out = self.context.out
        if self.failure is not None:
            batch, error = self.failure
            status = refused(error, self.context.base_url, out)
            note(f"{batch.lines} refused; stopped at line {tally.line:,} ({tally.ids:,} ids accepted): fix it and "
                 "run the same command again to resume")  # fmt: skip
            return status
        if out.as_json:
            out.document(summary)
        else:
            skipped = tally.ids - tally.recipients
            named = f"; {skipped:,} named no subscriber" if skipped else ""
            out.say(f"{'accepted' if finished else 'stopped after'} {tally.ids:,} ids in {tally.messages:,} messages:"
                    f" {tally.recipients:,} recipients{named} ({seconds:.1f} s)")  # fmt: skip
            if self.unknown:
                out.say(f"no such subscriber: {', '.join(self.unknown)}{', ...' if skipped > 10 else ''}")
        if self.signal is not None:
            note(f"interrupted: stopped at line {tally.line:,} of {self.path}; run the same command again to resume")
            return INTERRUPTED if self.signal == signal.SIGINT else 128 + self.signal
        return OK


class _Signals:
    """Ctrl-C (or SIGTERM) once: no new batch, those in flight finish and are recorded; twice: they are canceled
    (their keys still keep them from going twice)."""

    def __init__(self, push: FilePush) -> None:
        self.push = push
        self.loop = asyncio.get_running_loop()

    def __enter__(self) -> _Signals:
        for number in (signal.SIGINT, signal.SIGTERM):
            self.loop.add_signal_handler(number, self._on, number)
        return self

    def __exit__(self, *exc: object) -> None:
        for number in (signal.SIGINT, signal.SIGTERM):
            self.loop.remove_signal_handler(number)

    def _on(self, number: int) -> None:
        if self.push.signal is None:
            self.push.signal = number
            if self.push.in_flight:
                note("stopping once the batches in flight are answered (Ctrl-C again: at once)")
            return
        for task in self.push.in_flight:
            task.cancel()


async def _put_all(client: Client, records: list[Record]) -> None:
    """The batch's subscribers, a few PUTs at a time; the first refusal stops the batch."""
    pending = iter(records)

    async def worker() -> None:
        for record in pending:
            await client.subscribers.put(record.id, **(record.subscriber or {}))

    workers = [asyncio.ensure_future(worker()) for _ in range(min(PUTS_IN_FLIGHT, len(records)))]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()


def _batch_size(text: str) -> int:
    size = _positive(text)
    if size > MAX_BATCH:
        raise argparse.ArgumentTypeError(f"at most {MAX_BATCH:,} (the API's limit on `to`)")
    return size


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return value
