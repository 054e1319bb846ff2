"""What settling a job changes besides the queue, as ``core.outcomes.effect`` decides it, written in SQL."""

from __future__ import annotations

import json
import sqlite3

from tidings.core.outcomes import DeliveryChange, Effect
from tidings.core.push import ChannelType, DeliveryStatus
from tidings.core.types import Job, Status


def apply(connection: sqlite3.Connection, job: Job, effect: Effect, now: float) -> None:
    if effect.verification == "delivered":
        connection.execute(
            "UPDATE verifications SET delivered_count = delivered_count + 1, updated_at = ? WHERE id = ?",
            (now, job.ref),
        )
    elif effect.verification == "failed":
        connection.execute(
            "UPDATE verifications SET status = ?, updated_at = ? WHERE id = ? AND status = ? AND delivered_count = 0",
            (Status.FAILED.value, now, job.ref, Status.PENDING.value),
        )
    if effect.forget_subscription:  # before the delivery changes: it names the subscription
        row = connection.execute("SELECT subscriber_id, target FROM deliveries WHERE id = ?", (job.id,)).fetchone()
        if row is not None:
            subscriber_id, endpoint = row
            _forget_push_subscription(connection, subscriber_id, endpoint, now)
    if effect.delivery is not None:
        _change(connection, "id = ?", (job.id,), effect.delivery, now)
    if effect.stream is not None:
        finish_stream(connection, job.ref, effect.stream, now)


def finish_stream(connection: sqlite3.Connection, message_id: str, change: DeliveryChange, now: float) -> None:
    """Change every stream delivery of a message still queued."""
    where = "message_id = ? AND channel = ? AND status = ?"
    _change(connection, where, (message_id, ChannelType.STREAM.value, DeliveryStatus.QUEUED.value), change, now)


def _change(
    connection: sqlite3.Connection, where: str, args: tuple[str, ...], change: DeliveryChange, now: float
) -> None:
    sets: list[str] = ["updated_at = ?"]
    values: list[object] = [now]
    if change.status is not None:
        sets.append("status = ?")
        values.append(change.status.value)
    if change.attempts is not None:
        sets.append("attempts = ?")
        values.append(change.attempts)
    if change.add_attempt:
        sets.append("attempts = attempts + 1")
    if change.error is not None:
        sets.append("last_error = ?")
        values.append(change.error)
    elif change.clear_error:
        sets.append("last_error = NULL")
    connection.execute(f"UPDATE deliveries SET {', '.join(sets)} WHERE {where}", (*values, *args))


def _forget_push_subscription(connection: sqlite3.Connection, subscriber_id: str, endpoint: str, now: float) -> None:
    row = connection.execute("SELECT record FROM subscribers WHERE id = ?", (subscriber_id,)).fetchone()
    if row is None:
        return
    record = json.loads(row[0])
    record["webpush"] = [push for push in record["webpush"] if push[0] != endpoint]
    connection.execute(
        "UPDATE subscribers SET record = ?, updated_at = ? WHERE id = ?", (json.dumps(record), now, subscriber_id)
    )
