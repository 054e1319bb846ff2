"""The retry policy as a table of cases."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.core.retry import Done, FailOver, GiveUp, RetryAt, RetryPolicy, StartOver, backoff, decide
from tidings.core.types import Deferred, Delivered, Permanent, Transient

POLICY = RetryPolicy(base_delay=1, factor=2, max_delay=300, attempts_per_lane=3)
NOW = 1000.0


@pytest.mark.parametrize(
    ("attempt", "outcome", "expires_at", "can_fail_over", "expected"),
    [
        (1, Delivered("x"), None, False, Done()),
        (1, Permanent("bad_number"), None, False, GiveUp("bad_number")),
        (1, Permanent("bad_number"), None, True, FailOver()),
        (3, Transient("timeout"), None, False, GiveUp("timeout")),
        (3, Transient("timeout"), None, True, FailOver()),
        (1, Transient("timeout"), NOW + 0.1, False, GiveUp("expired")),
        (1, Transient("timeout"), NOW + 0.1, True, FailOver()),
    ],
)
def test_table(attempt, outcome, expires_at, can_fail_over, expected):
    decision = decide(
        attempt, outcome, NOW, POLICY, random.Random(1), expires_at=expires_at, can_fail_over=can_fail_over
    )
    assert decision == expected


@pytest.mark.parametrize(("attempt", "low", "high"), [(1, 0.5, 1), (2, 1, 2)])
def test_transient_retries_later_within_the_backoff(attempt, low, high):
    decision = decide(attempt, Transient("http_503"), NOW, POLICY, random.Random(attempt))
    assert isinstance(decision, RetryAt) and NOW + low <= decision.when <= NOW + high


def test_retry_after_is_honoured():
    decision = decide(1, Transient("http_429", retry_after=45), NOW, POLICY, random.Random(0))
    assert isinstance(decision, RetryAt) and decision.when >= NOW + 45


@given(st.integers(min_value=1, max_value=100), st.integers(min_value=0, max_value=2**32))
def test_backoff_is_capped_and_jittered(attempt, seed):
    delay = backoff(attempt, POLICY, random.Random(seed))
    ceiling = min(POLICY.max_delay, POLICY.base_delay * POLICY.factor ** (attempt - 1))
    assert ceiling / 2 <= delay <= ceiling <= POLICY.max_delay


def test_same_seed_same_schedule():
    assert backoff(4, POLICY, random.Random(7)) == backoff(4, POLICY, random.Random(7))


@pytest.mark.parametrize(
    ("outcome", "expires_at", "give_up_at", "expected"),
    [
        (Deferred("circuit_open", NOW + 30), None, None, RetryAt(NOW + 30, counted=False)),
        (Deferred("circuit_open", NOW + 30), NOW + 10, None, GiveUp("expired")),
        (Deferred("circuit_open", NOW + 30), None, NOW + 10, GiveUp("circuit_open")),
        (Transient("http_503", retry_after=60), None, NOW + 10, GiveUp("http_503")),
        (Transient("http_503", retry_after=60), NOW + 10, NOW + 10, GiveUp("expired")),
    ],
)
def test_deferrals_and_give_up_time(outcome, expires_at, give_up_at, expected):
    decision = decide(1, outcome, NOW, POLICY, random.Random(1), expires_at=expires_at, give_up_at=give_up_at)
    assert decision == expected


def test_a_deferral_never_fails_over():
    decision = decide(3, Deferred("host_busy", NOW + 1), NOW, POLICY, random.Random(1), can_fail_over=True)
    assert decision == RetryAt(NOW + 1, counted=False)


@pytest.mark.parametrize(("can_fail_over", "expected"), [(True, FailOver()), (False, RetryAt(NOW + 5, counted=False))])
def test_a_provider_held_off_by_its_circuit_passes_the_send_to_the_next(can_fail_over, expected):
    held_off = Deferred("circuit_open", NOW + 5, fail_over=True)
    assert decide(1, held_off, NOW, POLICY, random.Random(1), can_fail_over=can_fail_over) == expected


@pytest.mark.parametrize(
    ("attempt", "outcome", "can_fail_over", "give_up_at", "expected"),
    [
        # the last provider's tries are over: the chain starts again, after a backoff, while time is left
        (3, Transient("yunpian_-50"), False, NOW + 500, StartOver),
        (3, Transient("timeout"), False, NOW + 500, StartOver),
        # not the last provider yet: the next one first
        (3, Transient("timeout"), True, NOW + 500, FailOver()),
        # tries left on this provider: as before
        (1, Transient("timeout"), False, NOW + 500, RetryAt),
        # too late to be of use: given up, and failed with the last error
        (3, Transient("timeout"), False, NOW + 1, GiveUp("timeout")),
        # a refusal for good from the last provider ends it, however much time is left
        (1, Permanent("yunpian_2"), False, NOW + 500, GiveUp("yunpian_2")),
    ],
)
def test_a_code_starts_the_chain_over_until_its_last_useful_moment(
    attempt, outcome, can_fail_over, give_up_at, expected
):
    decision = decide(
        attempt,
        outcome,
        NOW,
        POLICY,
        random.Random(1),
        expires_at=NOW + 600,
        give_up_at=give_up_at,
        can_fail_over=can_fail_over,
        start_over=True,
    )
    if isinstance(expected, type):
        assert isinstance(decision, expected) and NOW < decision.when <= NOW + 4
    else:
        assert decision == expected


def test_without_start_over_the_last_provider_gives_up_as_before():
    assert decide(3, Transient("timeout"), NOW, POLICY, random.Random(1), give_up_at=NOW + 500) == GiveUp("timeout")
