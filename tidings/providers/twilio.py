"""Twilio Programmable Messaging: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded, with
HTTP Basic auth (Account SID and Auth Token).

Twilio answers 201 with the Message resource, or an error JSON ``{"code", "message", "more_info", "status"}``.
A 429 (code 20429) is documented as never processed and always safe to retry. Codes 30001-30010 are delivery
statuses reported later by callbacks, never an answer to this request, so they do not appear here.
"""

from __future__ import annotations

import base64
from typing import ClassVar, Self

from pydantic import Field, SecretStr, model_validator

from tidings.core.types import Delivered, OutboundMessage, Permanent, SendOutcome, Transient
from tidings.outbound.client import Response, retry_after
from tidings.providers.base import Provider, ProviderSettings, secret

RETRYABLE = frozenset({20429, 20500, 20503})
"""Too many concurrent requests, internal error, service unavailable: a retry can cure these."""

PERMANENT = frozenset({20003, 20404, 21211, 21212, 21408, 21606, 21610, 21612, 21614, 21617})
"""Documented final refusals, for reference (every other 4xx code is final too): authentication failed, account
not found, invalid To, invalid From, region not enabled, From not SMS-capable, recipient unsubscribed, route not
reachable, To not a mobile number, body too long."""


class TwilioSettings(ProviderSettings):
    base_url: str = "https://api.twilio.com"
    account_sid: str
    auth_token: SecretStr
    from_: str | None = Field(None, alias="from")
    """A Twilio number in E.164 or an alphanumeric sender ID."""
    messaging_service_sid: str | None = None
    """Preferred over ``from`` when set: Twilio then picks the sender from the service's pool."""

    @model_validator(mode="after")
    def _has_sender(self) -> Self:
        if not self.from_ and not self.messaging_service_sid:
            raise ValueError("twilio needs `from` or `messaging_service_sid`")
        return self


class Twilio(Provider):
    name = "twilio"
    Settings: ClassVar[type[ProviderSettings]] = TwilioSettings
    settings: TwilioSettings

    async def send(self, message: OutboundMessage) -> SendOutcome:
        settings = self.settings
        form = {"To": message.to, "Body": message.text}
        if settings.messaging_service_sid:
            form["MessagingServiceSid"] = settings.messaging_service_sid
        else:
            form["From"] = settings.from_ or ""
        url = f"{settings.base_url.rstrip('/')}/2010-04-01/Accounts/{settings.account_sid}/Messages.json"
        answer = await self.http.request("POST", url, data=form, headers=self._headers(message))
        if isinstance(answer, Transient | Permanent):
            return answer
        return read_answer(answer)

    def _headers(self, message: OutboundMessage) -> dict[str, str]:
        credentials = f"{self.settings.account_sid}:{secret(self.settings.auth_token)}".encode()
        # Twilio keeps no idempotency for Messages; the header costs nothing and lets a proxy or log correlate.
        return {
            "Authorization": "Basic " + base64.b64encode(credentials).decode(),
            "I-Twilio-Idempotency-Token": message.idempotency_key,
        }


def read_answer(answer: Response) -> SendOutcome:
    """Read Twilio's answer: 2xx is accepted; errors by their Twilio code, else by HTTP status."""
    body = answer.json()
    if answer.ok:
        # Accepted: even an odd body must not make us send the message again elsewhere.
        return Delivered(str(body["sid"]) if isinstance(body, dict) and body.get("sid") else None)
    code = body.get("code") if isinstance(body, dict) else None
    detail = str(body.get("message", "")) if isinstance(body, dict) else answer.text[:200]
    error = f"twilio_{code}" if code is not None else f"http_{answer.status}"
    if code in RETRYABLE or answer.status in (408, 429) or answer.status >= 500:
        return Transient(error, detail, retry_after(answer.headers))
    return Permanent(error, detail)
