"""Alibaba Cloud SMS (dysms) ``SendSms``: an RPC-style request signed with signature version 1.0 (HMAC-SHA1 over
the sorted, percent-encoded parameters), the code passed as ``TemplateParam`` JSON to a registered template.

The signing functions are plain module functions so the emulator checks requests with the very same algorithm.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from typing import ClassVar, Literal
from urllib.parse import quote

from pydantic import SecretStr

from tidings.core.types import Delivered, OutboundMessage, Permanent, SendOutcome, Transient
from tidings.outbound.client import Response, outcome_for_status
from tidings.providers.base import Provider, ProviderSettings, secret

RETRYABLE = frozenset(
    {
        "isv.BUSINESS_LIMIT_CONTROL",  # per-number flow control: 1 a minute, 5 an hour, 10 a day by default
        "Throttling",
        "Throttling.User",
        "Throttling.Api",
        "isp.SYSTEM_ERROR",
        "ServiceUnavailable",
        "InternalError",
        "SignatureNonceUsed",  # a fresh nonce goes with every attempt
    }
)

PERMANENT = frozenset(
    {
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.INVALID_JSON_PARAM",
        "isv.AMOUNT_NOT_ENOUGH",
        "isv.BLACK_KEY_CONTROL_LIMIT",
        "isv.OUT_OF_SERVICE",
        "isp.RAM_PERMISSION_DENY",
        "InvalidAccessKeyId.NotFound",
        "SignatureDoesNotMatch",
    }
)
"""For reference; any code not in ``RETRYABLE`` is read as final."""

# The message of isv.BUSINESS_LIMIT_CONTROL names the window that was hit ("触发分钟级流控Permits:1").
_LIMIT_WINDOWS = (("分钟级", 60.0), ("小时级", 3600.0), ("天级", 86400.0))


TemplateParam = Literal["code", "app_name", "minutes"]


class AliyunSettings(ProviderSettings):
    base_url: str = "https://dysmsapi.aliyuncs.com"
    access_key_id: str
    access_key_secret: SecretStr
    sign_name: str
    template_code: str
    template_params: list[TemplateParam] = ["code"]
    """Which message parameters (``code``, ``app_name``, ``minutes``) the template names, as ``${code}``."""


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as the signature needs it: space is %20, ``*`` is %2A, ``~`` stays."""
    return quote(value, safe="~")


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"


def sign(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    """Signature version 1.0: base64 of HMAC-SHA1 over ``string_to_sign``, keyed with the secret and ``&``."""
    digest = hmac.new(f"{access_key_secret}&".encode(), string_to_sign(method, params).encode(), hashlib.sha1)
    return base64.b64encode(digest.digest()).decode()


def timestamp(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def phone_numbers(e164: str) -> str:
    """Mainland numbers without +86; others with their country code and no +."""
    return e164.removeprefix("+86") if e164.startswith("+86") else e164.lstrip("+")


class Aliyun(Provider):
    name = "aliyun"
    Settings: ClassVar[type[ProviderSettings]] = AliyunSettings
    settings: AliyunSettings

    async def send(self, message: OutboundMessage) -> SendOutcome:
        settings = self.settings
        template = {name: message.params[name] for name in settings.template_params if name in message.params}
        params = {
            "AccessKeyId": settings.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": message.idempotency_key,
            "PhoneNumbers": phone_numbers(message.to),
            "SignName": settings.sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "TemplateCode": settings.template_code,
            "TemplateParam": json.dumps(template, ensure_ascii=False, separators=(",", ":")),
            "Timestamp": timestamp(),
            "Version": "2017-05-25",
        }
        params["Signature"] = sign("POST", params, secret(settings.access_key_secret))
        answer = await self.http.request("POST", f"{settings.base_url.rstrip('/')}/", data=params)
        if isinstance(answer, Transient | Permanent):
            return answer
        return read_answer(answer)


def read_answer(answer: Response) -> SendOutcome:
    body = answer.json()
    if not isinstance(body, dict) or "Code" not in body:
        if answer.ok:
            return Transient("aliyun_bad_answer", answer.text[:200])
        return outcome_for_status(answer)
    code, detail = str(body["Code"]), str(body.get("Message", ""))
    if code == "OK":
        return Delivered(str(body["BizId"]) if body.get("BizId") else None)
    error = f"aliyun_{code}"
    if code == "isv.BUSINESS_LIMIT_CONTROL":
        wait = next((seconds for word, seconds in _LIMIT_WINDOWS if word in detail), None)
        return Transient(error, detail, wait)
    if code in RETRYABLE or answer.status == 429 or answer.status >= 500:
        return Transient(error, detail)
    return Permanent(error, detail)
