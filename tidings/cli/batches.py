"""A push file read as it is sent: one line at a time, into batches of subscriber ids, never the whole file in
memory; and the ``Idempotency-Key`` of each batch, derived from what it sends so that sending it again (a rerun
after Ctrl-C or a crash) is answered with the first answer instead of pushing twice.

CSV: the first column of each line is a subscriber id; a first line ``id`` or ``subscriber_id`` is a header.
JSONL: each line a JSON string (an id) or an object with ``id`` and the rest of a subscriber, PUT before the
batch's message goes. One record a line (a quoted CSV field cannot hold a line break here).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tidings.cli.output import UsageError
from tidings.cli.subscribers import fields

SUBSCRIBER_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
"""API.md's subscriber id: checked here so that a bad line is named by its number, not refused with its batch."""
HEADERS = frozenset({"id", "subscriber_id"})
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})


@dataclass(frozen=True, slots=True)
class Position:
    offset: int = 0
    """Bytes from the start of the file."""
    line: int = 1
    """The number of the line that starts there."""


@dataclass(frozen=True, slots=True)
class Record:
    line: int
    id: str
    subscriber: dict[str, Any] | None = None
    """A JSONL object's fields (``id`` removed): the subscriber to PUT."""


@dataclass(slots=True)
class Batch:
    index: int
    start: Position
    end: Position = field(default_factory=Position)
    records: list[Record] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [record.id for record in self.records]

    @property
    def lines(self) -> str:
        return f"lines {self.records[0].line}-{self.records[-1].line}" if self.records else f"line {self.start.line}"

    @property
    def size(self) -> int:
        """Its bytes in the file."""
        return self.end.offset - self.start.offset


def file_format(path: Path, given: str | None) -> str:
    return given or ("jsonl" if path.suffix.lower() in JSONL_SUFFIXES else "csv")


def open_file(path: Path) -> IO[bytes]:
    """The file, opened to read; one that cannot be is a usage error (exit status 2)."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise UsageError(f"--file: cannot read {path}: {exc.strerror or exc}") from None
    if not path.is_file():
        handle.close()
        raise UsageError(f"--file: {path} is not a regular file")
    return handle


def batches(handle: IO[bytes], kind: str, size: int, start: Position, first_index: int) -> Iterator[Batch]:
    """Batches of at most ``size`` records from ``start``, numbered from ``first_index``, read as they are asked
    for. A line that holds no subscriber id is a ``UsageError`` naming it."""
    handle.seek(start.offset)
    offset, number = start.offset, start.line
    batch = Batch(first_index, start)
    for raw in handle:
        line, offset, number = number, offset + len(raw), number + 1
        record = _record(raw, line, kind, first=line == 1)
        if record is None:
            continue
        batch.records.append(record)
        if len(batch.records) == size:
            batch.end = Position(offset, number)
            yield batch
            batch = Batch(batch.index + 1, batch.end)
    if batch.records:
        batch.end = Position(offset, number)
        yield batch


def _record(raw: bytes, line: int, kind: str, first: bool) -> Record | None:
    try:
        text = raw.decode("utf-8-sig" if first else "utf-8").strip()
    except UnicodeDecodeError:
        raise UsageError(f"--file, line {line}: not UTF-8 text") from None
    if not text:
        return None
    if kind == "csv":
        value = next(csv.reader([text]), [""])[0].strip() if '"' in text else text.split(",", 1)[0].strip()
        if first and value.lower() in HEADERS:
            return None
        return Record(line, _checked(value, line))
    try:
        item = json.loads(text)
    except ValueError:
        raise UsageError(f"--file, line {line}: not JSON (a JSONL line is an id in quotes or an object)") from None
    if isinstance(item, str):
        return Record(line, _checked(item, line))
    if isinstance(item, dict) and isinstance(item.get("id"), str):
        subscriber = {name: value for name, value in item.items() if name != "id"}
        return Record(line, _checked(item["id"], line), fields(subscriber, f"--file, line {line}"))
    raise UsageError(f'--file, line {line}: a JSONL line is an id ("u1") or a subscriber ({{"id": "u1", ...}})')


def _checked(value: str, line: int) -> str:
    if not SUBSCRIBER_ID.match(value):
        raise UsageError(f"--file, line {line}: {value[:140]!r} is not a subscriber id ([A-Za-z0-9._:-], 1-128)")
    return value


def run_fingerprint(path: Path, message: dict[str, Any], size: int) -> str:
    """What makes two runs the same push: the file (its full path), the message and the batch size. The same
    command run again has the same fingerprint, and so the same keys, batch for batch."""
    same = {"file": str(path.resolve()), "message": message, "batch": size}
    return hashlib.sha256(json.dumps(same, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def batch_key(run: str, batch: Batch) -> str:
    """The batch's ``Idempotency-Key``: the run, the batch's number and its ids (the server keeps it ≥ 24 h)."""
    digest = hashlib.sha256(f"{run}\n{batch.index}\n".encode())
    for record in batch.records:
        digest.update(record.id.encode())
        digest.update(b"\n")
    return f"tidings-push-{digest.hexdigest()}"
