"""An Alibaba Cloud dysms emulator: ``SendSms`` with the checks the real service makes before sending: the
signature-version-1.0 signature (recomputed with the same function the provider signs with), a known AccessKeyId,
a Timestamp within 15 minutes, a SignatureNonce not seen before, the required parameters, TemplateParam as a JSON
object of strings.

Injected failures answer API flow control (``Throttling.User``); ``same_number_interval`` turns on the per-number
flow control (``isv.BUSINESS_LIMIT_CONTROL``, "触发分钟级流控Permits:1"), answered with HTTP 200 as dysms does.
"""

from __future__ import annotations

import datetime as dt
import hmac
import itertools
import json
import re
import time
import uuid
from typing import Any

from aiohttp import web

from tidings.providers.aliyun import sign
from tidings.testing.emulator import Emulator, application

REQUIRED = (
    "AccessKeyId",
    "Action",
    "Signature",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureVersion",
    "Timestamp",
    "Version",
    "PhoneNumbers",
    "SignName",
    "TemplateCode",
)
DEFAULT_TEMPLATE = "您的验证码为：${code}，请勿泄露于他人！"
NONCE_WINDOW = 900.0
_MAINLAND = re.compile(r"^1[3-9]\d{9}$")
_INTERNATIONAL = re.compile(r"^[1-9]\d{7,14}$")
_VARIABLE = re.compile(r"\$\{(\w+)\}")


def answer(code: str, message: str, status: int = 200, **extra: Any) -> web.Response:
    body = {"Code": code, "Message": message, "RequestId": str(uuid.uuid4()).upper(), **extra}
    return web.json_response(body, status=status)


def create_app(
    access_key_id: str = "test-key-id",
    access_key_secret: str = "test-key-secret",
    *,
    sign_names: set[str] | None = None,
    templates: dict[str, str] | None = None,
    same_number_interval: float = 0.0,
    **options: Any,
) -> web.Application:
    """An emulator accepting one AccessKey. ``sign_names`` and ``templates`` (TemplateCode to text with ``${name}``
    variables) are the approved ones, any when None; ``options`` go to ``Emulator``."""
    emulator = Emulator(**options)
    app = application(emulator)
    nonces: dict[str, float] = {}
    last_send: dict[str, float] = {}
    biz_ids = itertools.count(1)

    def fresh_nonce(nonce: str, now: float) -> bool:
        if len(nonces) > 100_000:  # forget nonces older than the timestamp window, as they can no longer pass it
            for old in [key for key, seen in nonces.items() if now - seen > NONCE_WINDOW]:
                del nonces[old]
        if nonce in nonces:
            return False
        nonces[nonce] = now
        return True

    async def rpc(request: web.Request) -> web.Response:
        params = dict(request.query)
        if request.method == "POST":
            params.update((key, str(value)) for key, value in (await request.post()).items())
        failing = await emulator.arrive()
        for name in REQUIRED:
            if not params.get(name):
                return answer(f"Missing{name}", f"{name} is mandatory for this action.", 400)
        if params["AccessKeyId"] != access_key_id:
            return answer("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        presented = params.pop("Signature")
        if not hmac.compare_digest(presented, sign(request.method, params, access_key_secret)):
            return answer("SignatureDoesNotMatch", "Specified signature is not matched with our calculation.", 400)
        try:
            sent_at = dt.datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            return answer("InvalidTimeStamp.Format", "Specified time stamp is not valid.", 400)
        if abs(time.time() - sent_at.timestamp()) > NONCE_WINDOW:
            return answer("InvalidTimeStamp.Expired", "Specified time stamp or date header is expired.", 400)
        if not fresh_nonce(params["SignatureNonce"], time.time()):
            return answer("SignatureNonceUsed", "Specified signature nonce was used already.", 400)
        if params["Action"] != "SendSms":
            return answer("InvalidAction.NotFound", "Specified api is not found.", 404)
        if failing:
            return answer("Throttling.User", "Request was denied due to user flow control.", 400)
        number = params["PhoneNumbers"]
        if not (_MAINLAND.match(number) or _INTERNATIONAL.match(number)):
            return answer("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        if sign_names is not None and params["SignName"] not in sign_names:
            return answer("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        template = templates.get(params["TemplateCode"]) if templates is not None else DEFAULT_TEMPLATE
        if template is None:
            return answer("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        try:
            values = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            values = None
        if not isinstance(values, dict) or not all(isinstance(value, str) for value in values.values()):
            return answer("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        missing = [name for name in _VARIABLE.findall(template) if name not in values]
        if missing:
            return answer("isv.TEMPLATE_MISSING_PARAMETERS", f"模板缺少变量: {missing[0]}")
        now = time.monotonic()
        if same_number_interval and now - last_send.get(number, -same_number_interval) < same_number_interval:
            return answer("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1")
        last_send[number] = now
        text = f"【{params['SignName']}】" + _VARIABLE.sub(lambda match: values[match.group(1)], template)
        emulator.accept(number, text, params.get("OutId"))
        return answer("OK", "OK", BizId=f"{next(biz_ids):018d}^0")

    app.router.add_route("*", "/", rpc)
    return app
