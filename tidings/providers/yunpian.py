"""Yunpian (云片) single send: ``POST /v2/sms/single_send.json`` with ``apikey``, ``mobile``, ``text`` and ``uid``.

The text must begin with the 【signature】 registered with Yunpian. Answers are JSON with ``code`` 0 on success
(``sid`` is the message id); other codes are Yunpian's documented ones, read as below.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr

from tidings.core.types import Delivered, OutboundMessage, Permanent, SendOutcome, Transient
from tidings.providers.base import Provider, ProviderSettings, secret
from tidings.providers.client import Response, outcome_for_status

RETRYABLE = frozenset({-4, -5, -50, -51, -52, -53})
"""Call quota or frequency exceeded for the account (-4, -5); unknown error, system busy, or a failure while
submitting on Yunpian's side (-50..-53)."""

NUMBER_FREQUENCY: dict[int, float] = {
    8: 30.0,  # the same content to the same number within 30 s
    33: 30.0,  # one message per 30 s per number and verification template
    9: 300.0,  # the same content to the same number more than 3 times in 5 min
    22: 3600.0,  # too many to the same number within 1 h
    17: 3600.0,  # too many to the same number within 24 h
    43: 3600.0,  # too many to the same number in one day
}
"""Per-number frequency limits, with how long to wait before the number can be sent to again. The long ones
outlast a code's validity, so the dispatcher fails over instead of waiting."""

PERMANENT = frozenset({1, 2, 3, 4, 5, 7, 10, 13, 15, 16, 20, 23, -1, -2, -3})
"""For reference (any other code is final too): missing or malformed parameter, no balance, keyword blocked, no
matching template, template unusable, number blacklisted, marketing paused, signature mismatch or malformed,
unsupported region, bad apikey, API or IP not allowed."""


class YunpianSettings(ProviderSettings):
    base_url: str = "https://sms.yunpian.com"
    apikey: SecretStr
    signature: str | None = None
    """Put as 【signature】 in front of a text that starts with none; the app name is used when not set."""


class Yunpian(Provider):
    name = "yunpian"
    Settings: ClassVar[type[ProviderSettings]] = YunpianSettings
    settings: YunpianSettings

    async def send(self, message: OutboundMessage) -> SendOutcome:
        form = {
            "apikey": secret(self.settings.apikey),
            "mobile": mobile(message.to),
            "text": signed(message, self.settings.signature),
            "uid": message.idempotency_key,
        }
        url = f"{self.settings.base_url.rstrip('/')}/v2/sms/single_send.json"
        answer = await self.http.request("POST", url, data=form)
        if isinstance(answer, Transient):
            return answer
        return read_answer(answer)


def signed(message: OutboundMessage, signature: str | None) -> str:
    """The text with a leading 【signature】, which Yunpian refuses to send without (code 5)."""
    signature = signature or message.params.get("app_name")
    if signature and not message.text.startswith("【"):
        return f"【{signature}】{message.text}"
    return message.text


def mobile(e164: str) -> str:
    """Mainland numbers as their 11 bare digits, as Yunpian wants them; others stay E.164 with their ``+``."""
    return e164.removeprefix("+86") if e164.startswith("+86") else e164


def read_answer(answer: Response) -> SendOutcome:
    body = answer.json()
    if not isinstance(body, dict) or not isinstance(body.get("code"), int):
        if answer.ok:
            return Transient("yunpian_bad_answer", answer.text[:200])
        return outcome_for_status(answer)
    code = body["code"]
    if code == 0:
        return Delivered(str(body["sid"]) if body.get("sid") is not None else None)
    error, detail = f"yunpian_{code}", str(body.get("detail") or body.get("msg") or "")
    if code in NUMBER_FREQUENCY:
        return Transient(error, detail, NUMBER_FREQUENCY[code])
    if code in RETRYABLE or answer.status == 429 or answer.status >= 500:
        return Transient(error, detail)
    return Permanent(error, detail)
