"""What settling a job changes besides the queue, as ``core.outcomes.effect`` decides it, written in SQL."""

from __future__ import annotations

import json
import sqlite3

from tidings.core.outcomes import DeliveryChange, Effect
from tidings.core.push import ChannelType, DeliveryStatus
from tidings.core.types import Job, Status


def apply(connection: sqlite3.Connection, job: Job, effect: Effect, now: float) -> Job | None:
    """Write the effect; returns the job it asks to queue (the report of a removed channel), if any."""
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
    removed = effect.forget_subscription and _forget_channel(connection, job.id, now)
    if effect.delivery is not None:
        _change(connection, "id = ?", (job.id,), effect.delivery, now)
    if effect.stream is not None:
        finish_stream(connection, job.ref, effect.stream, now)
    return effect.report if removed else None


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


def _forget_channel(connection: sqlite3.Connection, delivery_id: str, now: float) -> bool:
    """The delivery's subscriber loses the channel it went to (a Web Push endpoint, a device token: the first item
    of each in the record); True when it still had it."""
    found = connection.execute(
        "SELECT channel, target, record FROM deliveries JOIN subscribers ON subscribers.id = subscriber_id"
        " WHERE deliveries.id = ?",
        (delivery_id,),
    ).fetchone()
    if found is None:
        return False
    channel, target, text = found
    record = json.loads(text)
    kept = [entry for entry in record.get(channel, []) if entry[0] != target]
    if len(kept) == len(record.get(channel, [])):
        return False
    record[channel] = kept
    connection.execute(
        "UPDATE subscribers SET record = ?, updated_at = ?"
        " WHERE id = (SELECT subscriber_id FROM deliveries WHERE id = ?)",
        (json.dumps(record), now, delivery_id),
    )
    return True
