"""Where a push file stands: which batches the server accepted (kept in a small progress file, so a rerun resumes
where the last one stopped) and the progress bar a person watches.

The progress file is a shortcut, not the guarantee: each batch's ``Idempotency-Key`` is what keeps a batch from
being sent twice, even when the file was not written (a ``kill -9`` between an answer and the write). It lives
beside the pushed file (``<file>.tidings-progress``), or under ``$XDG_STATE_HOME/tidings`` when that folder cannot
be written; it is removed once the whole file is accepted.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tidings.cli.batches import Batch, Position
from tidings.cli.output import note

SUFFIX = ".tidings-progress"
VERSION = 1
REFRESHES_PER_SECOND = 4


@dataclass
class Tally:
    """What the progress file keeps: the first batch not yet accepted (all before it are) and where it starts,
    the batches after it that are, and the totals so far."""

    batch: int = 0
    offset: int = 0
    line: int = 1
    done: list[int] = field(default_factory=list)
    ids: int = 0
    recipients: int = 0
    messages: int = 0
    bytes: int = 0
    """Of the file, in accepted batches: how far along the bar is."""


class ProgressFile:
    """One push's progress file; ``run`` (``batches.run_fingerprint``) says which push it is about."""

    def __init__(self, data: Path, run: str) -> None:
        self.data = data
        self.run = run
        stat = data.stat()
        self.identity = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        """A file changed since the progress was written is read from its start (its batches may have moved)."""
        self.beside = data.with_name(data.name + SUFFIX)
        state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "tidings"
        self.elsewhere = state / (hashlib.sha256(str(data.resolve()).encode()).hexdigest()[:32] + SUFFIX)
        self.path = self.beside

    def load(self) -> Tally | None:
        """The tally of this push's last run, or None (with a note why, when there was one of no use)."""
        for path in (self.beside, self.elsewhere):
            try:
                kept = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            self.path = path
            if not isinstance(kept, dict) or kept.get("version") != VERSION or kept.get("run") != self.run:
                note(f"{path} is about another message or --batch: starting at line 1")
                return None
            if kept.get("file") != self.identity:
                note(f"{self.data} changed since {path} was written: starting at line 1")
                return None
            try:
                return Tally(**kept["tally"])
            except (KeyError, TypeError):
                return None
        return None

    def save(self, tally: Tally) -> None:
        """Written whole and renamed over the old one, so that a kill leaves the old or the new, never half."""
        text = json.dumps({"version": VERSION, "run": self.run, "file": self.identity, "tally": asdict(tally)})
        try:
            _replace(self.path, text)
        except OSError:
            if self.path == self.elsewhere:
                raise
            self.path = self.elsewhere
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _replace(self.path, text)

    def remove(self) -> None:
        for path in (self.beside, self.elsewhere):
            path.unlink(missing_ok=True)


def _replace(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


class Ledger:
    """The batches accepted, as they come back in any order (several are in flight), kept as a ``Tally``."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.accepted = set(tally.done)
        self.ends: dict[int, Position] = {}
        """Where each batch read but not yet behind the first unaccepted one ends."""

    def read(self, batch: Batch) -> bool:
        """Note a batch as read; True if an earlier run had it accepted already (then it is not sent again)."""
        self.ends[batch.index] = batch.end
        already = batch.index in self.accepted
        self._advance()
        return already

    def accept(self, batch: Batch, recipients: int) -> None:
        tally = self.tally
        tally.ids += len(batch.records)
        tally.recipients += recipients
        tally.messages += 1
        tally.bytes += batch.size
        self.accepted.add(batch.index)
        self._advance()

    def forget(self, batch: Batch) -> None:
        """A batch that was read but will not be sent in this run."""
        self.ends.pop(batch.index, None)

    def snapshot(self) -> Tally:
        self.tally.done = sorted(self.accepted)
        return self.tally

    def _advance(self) -> None:
        tally = self.tally
        while tally.batch in self.accepted and tally.batch in self.ends:
            end = self.ends.pop(tally.batch)
            self.accepted.discard(tally.batch)
            tally.batch += 1
            tally.offset, tally.line = end.offset, end.line


class Bar:
    """Recipients accepted, their rate, the time spent and the time left (from the share of the file's bytes
    done); redrawn ``REFRESHES_PER_SECOND`` times a second by rich's own thread, so that the time spent moves even
    while a batch is slow. Off (does nothing) for ``--json`` and when stdout is not a terminal."""

    def __init__(self, enabled: bool, total_bytes: int, tally: Tally) -> None:
        self.enabled = enabled
        self.started = time.monotonic()
        self.first_recipients = tally.recipients
        self.progress = Progress(
            TextColumn("[bold]push"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[recipients]:>12,} recipients"),
            TextColumn("{task.fields[rate]:>8,.0f}/s"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=Console(),
            refresh_per_second=REFRESHES_PER_SECOND,
            disable=not enabled,
        )
        self.task = self.progress.add_task(
            "push", total=max(total_bytes, 1), completed=tally.bytes, recipients=tally.recipients, rate=0.0
        )

    def update(self, tally: Tally) -> None:
        if self.enabled:
            rate = (tally.recipients - self.first_recipients) / max(time.monotonic() - self.started, 1e-3)
            self.progress.update(self.task, completed=tally.bytes, recipients=tally.recipients, rate=rate)

    def __enter__(self) -> Bar:
        self.progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.progress.stop()
