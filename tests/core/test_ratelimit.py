"""GCRA: bursts up to the count, then an even pace; limits applied all or nothing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.core.ratelimit import Limit, check_all, gcra


def run(limit: Limit, times: list[float]) -> list[float]:
    tat, allowed = None, []
    for now in times:
        verdict = gcra(tat, now, limit)
        if verdict.allowed:
            tat = verdict.tat
            allowed.append(now)
    return allowed


@given(
    st.integers(min_value=1, max_value=20),
    st.floats(min_value=1, max_value=1000),
    st.lists(st.floats(min_value=0, max_value=5000), max_size=200),
)
def test_never_faster_than_the_rate_after_the_burst(count, period, times):
    """Between any two allowed events k apart, at least (k - count) intervals of period/count have passed: a burst
    of ``count``, then the average rate, and never more."""
    limit = Limit("l", "k", count, period)
    allowed = run(limit, sorted(times))
    for i, first in enumerate(allowed):
        for k, later in enumerate(allowed[i:], start=1):
            assert later - first >= (k - count) * limit.interval - 1e-6


def test_burst_then_pace():
    limit = Limit("l", "k", 5, 60)
    assert len(run(limit, [0.0] * 6)) == 5
    tat = None
    for _ in range(5):
        tat = gcra(tat, 0.0, limit).tat
    refused = gcra(tat, 0.0, limit)
    assert not refused.allowed and refused.retry_after == pytest.approx(12)
    assert gcra(tat, refused.retry_after, limit).allowed


def test_a_cooldown_is_one_per_period():
    limit = Limit("cooldown", "k", 1, 30)
    first = gcra(None, 100, limit)
    second = gcra(first.tat, 110, limit)
    assert first.allowed and not second.allowed and second.retry_after == pytest.approx(20)


def test_all_or_nothing():
    loose, tight = Limit("loose", "a", 10, 60), Limit("tight", "b", 1, 60)
    first = check_all({}, [loose, tight], 0)
    assert first.allowed and set(first.updates) == {"a", "b"}
    second = check_all(first.updates, [loose, tight], 1)
    assert not second.allowed and second.updates == {} and second.hit is tight
    assert second.retry_after == pytest.approx(59)


def test_the_longest_wait_wins():
    day, hour = Limit("day", "d", 1, 86400), Limit("hour", "h", 1, 3600)
    state = check_all({}, [day, hour], 0).updates
    assert check_all(state, [hour, day], 10).hit is day


def test_one_key_in_two_limits_counts_twice():
    limit = Limit("l", "same", 2, 60)
    assert not check_all({}, [limit, limit, limit], 0).allowed
