"""Yunpian (云片) single send: ``POST /v2/sms/single_send.json`` with ``apikey``, ``mobile``, ``text``.

The text must begin with the 【signature】 registered with Yunpian. Answers are JSON with ``code`` 0 on success;
other codes are documented as retryable (system busy or timing out) or final (bad key, no balance, number refused).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr

from tidings.core.types import Delivered, OutboundMessage, Permanent, SendOutcome, Transient
from tidings.providers.base import Provider, ProviderSettings, secret
from tidings.providers.client import Response, outcome_for_status

# Codes Yunpian documents as worth retrying: -5 (too many requests for the account), -50..-53 (system errors and
# timeouts on their side). 8, 9, 22, 33 and 43 are frequency limits for one number: retry after a while.
RETRYABLE: dict[int, float | None] = {-5: None, -50: None, -51: None, -52: None, -53: None}
NUMBER_FREQUENCY: dict[int, float] = {8: 30.0, 22: 60.0, 33: 30.0, 9: 3600.0, 43: 3600.0}


class YunpianSettings(ProviderSettings):
    base_url: str = "https://sms.yunpian.com"
    apikey: SecretStr = SecretStr("")
    signature: str | None = None
    """Added as 【signature】 in front of a text that carries none; the app name when not set."""


class Yunpian(Provider):
    name = "yunpian"
    Settings: ClassVar[type[ProviderSettings]] = YunpianSettings
    settings: YunpianSettings

    async def send(self, message: OutboundMessage) -> SendOutcome:
        text = message.text
        signature = self.settings.signature or message.params.get("app_name")
        if signature and not text.startswith("【"):
            text = f"【{signature}】{text}"
        form = {
            "apikey": secret(self.settings.apikey),
            "mobile": mobile(message.to),
            "text": text,
            "uid": message.idempotency_key,
        }
        answer = await self.http.request(
            "POST", f"{self.settings.base_url.rstrip('/')}/v2/sms/single_send.json", data=form
        )
        if isinstance(answer, Transient):
            return answer
        return read_answer(answer)


def mobile(e164: str) -> str:
    """Mainland numbers without their country code, as Yunpian wants them; others in E.164."""
    return e164[3:] if e164.startswith("+86") else e164


def read_answer(answer: Response) -> SendOutcome:
    body = answer.json()
    if not isinstance(body, dict) or "code" not in body:
        return outcome_for_status(answer) if not answer.ok else Transient("yunpian_bad_answer", answer.text[:200])
    code = body["code"]
    detail = str(body.get("detail") or body.get("msg") or "")
    if code == 0:
        return Delivered(str(body.get("sid", "")))
    error = f"yunpian_{code}"
    if code in RETRYABLE:
        return Transient(error, detail)
    if code in NUMBER_FREQUENCY:
        return Transient(error, detail, NUMBER_FREQUENCY[code])
    if answer.status == 429 or answer.status >= 500:
        return Transient(error, detail)
    return Permanent(error, detail)
