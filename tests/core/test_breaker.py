"""The circuit breaker as a table of transitions, and the promises it keeps whatever happens."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.core.breaker import PROBE_WAIT, Breaker

T = 1000.0


def run(breaker: Breaker, steps: list[tuple[str, float]]) -> list[float | None]:
    """Apply ``(event, time)`` steps; the answer of each ``allow`` in order."""
    answers = []
    for event, now in steps:
        if event == "allow":
            answers.append(breaker.allow(now))
        elif event == "released":
            breaker.released()
        else:
            getattr(breaker, event)(now)
    return answers


FAIL3 = [("failed", T), ("failed", T), ("failed", T)]


@pytest.mark.parametrize(
    ("steps", "state", "answers"),
    [
        ([("allow", T)], "closed", [None]),
        ([("failed", T), ("failed", T), ("allow", T)], "closed", [None]),
        ([("failed", T), ("failed", T), ("succeeded", T), ("failed", T), ("failed", T)], "closed", []),
        ([*FAIL3, ("allow", T + 5)], "open", [T + 10]),
        ([*FAIL3, ("allow", T + 10)], "half_open", [None]),
        ([*FAIL3, ("allow", T + 10), ("allow", T + 11)], "half_open", [None, T + 11 + PROBE_WAIT]),
        ([*FAIL3, ("allow", T + 10), ("succeeded", T + 11), ("allow", T + 11)], "closed", [None, None]),
        ([*FAIL3, ("allow", T + 10), ("failed", T + 11), ("allow", T + 12)], "open", [None, T + 31]),
        ([*FAIL3, ("allow", T + 10), ("failed", T + 11), ("allow", T + 31)], "half_open", [None, None]),
        ([*FAIL3, ("allow", T + 10), ("released", T + 11), ("allow", T + 11)], "half_open", [None, None]),
        ([*FAIL3, ("succeeded", T + 1), ("allow", T + 2)], "open", [T + 10]),
        ([*FAIL3, ("failed", T + 9), ("allow", T + 10)], "half_open", [None]),
    ],
    ids=[
        "closed allows",
        "below the threshold stays closed",
        "a success resets the count",
        "threshold opens for the cooldown",
        "after the cooldown one probe goes",
        "a second caller waits for the probe",
        "the probe's success closes",
        "the probe's failure doubles the cooldown",
        "the next probe after the doubled cooldown",
        "a released probe frees the slot",
        "late answers while open change nothing",
        "late failures do not extend the cooldown",
    ],
)
def test_transitions(steps, state, answers):
    breaker = Breaker(failure_threshold=3, cooldown=10, max_cooldown=40)
    assert run(breaker, steps) == answers
    assert breaker.state == state


def test_cooldown_doubles_up_to_the_ceiling_and_resets_on_success():
    breaker = Breaker(failure_threshold=1, cooldown=10, max_cooldown=25)
    now = T
    breaker.failed(now)
    for expected in (20, 25, 25):
        now = breaker.open_until
        assert breaker.allow(now) is None
        breaker.failed(now)
        assert breaker.open_until == now + expected
    now = breaker.open_until
    breaker.allow(now)
    breaker.succeeded(now)
    breaker.failed(now)
    assert breaker.open_until == now + 10


@pytest.mark.parametrize("settings", [(0, 10, 20), (1, 0, 20), (1, 30, 20)])
def test_nonsense_settings_are_refused(settings):
    with pytest.raises(ValueError):
        Breaker(*settings)


EVENTS = st.lists(
    st.tuples(st.sampled_from(["allow", "succeeded", "failed", "released"]), st.floats(0, 50)), max_size=60
)


@given(EVENTS, st.integers(1, 5))
def test_promises(events, threshold):
    """A closed breaker always allows; an open one allows nothing before its time; while half-open at most one probe
    is out until someone reports back; the cooldown never passes its ceiling."""
    breaker = Breaker(failure_threshold=threshold, cooldown=5, max_cooldown=60)
    now = T
    probes_out = 0
    for event, step in events:
        now += step
        if event == "allow":
            state = breaker.state
            answer = breaker.allow(now)
            if state == "closed":
                assert answer is None
            if state == "open" and now < breaker.open_until:
                assert answer == breaker.open_until
            if answer is None and breaker.state == "half_open":
                probes_out += 1
            if answer is not None:
                assert answer > now
        else:
            run(breaker, [(event, now)])
            probes_out = 0
        assert probes_out <= 1
        assert 5 <= breaker.cooldown <= 60


def test_with_a_window_a_destination_failing_now_and_then_stays_closed():
    """30% of requests failing, in runs of up to five: the 70% that get through keep the circuit closed."""
    breaker = Breaker(failure_threshold=16, cooldown=2, max_cooldown=10, window=20)
    pattern = [True] * 5 + [False] * 7 + [True, False, False, True, False, False, False]  # 8 of 20 fail
    for failed in pattern * 50:
        breaker.failed(0) if failed else breaker.succeeded(0)
        assert breaker.state == "closed"


def test_with_a_window_a_destination_that_goes_down_opens_once_most_of_the_window_failed():
    breaker = Breaker(failure_threshold=16, cooldown=2, max_cooldown=10, window=20)
    for _ in range(20):
        breaker.succeeded(0)
    for n in range(1, 17):
        assert breaker.state == "closed", n
        breaker.failed(0)
    assert breaker.state == "open" and breaker.allow(1) == 2


def test_healthy_once_its_last_request_got_through():
    breaker = Breaker(failure_threshold=3, cooldown=1, max_cooldown=2, window=10)
    assert breaker.healthy
    breaker.failed(0)
    assert not breaker.healthy and breaker.failures == 1
    breaker.succeeded(0)
    assert breaker.healthy and breaker.failures == 1
