"""Twilio Programmable Messaging: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded, with
HTTP Basic auth (Account SID and Auth Token)."""

from __future__ import annotations

import base64
from typing import ClassVar

from pydantic import Field, SecretStr

from tidings.core.types import Delivered, OutboundMessage, Permanent, SendOutcome, Transient
from tidings.providers.base import Provider, ProviderSettings, secret
from tidings.providers.client import Response, retry_after

# Twilio error codes that a retry can cure; every other 4xx code is final (21211 invalid To, 21408 region not
# enabled, 21610 unsubscribed, 21614 not a mobile number, 20003 authentication failed, 21606 From not valid...).
RETRYABLE = {20429, 20500, 20503, 30001}


class TwilioSettings(ProviderSettings):
    base_url: str = "https://api.twilio.com"
    account_sid: str = ""
    auth_token: SecretStr = SecretStr("")
    from_: str | None = Field(None, alias="from")
    messaging_service_sid: str | None = None


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
        credentials = base64.b64encode(f"{settings.account_sid}:{secret(settings.auth_token)}".encode()).decode()
        headers = {"Authorization": f"Basic {credentials}", "I-Twilio-Idempotency-Token": message.idempotency_key}
        answer = await self.http.request("POST", url, data=form, headers=headers)
        if isinstance(answer, Transient):
            return answer
        return read_answer(answer)


def read_answer(answer: Response) -> SendOutcome:
    body = answer.json()
    if answer.ok and isinstance(body, dict):
        return Delivered(body.get("sid"))
    code = body.get("code") if isinstance(body, dict) else None
    message = str(body.get("message", "")) if isinstance(body, dict) else answer.text[:200]
    error = f"twilio_{code}" if code is not None else f"http_{answer.status}"
    if answer.status == 429 or answer.status >= 500 or code in RETRYABLE:
        return Transient(error, message, retry_after(answer.headers))
    return Permanent(error, message)
