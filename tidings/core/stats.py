"""Counts over time: what happened per minute (kept a day) and per hour (kept 30 days), and the series
``GET /v1/stats`` answers with.

A count is named by dotted parts, its kind first: ``verifications.started``, ``deliveries.<channel>.delivered``,
``sends.<provider>.ok``, ``circuits.<provider>.opened``. Channel and provider names hold no dot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from tidings.core.types import rfc3339

MINUTE = 60
HOUR = 3600
KEPT = {MINUTE: 25 * 3600, HOUR: 31 * 86400}
"""Seconds each resolution is kept: a day of minutes, a month of hours (each with a margin)."""
MAX_BUCKETS = 1440
"""Buckets one answer holds at most: a day of minutes, a month of half-hours."""

VERIFICATIONS = ("started", "approved", "failed")
DELIVERIES = ("delivered", "failed")
SENDS = ("ok", "error")

Counts = Mapping[tuple[int, str], int]
"""Count by (bucket start, name)."""


def bucket(at: float, resolution: int) -> int:
    """The start of the bucket of ``resolution`` seconds that holds ``at``."""
    return int(at // resolution) * resolution


def resolution_for(since: float, step: int, now: float) -> int | str:
    """The resolution to read for buckets of ``step`` seconds from ``since``, or why it cannot be answered: minutes
    are kept a day, so older counts come by the hour, in whole hours."""
    if step % HOUR == 0:
        return HOUR
    if since < now - KEPT[MINUTE] + HOUR:
        return "per-minute counts are kept for 24 hours: for older ones, ask for a step of 3600 or a multiple"
    return MINUTE


def series(counts: Counts, since: float, until: float, step: int) -> list[dict[str, Any]]:
    """Every bucket of ``step`` seconds from the one holding ``since`` up to ``until``, empty ones as zeros, so that
    a chart has no holes: each with its verifications, its deliveries per channel and its sends per provider."""
    first = bucket(since, step)
    totals: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (start, name), count in counts.items():
        if first <= start < until:
            totals[bucket(start, step)][name] += count
    return [_bucket(at, totals.get(at, {})) for at in range(first, int(until), step) if at < until]


def total(counts: Counts, since: float, until: float) -> dict[str, Any]:
    """The sums of every count in [since, until), shaped as a bucket without its time."""
    names: dict[str, int] = defaultdict(int)
    for (start, name), count in counts.items():
        if since <= start < until:
            names[name] += count
    summed = _bucket(0, names)
    del summed["at"]
    return summed


def _bucket(at: int, names: Mapping[str, int]) -> dict[str, Any]:
    verifications = {kind: names.get(f"verifications.{kind}", 0) for kind in VERIFICATIONS}
    deliveries: dict[str, dict[str, int]] = {}
    sends: dict[str, dict[str, int]] = {}
    circuits: dict[str, dict[str, int]] = {}
    table = {"deliveries": (deliveries, DELIVERIES), "sends": (sends, SENDS), "circuits": (circuits, ("opened",))}
    for name, count in names.items():
        kind, _, rest = name.partition(".")
        of, _, outcome = rest.rpartition(".")
        if kind in table and of:
            found, outcomes = table[kind]
            found.setdefault(of, dict.fromkeys(outcomes, 0))[outcome] = count
    return {"at": rfc3339(at), "verifications": verifications, "deliveries": deliveries, "sends": sends,
            "circuits": circuits}  # fmt: skip


def by_hour(counts: Counts) -> dict[tuple[int, str], int]:
    """Per-minute counts summed into their hours, the month-long resolution."""
    hours: dict[tuple[int, str], int] = defaultdict(int)
    for (start, name), count in counts.items():
        hours[bucket(start, HOUR), name] += count
    return dict(hours)
