"""What settling a job changes besides the queue, as a table: the rules every backend applies."""

from __future__ import annotations

import pytest

from tidings.core.outcomes import NOTHING, Ack, Attempt, DeliveryChange, Drop, Effect, Reschedule, effect, report_job
from tidings.core.push import SUBSCRIPTION_GONE, DeliveryStatus
from tidings.core.types import Job

VERIFICATION = Job("snd_1", "verification", "ver_1", "yunpian")
DELIVERY = Job("dlv_1", "delivery", "msg_1", "webhook")
STREAM = Job("stm_1", "stream", "msg_1", "stream")


def tried(job: Job, error: str | None = None) -> Attempt:
    return Attempt(job, job.lane, "transient" if error else "delivered", error, 0.0)


CASES = [
    # a code: delivered counts; failed for good fails it; another try, or a code that expired, changes nothing
    (VERIFICATION, Ack(), tried(VERIFICATION), Effect(verification="delivered")),
    (VERIFICATION, Drop("yunpian_2"), tried(VERIFICATION, "yunpian_2"), Effect(verification="failed")),
    (VERIFICATION, Drop("expired", failed=False), None, NOTHING),
    (VERIFICATION, Reschedule(5.0, "yunpian", 1), tried(VERIFICATION, "timeout"), NOTHING),
    # a delivery: its row follows its job
    (
        DELIVERY,
        Ack(),
        tried(DELIVERY),
        Effect(delivery=DeliveryChange(DeliveryStatus.DELIVERED, add_attempt=True, clear_error=True)),
    ),
    (
        DELIVERY,
        Reschedule(5.0, "webhook", 2),
        tried(DELIVERY, "http_503"),
        Effect(delivery=DeliveryChange(attempts=2, error="http_503")),
    ),
    # a deferral (no attempt) keeps the last error
    (DELIVERY, Reschedule(5.0, "webhook", 2), None, Effect(delivery=DeliveryChange(attempts=2))),
    (
        DELIVERY,
        Drop("http_404"),
        tried(DELIVERY, "http_404"),
        Effect(delivery=DeliveryChange(DeliveryStatus.FAILED, add_attempt=True, error="http_404")),
    ),
    (
        DELIVERY,
        Drop("expired", failed=False),
        None,
        Effect(delivery=DeliveryChange(DeliveryStatus.EXPIRED, error="expired")),
    ),
    (
        DELIVERY,
        Drop(SUBSCRIPTION_GONE),
        tried(DELIVERY, SUBSCRIPTION_GONE),
        Effect(
            delivery=DeliveryChange(DeliveryStatus.FAILED, add_attempt=True, error=SUBSCRIPTION_GONE),
            forget_subscription=True,
            report=report_job(DELIVERY, SUBSCRIPTION_GONE, 0.0),
        ),
    ),
    # a dead device token: removed and reported, under the service's own reason
    *[
        (
            DELIVERY,
            Drop(reason),
            tried(DELIVERY, reason),
            Effect(
                delivery=DeliveryChange(DeliveryStatus.FAILED, add_attempt=True, error=reason),
                forget_subscription=True,
                report=report_job(DELIVERY, reason, 0.0),
            ),
        )
        for reason in ("Unregistered", "BadDeviceToken", "ExpiredToken", "UNREGISTERED", "INVALID_ARGUMENT")
    ],
    # a refusal that is not about the token keeps it
    (
        DELIVERY,
        Drop("DeviceTokenNotForTopic"),
        tried(DELIVERY, "DeviceTokenNotForTopic"),
        Effect(delivery=DeliveryChange(DeliveryStatus.FAILED, add_attempt=True, error="DeviceTokenNotForTopic")),
    ),
    # a stream job: dropped, it ends its message's stream deliveries; sent, it counted them already
    (STREAM, Ack(), tried(STREAM), NOTHING),
    (
        STREAM,
        Drop("expired", failed=False),
        None,
        Effect(stream=DeliveryChange(DeliveryStatus.EXPIRED, add_attempt=True, error="expired")),
    ),
    (
        STREAM,
        Drop("gone", failed=False),
        None,
        Effect(stream=DeliveryChange(DeliveryStatus.FAILED, add_attempt=True, error="gone")),
    ),
    # another kind of job changes nothing but the queue
    (Job("x", "test", "x", "sms"), Drop("bad"), None, NOTHING),
]


@pytest.mark.parametrize(("job", "settlement", "attempt", "expected"), CASES)
def test_table(job, settlement, attempt, expected):
    assert effect(job, settlement, attempt) == expected


def test_a_report_is_one_job_per_delivery():
    """Settled twice (after a crash), a delivery reports under one id: the queue keeps one."""
    first, again = report_job(DELIVERY, "Unregistered", 1.0), report_job(DELIVERY, "Unregistered", 2.0)
    assert first.id == again.id == "fbk_1"
    assert (first.kind, first.ref, first.lane) == ("feedback", "dlv_1", "feedback")
    assert first.payload == {"give_up_at": 1.0 + 86400, "max_attempts": 20, "reason": "Unregistered", "at": 1.0}
