"""Counts into series: buckets of any step, holes as zeros, and which resolution answers."""

from __future__ import annotations

import datetime as dt

from tidings.core.stats import HOUR, MINUTE, by_hour, resolution_for, series, total

T = 1_800_000_000  # a whole hour


def test_a_series_has_every_bucket_empty_ones_as_zeros():
    counts = {(T, "verifications.started"): 2, (T + 180, "verifications.started"): 1, (T + 180, "sends.twilio.ok"): 4,
              (T + 240, "deliveries.sms.failed"): 1}  # fmt: skip
    buckets = series(counts, T, T + 300, 120)
    assert [b["verifications"]["started"] for b in buckets] == [2, 1, 0]
    assert buckets[1]["sends"] == {"twilio": {"ok": 4, "error": 0}}
    assert buckets[2]["deliveries"] == {"sms": {"delivered": 0, "failed": 1}}
    assert dt.datetime.fromisoformat(buckets[0]["at"]).timestamp() == T


def test_totals_sum_the_range():
    counts = {
        (T, "verifications.approved"): 2,
        (T + 60, "verifications.approved"): 3,
        (T + 600, "verifications.approved"): 9,
    }
    assert total(counts, T, T + 120)["verifications"] == {"started": 0, "approved": 5, "failed": 0}


def test_minutes_for_the_last_day_hours_beyond_it():
    now = T + 10 * 86400
    assert resolution_for(now - 3600, 60, now) == MINUTE
    assert resolution_for(now - 3 * 86400, 3600, now) == HOUR
    assert isinstance(resolution_for(now - 3 * 86400, 600, now), str)


def test_minutes_sum_into_their_hours():
    assert by_hour({(T + 60, "a.b.c"): 1, (T + 3540, "a.b.c"): 2, (T + 3600, "a.b.c"): 5}) == {
        (T, "a.b.c"): 3,
        (T + 3600, "a.b.c"): 5,
    }
