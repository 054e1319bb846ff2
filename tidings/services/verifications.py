"""Verifications as a service: turns a validated request into a decision by ``core`` and one atomic store step,
and turns a queued send back into the message a provider delivers."""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import time
from dataclasses import dataclass

from tidings.core import abuse, otp, templates
from tidings.core.address import InvalidAddress, parse_email, parse_phone
from tidings.core.ids import RANDOM_BYTES, new_id
from tidings.core.otp import CheckResult, Refused
from tidings.core.outcomes import Drop
from tidings.core.sealing import Sealer
from tidings.core.settings import Settings
from tidings.core.types import (
    PRIORITY_VERIFICATION,
    Channel,
    Job,
    OutboundMessage,
    SendPayload,
    Status,
    Verification,
)
from tidings.errors import Conflict, InvalidInput, NotFound, QueueFull, RateLimited, Unprocessable
from tidings.ports import Lookup, Position, Queue, Started, StartRequest, Store
from tidings.runtime.tally import Tally

log = logging.getLogger("tidings.verify")


@dataclass(frozen=True, slots=True)
class StartInput:
    to: str
    channel: Channel = Channel.SMS
    locale: str | None = None
    code_length: int | None = None
    template: str | None = None
    app_name: str | None = None
    client_ip: str | None = None
    code: str | None = None
    """The caller's own code (Twilio's ``CustomCode``), where the operator allows it; a resend keeps the first."""


@dataclass(frozen=True, slots=True)
class Address:
    to: str
    country: str | None


class Verifications:
    def __init__(self, settings: Settings, store: Store, queue: Queue, sealer: Sealer, tally: Tally) -> None:
        """``tally`` counts the codes started and approved for ``GET /v1/stats``."""
        self.settings = settings
        self.tally = tally
        self.verify = settings.verify
        self.store = store
        self.queue = queue
        self.sealer = sealer
        self.templates = settings.verify.all_templates()
        self.test_numbers = {
            parse_phone(number).e164 if number.startswith("+") else number: spec
            for number, spec in settings.verify.test_numbers.items()
        }

    def address(self, raw: str, channel: Channel) -> Address:
        """The canonical address, or InvalidInput naming the ``to`` field."""
        try:
            if channel is Channel.EMAIL:
                return Address(parse_email(raw), None)
            phone = parse_phone(raw, self.settings.region)
        except InvalidAddress as exc:
            raise InvalidInput(f"to: {exc}", field="to") from None
        return Address(phone.e164, phone.region)

    def _test_code(self, to: str, now: float) -> str | None:
        spec = self.test_numbers.get(to)
        if spec is None:
            return None
        if spec.until is not None and dt.datetime.fromtimestamp(now, dt.UTC).date() > spec.until:
            return None
        return spec.code

    async def start(self, request: StartInput, now: float | None = None) -> Started:
        now = time.time() if now is None else now
        address = self.address(request.to, request.channel)
        test_code = self._test_code(address.to, now)
        allowed = self.verify.allowed_countries
        phone = request.channel is Channel.SMS
        if test_code is None and allowed and phone and address.country not in allowed:
            # A number of no country (+800, +881-883, +979: global services, satellite phones) is outside every list,
            # and those ranges are where SMS pumping goes.
            raise Unprocessable(
                f"sending to {address.country or 'non-geographic'} numbers is not allowed here",
                code="country_not_allowed",
                field="to",
                country=address.country,
            )
        template = request.template or "verification"
        if template not in self.templates:
            raise InvalidInput(f"template: no template named {template!r}", field="template")
        id = new_id("ver", now, os.urandom(RANDOM_BYTES))
        code = (
            test_code
            or request.code
            or otp.generate_code(request.code_length or self.verify.code_length, secrets.randbelow)
        )
        fresh = Verification(
            id=id,
            to=address.to,
            channel=request.channel,
            status=Status.PENDING,
            sealed_code=self.sealer.seal(code, id),
            locale=templates.pick_locale(request.locale, self.templates[template], self.verify.default_locale),
            app_name=request.app_name or self.verify.app_name,
            template=request.template,
            created_at=now,
            expires_at=now + self.verify.ttl,
            updated_at=now,
            max_checks=self.verify.max_checks,
            max_sends=self.verify.max_sends,
            last_sent_at=now,
            is_test=test_code is not None,
            country=address.country,
        )
        limits = (
            []
            if test_code is not None
            else abuse.limits_for_send(
                self.settings.limits,
                to=address.to,
                country=address.country,
                is_phone=phone,
                client_ip=request.client_ip,
            )
        )
        chain = self.verify.sms_providers if request.channel is Channel.SMS else self.verify.email_providers
        if not chain and test_code is None:
            raise Unprocessable(
                f"no provider is configured for the {request.channel.value} channel",
                code="channel_not_configured",
                field="channel",
            )
        job = (
            None
            if test_code is not None
            else Job(
                id="",  # the store names it after the send it is
                kind="verification",
                ref=id,
                lane=chain[0],
                priority=PRIORITY_VERIFICATION,
                run_at=now,
                expires_at=fresh.expires_at,
                payload=SendPayload(chain=chain),
            )
        )
        if job is not None and self.queue.queued >= self.settings.dispatch.max_queue:
            raise QueueFull
        result = await self.store.start_verification(
            StartRequest(address.to, request.channel, fresh, limits, job, self.verify.resend_cooldown), now
        )
        if isinstance(result, Refused):
            if result.error == "budget_exhausted":
                log.error("budget exhausted, sends refused: %s (country %s)", result.message, address.country)
            raise _refusal(result)
        if not result.resent:
            self.tally.count("verifications.started")
        return result

    async def check(self, lookup: Lookup, code: str, now: float | None = None) -> CheckResult:
        if lookup.to is not None:
            channel = Channel.EMAIL if "@" in lookup.to else Channel.SMS
            lookup = Lookup(to=self.address(lookup.to, channel).to)
        result = await self.store.check_verification(
            lookup,
            lambda v: self.sealer.matches(v.sealed_code, v.id, code),
            time.time() if now is None else now,
        )
        if result is None:
            raise NotFound("no verification for that id or address", code="verification_not_found")
        if isinstance(result, Refused):
            raise _refusal(result)
        if result.valid:
            self.tally.count("verifications.approved")
        return result

    async def approve(self, id: str, now: float | None = None) -> Verification:
        """Approve a pending verification without its code (Twilio's ``Status=approved``, for an app that checks a
        code of its own): the store's atomic check step with a code that always matches, so it approves at most
        once, counts as a check, and is refused as a check is once the verification is over."""
        result = await self.store.check_verification(Lookup(id=id), _any_code, time.time() if now is None else now)
        if result is None:
            raise NotFound(f"no verification {id[:64]!r}", code="verification_not_found")
        if isinstance(result, Refused):
            raise _refusal(result)
        self.tally.count("verifications.approved")
        return result.verification

    async def get(self, id: str) -> Verification:
        verification = await self.store.get_verification(id)
        if verification is None:
            raise NotFound(f"no verification {id[:64]!r}", code="verification_not_found")
        return otp.settle(verification, time.time())

    async def page(
        self, to: str | None, status: Status | None, after: Position | None, limit: int
    ) -> list[Verification]:
        """Newest first, each as ``get`` shows it, and ``status`` as shown (a pending one past its expiry is
        expired); ``to`` is read as a start reads it (E.164, or an address), on either channel."""
        now = time.time()
        address = None if to is None else self.address(to, Channel.EMAIL if "@" in to else Channel.SMS).to
        found = await self.store.list_verifications(address, status, after, limit, now)
        return [otp.settle(verification, now) for verification in found]

    async def cancel(self, id: str) -> Verification:
        result = await self.store.cancel_verification(id, time.time())
        if result is None:
            raise NotFound(f"no verification {id[:64]!r}", code="verification_not_found")
        if isinstance(result, Refused):
            raise _refusal(result, conflict=True)
        return result

    async def prepare(self, jobs: list[Job], now: float) -> list[OutboundMessage | Drop]:
        """The messages for a batch of leased jobs, read in one round trip."""
        found = await self.store.get_verifications([job.ref for job in jobs])
        return [
            self.message(found[job.ref], job, now) if job.ref in found else Drop("gone", failed=False) for job in jobs
        ]

    def message(self, verification: Verification, job: Job, now: float) -> OutboundMessage | Drop:
        """What to send for a queued job, or why not to: a code that expired or was used is not sent."""
        status = otp.current_status(verification, now)
        if status is not Status.PENDING:
            return Drop(status.value, failed=False)
        code = self.sealer.unseal(verification.sealed_code, verification.id)
        texts = self.templates.get(verification.template or "verification", self.templates["verification"])
        text = templates.render(
            texts[templates.pick_locale(verification.locale, texts, self.verify.default_locale)],
            app_name=verification.app_name,
            code=code,
            ttl=verification.expires_at - now,
        )
        subject = None
        if verification.channel is Channel.EMAIL:
            subject_template = templates.EMAIL_SUBJECTS[
                templates.pick_locale(verification.locale, templates.EMAIL_SUBJECTS, self.verify.default_locale)
            ]
            subject = subject_template.format(app_name=verification.app_name)
        return OutboundMessage(
            to=verification.to,
            text=text,
            idempotency_key=job.id,
            subject=subject,
            params={
                "code": code,
                "app_name": verification.app_name,
                "minutes": str(max(1, round((verification.expires_at - now) / 60))),
            },
            locale=verification.locale,
        )


def _any_code(verification: Verification) -> bool:
    return True


def _refusal(refused: Refused, *, conflict: bool = False) -> Exception:
    """The API error for a refusal from ``core.otp`` or a limit; ``conflict``: a change refused because of the
    state the verification is in (409)."""
    if conflict:
        return Conflict(refused.message, code=refused.error)
    if refused.error in otp.FINISHED_ERRORS:
        return NotFound(refused.message, code=refused.error)
    return RateLimited(refused.message, code=refused.error, retry_after=refused.retry_after or 1)
