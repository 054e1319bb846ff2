"""Subscribers, messages, their deliveries and the live streams' message cache in SQLite.

A message, every delivery it makes and every job that carries them out are written in one transaction, so a
message is either accepted whole or not at all, and a crash cannot leave a delivery without its job.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator

from pydantic_core import from_json

from tidings.backends.sqlite import paging
from tidings.backends.sqlite.db import Database
from tidings.backends.sqlite.effects import finish_stream
from tidings.backends.sqlite.queue import SqliteQueue, insert_jobs
from tidings.core.outcomes import DeliveryChange
from tidings.core.push import (
    ChannelType,
    Counts,
    Delivery,
    DeliveryStatus,
    Message,
    MessageStatus,
    Subscriber,
)
from tidings.core.records import message_from_record, message_record, subscriber_from_record, subscriber_record
from tidings.core.types import Job
from tidings.ports import DeliveryContext, Fanout, Position

_IN_CHUNK = 500
"""Ids per ``IN (...)`` list: below SQLite's limit on bound parameters."""
_DELIVERY_COLUMNS = (
    "id, message_id, subscriber_id, channel, target, status, attempts, last_error, created_at, updated_at"
)
_HAS = "EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.status IN ({}))"
_QUEUED = _HAS.format(f"'{DeliveryStatus.QUEUED.value}'")
_SETTLED = _HAS.format(", ".join(f"'{s.value}'" for s in DeliveryStatus if s is not DeliveryStatus.QUEUED))
_EXPANDING = "json_extract(m.record, '$.expanding') = 1"
_MESSAGE_STATUS = {
    MessageStatus.DONE: f"NOT {_QUEUED} AND NOT {_EXPANDING}",
    MessageStatus.SENDING: f"{_QUEUED} AND {_SETTLED}",
    MessageStatus.QUEUED: f"(({_QUEUED} AND NOT {_SETTLED}) OR {_EXPANDING})",
}
"""Messages in each status as ``message_status`` derives it, found by index seeks into deliveries_by_message (a
message whose deliveries are not written yet is queued)."""


def _in(connection: sqlite3.Connection, sql: str, ids: list[str], *args: object) -> Iterator[tuple]:
    """Rows of ``sql`` (whose ``{ids}`` is replaced by placeholders for ``ids``, then ``args`` follow) for ids in
    chunks, so that no statement binds more parameters than SQLite allows."""
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        yield from connection.execute(sql.format(ids=", ".join("?" * len(chunk))), [*chunk, *args])


def _subscriber(row: tuple) -> Subscriber:
    """pydantic-core's JSON parser: several times as fast as ``json.loads``, and a topic's fan-out parses one record
    per subscriber."""
    id, record, created_at, updated_at = row
    return subscriber_from_record(id, created_at, updated_at, from_json(record))


def _message(row: tuple) -> Message:
    id, record, created_at, expires_at, recipients = row
    return message_from_record(id, created_at, expires_at, recipients, json.loads(record))


def _delivery(row: tuple) -> Delivery:
    id, message_id, subscriber_id, channel, target, status, *rest = row
    return Delivery(id, message_id, subscriber_id, ChannelType(channel), target, DeliveryStatus(status), *rest)


def _subscribers_by_id(connection: sqlite3.Connection, ids: list[str]) -> dict[str, Subscriber]:
    rows = _in(connection, "SELECT id, record, created_at, updated_at FROM subscribers WHERE id IN ({ids})", ids)
    return {row[0]: _subscriber(row) for row in rows}


def _put_subscriber(connection: sqlite3.Connection, subscriber: Subscriber) -> tuple[Subscriber, bool]:
    row = connection.execute("SELECT created_at FROM subscribers WHERE id = ?", (subscriber.id,)).fetchone()
    created_at = subscriber.created_at if row is None else row[0]
    connection.execute(
        "INSERT OR REPLACE INTO subscribers VALUES (?, ?, ?, ?)",
        (subscriber.id, json.dumps(subscriber_record(subscriber)), created_at, subscriber.updated_at),
    )
    connection.execute("DELETE FROM subscriber_topics WHERE subscriber_id = ?", (subscriber.id,))
    connection.executemany(
        "INSERT INTO subscriber_topics VALUES (?, ?)", [(topic, subscriber.id) for topic in subscriber.topics]
    )
    return _subscribers_by_id(connection, [subscriber.id])[subscriber.id], row is None


def _delete_subscriber(connection: sqlite3.Connection, id: str) -> bool:
    """With its stream cache: ids are the caller's, and a later subscriber of the same id must not get its past."""
    connection.execute("DELETE FROM subscriber_topics WHERE subscriber_id = ?", (id,))
    connection.execute("DELETE FROM stream_events WHERE subscriber_id = ?", (id,))
    return connection.execute("DELETE FROM subscribers WHERE id = ?", (id,)).rowcount == 1


def _create_message(
    connection: sqlite3.Connection, message: Message, to: list[str] | None, plan: Fanout
) -> tuple[Message, list[str], int]:
    """Resolve the recipients, plan and write every delivery and job; returns the message, the ids that name no
    subscriber, and how many jobs were queued."""
    if message.channels == (ChannelType.STREAM,):
        subscribers, unknown = _ids_only(connection, message, to)
    elif to is not None:
        found = _subscribers_by_id(connection, to)
        subscribers = [found[id] for id in dict.fromkeys(to) if id in found]
        unknown = [id for id in to if id not in found]
    else:
        rows = connection.execute(
            """SELECT s.id, s.record, s.created_at, s.updated_at FROM subscriber_topics t
               JOIN subscribers s ON s.id = t.subscriber_id WHERE t.topic = ? ORDER BY s.id""",
            (message.topic,),
        )
        subscribers, unknown = [_subscriber(row) for row in rows], []
    message, deliveries, jobs = plan(message, subscribers)
    if deliveries and connection.execute("SELECT 1 FROM deliveries WHERE id = ?", (deliveries[0].id,)).fetchone():
        return message, unknown, 0  # written already: a fan-out job run twice (its lease ran out while it wrote)
    connection.execute(
        "INSERT OR REPLACE INTO messages VALUES (?, ?, ?, ?, ?)",  # over its record while it was expanding
        (message.id, json.dumps(message_record(message)), message.created_at, message.expires_at, message.recipients),
    )
    connection.executemany(
        f"INSERT INTO deliveries ({_DELIVERY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (d.id, d.message_id, d.subscriber_id, d.channel.value, d.target, d.status.value, d.attempts,
             d.last_error, d.created_at, d.updated_at)
            for d in deliveries
        ],
    )  # fmt: skip
    insert_jobs(connection, jobs)
    return message, unknown, len(jobs)


def _ids_only(
    connection: sqlite3.Connection, message: Message, to: list[str] | None
) -> tuple[list[Subscriber], list[str]]:
    """For the live stream alone only the recipients' ids matter: their records are not read."""
    if to is None:
        ids = [row[0] for row in connection.execute(
            "SELECT subscriber_id FROM subscriber_topics WHERE topic = ? ORDER BY subscriber_id", (message.topic,)
        )]  # fmt: skip
        return [Subscriber(id, 0.0, 0.0) for id in ids], []
    known = {row[0] for row in _in(connection, "SELECT id FROM subscribers WHERE id IN ({ids})", list(set(to)))}
    return [Subscriber(id, 0.0, 0.0) for id in dict.fromkeys(to) if id in known], [id for id in to if id not in known]


def _get_message(connection: sqlite3.Connection, id: str) -> tuple[Message, Counts] | None:
    message = _messages_by_id(connection, [id]).get(id)
    if message is None:
        return None
    counts = dict(
        connection.execute(
            "SELECT status, count(*) FROM deliveries WHERE message_id = ? GROUP BY status", (id,)
        ).fetchall()
    )
    return message, Counts(**counts)


def _list_subscribers(
    connection: sqlite3.Connection, topic: str | None, after: Position | None, limit: int
) -> list[Subscriber]:
    if topic is None:
        position, args = paging.after(after)
        rows = connection.execute(
            f"SELECT id, record, created_at, updated_at FROM subscribers WHERE {position} {paging.newest_first()}",
            [*args, limit],
        )
    else:
        position, args = paging.after(after, "s.")
        rows = connection.execute(
            f"""SELECT s.id, s.record, s.created_at, s.updated_at FROM subscriber_topics t
                JOIN subscribers s ON s.id = t.subscriber_id WHERE t.topic = ? AND {position}
                {paging.newest_first("s.")}""",
            [topic, *args, limit],
        )
    return [_subscriber(row) for row in rows]


def _list_messages(
    connection: sqlite3.Connection, status: MessageStatus | None, after: Position | None, limit: int
) -> list[tuple[Message, Counts]]:
    position, args = paging.after(after)
    rows = connection.execute(
        f"""SELECT id, record, created_at, expires_at, recipients FROM messages m
            WHERE {position} AND {1 if status is None else _MESSAGE_STATUS[status]} {paging.newest_first()}""",
        [*args, limit],
    )
    messages = [_message(row) for row in rows]
    counts: dict[str, dict[str, int]] = {message.id: {} for message in messages}
    found = _in(
        connection,
        "SELECT message_id, status, count(*) FROM deliveries WHERE message_id IN ({ids}) GROUP BY message_id, status",
        list(counts),
    )
    for message_id, delivery_status, count in found:
        counts[message_id][delivery_status] = count
    return [(message, Counts(**counts[message.id])) for message in messages]


def _messages_by_id(connection: sqlite3.Connection, ids: list[str]) -> dict[str, Message]:
    rows = _in(
        connection, "SELECT id, record, created_at, expires_at, recipients FROM messages WHERE id IN ({ids})", ids
    )
    return {row[0]: _message(row) for row in rows}


def _list_deliveries(
    connection: sqlite3.Connection, message_id: str | None, status: str | None, after: int, limit: int
) -> list[tuple[int, Delivery]]:
    where: list[str] = ["seq > ?"]
    args: list[object] = [after]
    if message_id is not None:
        where.append("message_id = ?")
        args.append(message_id)
    if status is not None:
        where.append("status = ?")
        args.append(status)
    rows = connection.execute(
        f"SELECT seq, {_DELIVERY_COLUMNS} FROM deliveries WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?",
        [*args, limit],
    ).fetchall()
    return [(row[0], _delivery(row[1:])) for row in rows]


def _retry_failed(
    connection: sqlite3.Connection, message_id: str, jobs_for: Callable[[list[Delivery]], list[Job]], now: float
) -> int:
    """Queue again every failed delivery of a message, under the same ids (receivers drop duplicates by id)."""
    rows = connection.execute(
        f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE message_id = ? AND status = ?",
        (message_id, DeliveryStatus.FAILED.value),
    ).fetchall()
    failed = [_delivery(row) for row in rows]
    connection.executemany(
        "UPDATE deliveries SET status = ?, attempts = 0, last_error = NULL, updated_at = ? WHERE id = ?",
        [(DeliveryStatus.QUEUED.value, now, delivery.id) for delivery in failed],
    )
    insert_jobs(connection, jobs_for(failed))
    return len(failed)


def _delivery_context(connection: sqlite3.Connection, ids: list[str]) -> DeliveryContext:
    rows = _in(connection, f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE id IN ({{ids}})", ids)
    deliveries = {row[0]: _delivery(row) for row in rows}
    messages = _messages_by_id(connection, list({d.message_id for d in deliveries.values()}))
    subscribers = _subscribers_by_id(connection, list({d.subscriber_id for d in deliveries.values()}))
    return DeliveryContext(deliveries, messages, subscribers)


def _stream_context(
    connection: sqlite3.Connection, message_ids: list[str]
) -> tuple[dict[str, Message], dict[str, list[str]]]:
    """The messages, and per message the subscribers whose live stream still waits for it."""
    recipients: dict[str, list[str]] = {id: [] for id in message_ids}
    rows = _in(
        connection,
        """SELECT message_id, subscriber_id FROM deliveries
           WHERE message_id IN ({ids}) AND status = ? AND channel = ? ORDER BY seq""",
        message_ids,
        DeliveryStatus.QUEUED.value,
        ChannelType.STREAM.value,
    )
    for message_id, subscriber_id in rows:
        recipients[message_id].append(subscriber_id)
    return _messages_by_id(connection, message_ids), recipients


def _record_stream(connection: sqlite3.Connection, message_id: str, subscriber_ids: list[str], now: float) -> None:
    """Put a message in its recipients' stream caches and count it delivered: from here a client that
    reconnects gets it by replay, one that is connected gets it live."""
    connection.executemany(
        "INSERT INTO stream_events (subscriber_id, message_id, at) VALUES (?, ?, ?)",
        [(id, message_id, now) for id in subscriber_ids],
    )
    finish_stream(
        connection, message_id, DeliveryChange(DeliveryStatus.DELIVERED, add_attempt=True, clear_error=True), now
    )


def _stream_since(
    connection: sqlite3.Connection, subscriber_id: str, since: str | None, limit: int, not_before: float
) -> list[Message]:
    """The cached messages of one stream after ``since`` (a message id), oldest first, at most ``limit``.
    An unknown ``since`` replays the whole cache: better a duplicate than a gap."""
    after = 0
    if since is not None:
        row = connection.execute(
            "SELECT seq FROM stream_events WHERE subscriber_id = ? AND message_id = ?", (subscriber_id, since)
        ).fetchone()
        after = row[0] if row else 0
    rows = connection.execute(
        """SELECT message_id FROM stream_events WHERE subscriber_id = ? AND seq > ? AND at >= ?
           ORDER BY seq DESC LIMIT ?""",
        (subscriber_id, after, not_before, limit),
    ).fetchall()
    ids = [row[0] for row in reversed(rows)]
    found = _messages_by_id(connection, ids)
    return [found[id] for id in ids if id in found]


def _purge(connection: sqlite3.Connection, now: float, retention: float, cache_age: float) -> int:
    removed = connection.execute("DELETE FROM stream_events WHERE at < ?", (now - cache_age,)).rowcount
    old = [
        row[0]
        for row in connection.execute(
            """SELECT id FROM messages m WHERE expires_at < ? AND NOT EXISTS
               (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.status = ?)""",
            (now - retention, DeliveryStatus.QUEUED.value),
        )
    ]
    for start in range(0, len(old), _IN_CHUNK):
        chunk = old[start : start + _IN_CHUNK]
        marks = ", ".join("?" * len(chunk))
        removed += connection.execute(f"DELETE FROM deliveries WHERE message_id IN ({marks})", chunk).rowcount
        removed += connection.execute(f"DELETE FROM messages WHERE id IN ({marks})", chunk).rowcount
    return removed


class SqlitePush:
    """The push half of the store (``ports.PushStore``), on the shared database (see ``db``)."""

    def __init__(self, db: Database, queue: SqliteQueue) -> None:
        self.db = db
        self.queue = queue

    async def put_subscriber(self, subscriber: Subscriber) -> tuple[Subscriber, bool]:
        return await self.db.run(_put_subscriber, subscriber)

    async def get_subscriber(self, id: str) -> Subscriber | None:
        return (await self.db.run(_subscribers_by_id, [id])).get(id)

    async def delete_subscriber(self, id: str) -> bool:
        return await self.db.run(_delete_subscriber, id)

    async def list_subscribers(self, topic: str | None, after: Position | None, limit: int) -> list[Subscriber]:
        return await self.db.run(_list_subscribers, topic, after, limit)

    async def create_message(self, message: Message, to: list[str] | None, plan: Fanout) -> tuple[Message, list[str]]:
        created, unknown, queued = await self.db.run(_create_message, message, to, plan)
        self.queue.notify(queued)
        return created, unknown

    async def get_message(self, id: str) -> tuple[Message, Counts] | None:
        return await self.db.run(_get_message, id)

    async def count_topic(self, topic: str) -> int:
        return await self.db.run(
            lambda c: c.execute("SELECT count(*) FROM subscriber_topics WHERE topic = ?", (topic,)).fetchone()[0]
        )

    async def list_messages(
        self, status: MessageStatus | None, after: Position | None, limit: int
    ) -> list[tuple[Message, Counts]]:
        return await self.db.run(_list_messages, status, after, limit)

    async def list_deliveries(
        self, message_id: str | None, status: str | None, after: int, limit: int
    ) -> list[tuple[int, Delivery]]:
        return await self.db.run(_list_deliveries, message_id, status, after, limit)

    async def retry_failed(self, message_id: str, jobs_for: Callable[[list[Delivery]], list[Job]], now: float) -> int:
        retried = await self.db.run(_retry_failed, message_id, jobs_for, now)
        self.queue.notify(retried)
        return retried

    async def delivery_context(self, ids: list[str]) -> DeliveryContext:
        return await self.db.run(_delivery_context, ids)

    async def stream_context(self, message_ids: list[str]) -> tuple[dict[str, Message], dict[str, list[str]]]:
        return await self.db.run(_stream_context, message_ids)

    async def record_stream(self, message_id: str, subscriber_ids: list[str], now: float) -> None:
        await self.db.run(_record_stream, message_id, subscriber_ids, now)

    async def stream_since(self, subscriber_id: str, since: str | None, limit: int, not_before: float) -> list[Message]:
        return await self.db.run(_stream_since, subscriber_id, since, limit, not_before)

    async def purge(self, now: float, retention: float, cache_age: float) -> int:
        return await self.db.run(_purge, now, retention, cache_age)
