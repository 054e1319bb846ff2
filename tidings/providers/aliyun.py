"""Alibaba Cloud SMS (dysms) ``SendSms``: an RPC-style request signed with signature version 1.0 (HMAC-SHA1 over
the sorted, percent-encoded parameters), the code passed as ``TemplateParam`` JSON to a registered template."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import quote

from pydantic import SecretStr

from tidings.core.types import Delivered, OutboundMessage, Permanent, SendOutcome, Transient
from tidings.providers.base import Provider, ProviderSettings, secret
from tidings.providers.client import Response

RETRYABLE = {
    "isv.BUSINESS_LIMIT_CONTROL",
    "Throttling.User",
    "Throttling",
    "isp.SYSTEM_ERROR",
    "ServiceUnavailable",
    "InternalError",
    "SignatureNonceUsed",
}


class AliyunSettings(ProviderSettings):
    base_url: str = "https://dysmsapi.aliyuncs.com"
    access_key_id: str = ""
    access_key_secret: SecretStr = SecretStr("")
    sign_name: str = ""
    template_code: str = ""


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as the signature needs it: space is %20, ``*`` is %2A, ``~`` stays."""
    return quote(value, safe="~")


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"


def sign(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    """Signature version 1.0: base64 of HMAC-SHA1 keyed with the secret and ``&``."""
    digest = hmac.new(f"{access_key_secret}&".encode(), string_to_sign(method, params).encode(), hashlib.sha1)
    return base64.b64encode(digest.digest()).decode()


def phone_numbers(e164: str) -> str:
    """Mainland numbers without +86; others with their country code and no +."""
    return e164[3:] if e164.startswith("+86") else e164.lstrip("+")


class Aliyun(Provider):
    name = "aliyun"
    Settings: ClassVar[type[ProviderSettings]] = AliyunSettings
    settings: AliyunSettings

    async def send(self, message: OutboundMessage) -> SendOutcome:
        settings = self.settings
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
            "TemplateParam": json.dumps({"code": message.params.get("code", "")}),
            "Timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
        }
        params["Signature"] = sign("POST", params, secret(settings.access_key_secret))
        answer = await self.http.request("POST", f"{settings.base_url.rstrip('/')}/", data=params)
        if isinstance(answer, Transient):
            return answer
        return read_answer(answer)


def read_answer(answer: Response) -> SendOutcome:
    body = answer.json()
    if not isinstance(body, dict):
        return Transient(f"http_{answer.status}", answer.text[:200])
    code = str(body.get("Code", ""))
    if code == "OK":
        return Delivered(body.get("BizId"))
    error, message = f"aliyun_{code}", str(body.get("Message", ""))
    if code in RETRYABLE or answer.status >= 500:
        return Transient(error, message)
    return Permanent(error, message)
