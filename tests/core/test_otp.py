"""The code rules, as pure functions: generation, expiry, resends, checks and their limits."""

from __future__ import annotations

import secrets
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.core import otp
from tidings.core.otp import CheckResult, Refused, Resend, StartNew
from tidings.core.types import Channel, Status, Verification

NOW = 1_000_000.0


def verification(**changes) -> Verification:
    base = Verification(
        id="ver_1",
        to="+8613800138000",
        channel=Channel.SMS,
        status=Status.PENDING,
        sealed_code=b"",
        locale="en",
        app_name="Acme",
        template=None,
        created_at=NOW,
        expires_at=NOW + 600,
        updated_at=NOW,
        last_sent_at=NOW,
    )
    return replace(base, **changes)


def right(_: Verification) -> bool:
    return True


def wrong(_: Verification) -> bool:
    return False


@given(st.integers(min_value=4, max_value=10))
def test_codes_are_digits_of_the_asked_length(length):
    code = otp.generate_code(length, secrets.randbelow)
    assert len(code) == length and code.isdigit()


@pytest.mark.parametrize("length", [0, 3, 11, -1])
def test_code_length_is_bounded(length):
    with pytest.raises(ValueError):
        otp.generate_code(length, secrets.randbelow)


def test_codes_are_not_repeated():
    assert len({otp.generate_code(10, secrets.randbelow) for _ in range(1000)}) == 1000


@pytest.mark.parametrize(
    ("status", "at", "expected"),
    [
        (Status.PENDING, NOW, Status.PENDING),
        (Status.PENDING, NOW + 599.9, Status.PENDING),
        (Status.PENDING, NOW + 600, Status.EXPIRED),
        (Status.APPROVED, NOW + 9999, Status.APPROVED),
        (Status.MAX_ATTEMPTS_REACHED, NOW + 9999, Status.MAX_ATTEMPTS_REACHED),
    ],
)
def test_current_status(status, at, expected):
    assert otp.current_status(verification(status=status), at) is expected


def test_a_verification_read_after_its_expiry_was_last_changed_when_it_expired():
    settled = otp.settle(verification(), NOW + 5000)
    assert settled.status is Status.EXPIRED and settled.updated_at == NOW + 600
    assert otp.settle(settled, NOW + 9000) == settled


def test_start_new_when_nothing_pending():
    assert isinstance(otp.decide_start(None, NOW), StartNew)
    assert isinstance(otp.decide_start(verification(status=Status.APPROVED), NOW), StartNew)
    assert isinstance(otp.decide_start(verification(), NOW + 601), StartNew)


def test_resend_keeps_the_verification_and_counts():
    decision = otp.decide_start(verification(send_count=2), NOW + 10)
    assert isinstance(decision, Resend)
    assert decision.verification.id == "ver_1" and decision.verification.send_count == 3
    assert decision.verification.last_sent_at == NOW + 10


def test_send_limit():
    refused = otp.decide_start(verification(send_count=5, max_sends=5), NOW + 10)
    assert isinstance(refused, Refused) and refused.error == "max_sends_reached"
    assert refused.retry_after == pytest.approx(590)


def test_test_numbers_have_no_send_limit():
    assert isinstance(otp.decide_start(verification(send_count=50, is_test=True), NOW, 30), Resend)


def test_a_resend_waits_for_the_cooldown_and_a_new_verification_does_not():
    refused = otp.decide_start(verification(), NOW + 10, resend_cooldown=30)
    assert isinstance(refused, Refused) and refused.error == "rate_limited"
    assert refused.retry_after == pytest.approx(20)
    assert isinstance(otp.decide_start(verification(), NOW + 30, resend_cooldown=30), Resend)
    assert isinstance(otp.decide_start(verification(status=Status.APPROVED), NOW + 1, resend_cooldown=30), StartNew)


def test_right_code_approves_once():
    first = otp.check(verification(), right, NOW)
    assert isinstance(first, CheckResult) and first.valid and first.verification.status is Status.APPROVED
    again = otp.check(first.verification, right, NOW)
    assert isinstance(again, Refused) and again.error == "verification_approved"


@pytest.mark.parametrize(
    ("status", "at", "error"),
    [
        (Status.CANCELED, NOW, "verification_canceled"),
        (Status.FAILED, NOW, "verification_failed"),
        (Status.PENDING, NOW + 600, "verification_expired"),
        (Status.MAX_ATTEMPTS_REACHED, NOW, "max_attempts_reached"),
    ],
)
def test_checks_that_cannot_be_made_say_why(status, at, error):
    calls = []
    refused = otp.check(verification(status=status), lambda v: calls.append(v) or True, at)
    assert isinstance(refused, Refused) and refused.error == error
    assert calls == [], "the code is not even compared"


@given(st.lists(st.booleans(), min_size=1, max_size=30), st.integers(min_value=1, max_value=10))
def test_checks_never_pass_the_limit(guesses, max_checks):
    current = verification(max_checks=max_checks)
    approvals = 0
    for guess in guesses:
        result = otp.check(current, right if guess else wrong, NOW)
        if isinstance(result, Refused):
            assert result.error in {"verification_approved", "max_attempts_reached"}
            continue
        approvals += result.valid
        current = result.verification
        assert current.check_count <= max_checks
        assert result.attempts_left == max_checks - current.check_count
        if current.check_count == max_checks and not result.valid:
            assert current.status is Status.MAX_ATTEMPTS_REACHED
    assert approvals <= 1
    assert current.check_count <= max_checks


def test_attempt_is_counted_whatever_the_result():
    result = otp.check(verification(check_count=3), wrong, NOW)
    assert isinstance(result, CheckResult) and result.verification.check_count == 4
    assert result.attempts_left == 1 and result.verification.status is Status.PENDING


def test_cancel():
    canceled = otp.cancel(verification(), NOW)
    assert isinstance(canceled, Verification) and canceled.status is Status.CANCELED
    assert isinstance(otp.cancel(canceled, NOW), Refused)


def test_send_ids_are_stable_per_send():
    assert otp.send_id(verification(send_count=2)) == "snd_1.2"
