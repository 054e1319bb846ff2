"""An Alibaba Cloud dysms emulator: ``SendSms`` with the signature-version-1.0 check the real service makes
(same algorithm, recomputed here), a timestamp window, nonce reuse, and its documented error codes."""

from __future__ import annotations

import datetime as dt
import hmac
import itertools
import json
import uuid
from typing import Any

from aiohttp import web

from tidings.providers.aliyun import sign
from tidings.testing.emulator import Emulator, application

REQUIRED = (
    "AccessKeyId",
    "Action",
    "PhoneNumbers",
    "SignName",
    "TemplateCode",
    "Signature",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureVersion",
    "Timestamp",
    "Version",
)


def create_app(
    access_key_id: str = "test-key-id", access_key_secret: str = "test-key-secret", **options: Any
) -> web.Application:
    emulator = Emulator(**options)
    app = application(emulator)
    nonces: set[str] = set()
    biz_ids = itertools.count(1)

    def answer(code: str, message: str, status: int = 400, **extra: Any) -> web.Response:
        body = {"Code": code, "Message": message, "RequestId": str(uuid.uuid4()).upper(), **extra}
        return web.json_response(body, status=status)

    async def rpc(request: web.Request) -> web.Response:
        params = (
            dict(request.query) if request.method == "GET" else {k: str(v) for k, v in (await request.post()).items()}
        )
        failing = await emulator.arrive()
        missing = [name for name in REQUIRED if not params.get(name)]
        if missing:
            return answer("MissingParameter", f'The input parameter "{missing[0]}" that is mandatory is not supplied.')
        if params["AccessKeyId"] != access_key_id:
            return answer("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        presented = params.pop("Signature")
        if not hmac.compare_digest(presented, sign(request.method, params, access_key_secret)):
            return answer("SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
        try:
            sent_at = dt.datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            return answer("InvalidTimeStamp.Format", "Specified time stamp is not valid.")
        if abs((dt.datetime.now(dt.UTC) - sent_at).total_seconds()) > 900:
            return answer("InvalidTimeStamp.Expired", "Specified time stamp or date header is expired.")
        if params["SignatureNonce"] in nonces:
            return answer("SignatureNonceUsed", "Specified signature nonce was used already.")
        nonces.add(params["SignatureNonce"])
        if params["Action"] != "SendSms":
            return answer("InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
        number = params["PhoneNumbers"]
        if not number.isdigit() or not 7 <= len(number) <= 15:
            return answer("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号", 200)
        try:
            template_params = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            return answer("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值", 200)
        if failing:
            return answer("isv.BUSINESS_LIMIT_CONTROL", "触发号码天级流控Permits:10", 200)
        text = f"【{params['SignName']}】{params['TemplateCode']} {json.dumps(template_params, ensure_ascii=False)}"
        emulator.accept(number, text, params.get("OutId"))
        return answer("OK", "OK", 200, BizId=f"{next(biz_ids):018d}^0")

    app.router.add_route("*", "/", rpc)
    return app
