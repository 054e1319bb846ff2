"""Yunpian (云片): ``POST /v2/sms/single_send.json`` for one message, ``/v2/sms/multi_send.json`` for many.

The text must begin with the 【signature】 registered with Yunpian. Answers are JSON with ``code`` 0 on success
(``sid`` is the message id); other codes are Yunpian's documented ones, read as below.

A leased batch, which the dispatcher hands over in one ``send_many``, goes as one ``multi_send`` of up to
``batch_size`` messages, and so do sends started one at a time in the same turn (on a lane with a rate):
``mobile`` and ``text`` are comma-separated lists, each text URL-encoded first, and the answer's ``data`` holds one
result per number, in order. A lone send still goes alone, with its ``uid``, so a batch never makes a message wait.

A ``multi_send`` carries no ``uid``: Yunpian takes one for a whole batch ("批量接口同一批短信只能有一个uid"), not one
per number, and no one value is every message's own id (any message's would mark the others as copies of it). A
message sent again after a crash carries its id only with ``batch_size = 1`` (see docs/delivery.md).
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote, quote_plus

from pydantic import Field, SecretStr

from tidings.core.types import Delivered, OutboundMessage, Permanent, SendOutcome, Transient
from tidings.outbound.client import HttpClient, Response, outcome_for_status
from tidings.providers.base import Provider, ProviderSettings, secret
from tidings.runtime.batching import TurnBatch

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


MAX_BATCH = 1000
"""The most numbers Yunpian takes in one ``multi_send``."""


class YunpianSettings(ProviderSettings):
    base_url: str = "https://sms.yunpian.com"
    apikey: SecretStr
    signature: str | None = None
    """Put as 【signature】 in front of a text that starts with none; the app name is used when not set."""
    batch_size: int = Field(MAX_BATCH, ge=1, le=MAX_BATCH)
    """At most this many messages in one ``multi_send``; 1 sends every message on its own, with its ``uid``."""


class Yunpian(Provider):
    name = "yunpian"
    Settings: ClassVar[type[ProviderSettings]] = YunpianSettings
    settings: YunpianSettings

    def __init__(self, settings: ProviderSettings, http: HttpClient) -> None:
        super().__init__(settings, http)
        self.batch_size = self.settings.batch_size
        self._batch: TurnBatch[OutboundMessage, SendOutcome] | None = (
            TurnBatch(self.send_many, self.batch_size) if self.batch_size > 1 else None
        )

    async def send(self, message: OutboundMessage) -> SendOutcome:
        if self._batch is None:  # no batching: no future and task per send either
            return await self._send_one(message)
        return await self._batch(message)

    async def send_many(self, messages: list[OutboundMessage]) -> list[SendOutcome]:
        if len(messages) == 1:
            return [await self._send_one(messages[0])]
        body = multi_send_form(
            secret(self.settings.apikey),
            [mobile(message.to) for message in messages],
            [signed(message, self.settings.signature) for message in messages],
        )
        answer = await self.http.request("POST", self._url("multi_send"), data=body, headers=_FORM)
        if isinstance(answer, Transient | Permanent):
            return [answer] * len(messages)
        return read_many(answer, len(messages))

    async def _send_one(self, message: OutboundMessage) -> SendOutcome:
        form = {
            "apikey": secret(self.settings.apikey),
            "mobile": mobile(message.to),
            "text": signed(message, self.settings.signature),
            "uid": message.idempotency_key,
        }
        answer = await self.http.request("POST", self._url("single_send"), data=form)
        if isinstance(answer, Transient | Permanent):
            return answer
        return read_answer(answer)

    def _url(self, endpoint: str) -> str:
        return f"{self.settings.base_url.rstrip('/')}/v2/sms/{endpoint}.json"


_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def multi_send_form(apikey: str, mobiles: list[str], texts: list[str]) -> bytes:
    """The form of a ``multi_send``: each text URL-encoded, joined with commas, and the whole encoded again as a
    form field; done in one ``str.translate`` of each text (see ``_EncodedTwice``)."""
    text = "%2C".join(text.translate(_ENCODED_TWICE) for text in texts)
    return f"apikey={quote_plus(apikey)}&mobile={quote_plus(','.join(mobiles))}&text={text}".encode()


class _EncodedTwice(dict[int, str]):
    """A ``str.translate`` table from a character to what it becomes in a ``multi_send`` text: ``quote(c, safe="")``,
    encoded again as a form value (once encoded, a text holds only unreserved characters and ``%``, so encoding it
    again only turns ``%`` into ``%25``). Filled in as characters are met. ``quote`` looks each UTF-8 byte up in
    Python, and took 4.6 µs a message against 1.7 µs translated in C."""

    def __missing__(self, codepoint: int) -> str:
        encoded = quote(chr(codepoint), safe="").replace("%", "%25")
        if len(self) < _MOST_CHARACTERS_KEPT:  # texts carry an app name from requests: keep the table bounded
            self[codepoint] = encoded
        return encoded


_MOST_CHARACTERS_KEPT = 4096
_ENCODED_TWICE = _EncodedTwice()


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
    return read_result(body, answer.status)


def read_many(answer: Response, count: int) -> list[SendOutcome]:
    """A ``multi_send`` answer: one result per number in ``data``, or one error for the whole request."""
    body = answer.json()
    results = body.get("data") if isinstance(body, dict) else None
    if not isinstance(results, list):
        return [read_answer(answer)] * count
    if len(results) != count or not all(isinstance(r, dict) and isinstance(r.get("code"), int) for r in results):
        # Which numbers were sent cannot be told; trying again may repeat some, but loses none.
        return [Transient("yunpian_bad_answer", answer.text[:200])] * count
    return [read_result(result, answer.status) for result in results]


def read_result(body: dict, status: int) -> SendOutcome:
    code = body["code"]
    if code == 0:
        return Delivered(str(body["sid"]) if body.get("sid") is not None else None)
    error, detail = f"yunpian_{code}", str(body.get("detail") or body.get("msg") or "")
    if code in NUMBER_FREQUENCY:
        return Transient(error, detail, NUMBER_FREQUENCY[code])
    if code in RETRYABLE or status == 429 or status >= 500:
        return Transient(error, detail)
    return Permanent(error, detail)
