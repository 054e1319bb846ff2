"""The verifications service: a start is one atomic step that queues the code's send; a queued send becomes the
text a provider delivers, or a reason not to send it."""

from __future__ import annotations

import time

import pytest

from tidings.core.otp import Status
from tidings.core.outcomes import Drop
from tidings.core.settings import Settings
from tidings.core.types import OutboundMessage
from tidings.errors import InvalidInput, NotFound, RateLimited, Unprocessable
from tidings.ports import Lookup
from tidings.runtime.tally import Tally
from tidings.services.verifications import StartInput, Verifications

TO = "+8613800138000"


@pytest.fixture
def verifications(backend, sealer) -> Verifications:
    settings = Settings.model_validate(
        {"verify": {"sms_providers": ["yunpian", "twilio"], "allowed_countries": ["CN"], "resend_cooldown": 0}}
    )
    return Verifications(settings, backend.store, backend.queue, sealer, Tally(None))


async def test_a_start_queues_its_send_for_the_first_provider_until_the_code_is_of_no_use(verifications, backend):
    started = await verifications.start(StartInput(TO, locale="zh-CN"))
    assert started.verification.status is Status.PENDING and not started.resent
    [job] = await backend.queue.lease("yunpian", 10, time.time(), 30)
    assert job.kind == "verification" and job.ref == started.verification.id
    assert job.payload["chain"] == ["yunpian", "twilio"]
    assert job.payload["give_up_at"] == started.verification.expires_at - 20


async def test_a_queued_send_becomes_the_text_with_the_code_sealed_at_rest(verifications, backend):
    started = await verifications.start(StartInput(TO, app_name="Ada's"))
    [job] = await backend.queue.lease("yunpian", 10, time.time(), 30)
    [message] = await verifications.prepare([job], time.time())
    assert isinstance(message, OutboundMessage) and message.idempotency_key == job.id
    code = message.params["code"]
    assert code in message.text and "Ada's" in message.text
    assert code.encode() not in started.verification.sealed_code
    checked = await verifications.check(Lookup(to=TO), code)
    assert checked.valid and checked.verification.status is Status.APPROVED
    [dropped] = await verifications.prepare([job], time.time())
    assert dropped == Drop("approved", failed=False), "a used code is not sent"


async def test_a_resend_is_the_same_verification_and_a_second_send_job(verifications, backend):
    first = await verifications.start(StartInput(TO))
    again = await verifications.start(StartInput(TO))
    assert again.resent and again.verification.id == first.verification.id
    jobs = await backend.queue.lease("yunpian", 10, time.time(), 30)
    assert sorted(job.id for job in jobs) == [f"snd_{first.verification.id[4:]}.{n}" for n in (1, 2)]


@pytest.mark.parametrize(
    ("given", "error", "code"),
    [
        (StartInput("+14155550100"), Unprocessable, "country_not_allowed"),
        (StartInput(TO, template="welcome"), InvalidInput, "invalid_request"),
        (StartInput("not a number"), InvalidInput, "invalid_request"),
    ],
)
async def test_a_start_that_cannot_be_sent_is_refused(verifications, given, error, code):
    with pytest.raises(error) as refused:
        await verifications.start(given)
    assert refused.value.code == code


async def test_checks_refuse_with_the_api_errors(verifications):
    with pytest.raises(NotFound) as missing:
        await verifications.check(Lookup(to=TO), "123456")
    assert missing.value.code == "verification_not_found"
    started = await verifications.start(StartInput(TO))
    for _ in range(5):
        await verifications.check(Lookup(id=started.verification.id), "000000")
    with pytest.raises(RateLimited) as locked:
        await verifications.check(Lookup(id=started.verification.id), "000000")
    assert locked.value.code == "max_attempts_reached"
