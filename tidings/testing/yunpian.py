"""A Yunpian emulator: ``POST /v2/sms/single_send.json`` checked and answered as Yunpian documents it.

Errors come as ``{"http_status_code", "code", "msg", "detail"}`` with that HTTP status. Injected failures answer
Yunpian's system error (-50, HTTP 500); ``same_number_interval`` turns on its per-number frequency limit (code 33).
"""

from __future__ import annotations

import itertools
import re
import time
from typing import Any

from aiohttp import web

from tidings.testing.emulator import Emulator, application

_CHINA_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_INTERNATIONAL = re.compile(r"^\+[1-9]\d{6,14}$")
_SIGNATURE = re.compile(r"^【[^【】]{2,20}】")


def answer(status: int, code: int, msg: str, detail: str = "") -> web.Response:
    return web.json_response({"http_status_code": status, "code": code, "msg": msg, "detail": detail}, status=status)


def create_app(apikey: str = "test-apikey", same_number_interval: float = 0.0, **options: Any) -> web.Application:
    """An emulator accepting one apikey. ``same_number_interval``: seconds one number must wait between messages
    (0 is off); ``options`` go to ``Emulator`` (latency, failure_rate, fail_first, seed)."""
    emulator = Emulator(**options)
    app = application(emulator)
    sids = itertools.count(10_000_000)
    last_send: dict[str, float] = {}

    async def single_send(request: web.Request) -> web.Response:
        form = await request.post()
        failing = await emulator.arrive()
        if form.get("apikey") != apikey:
            return answer(401, -1, "非法的apikey", "apikey不正确或没有授权")
        mobile, text = str(form.get("mobile", "")), str(form.get("text", ""))
        if not mobile or not text:
            return answer(400, 1, "请求参数缺失", f"参数 {'mobile' if not mobile else 'text'} 必须传入")
        if not (_CHINA_MOBILE.match(mobile) or _INTERNATIONAL.match(mobile)):
            return answer(400, 2, "请求参数格式错误", "参数 mobile 格式不正确，mobile手机号格式不正确")
        if not _SIGNATURE.match(text):
            return answer(400, 5, "未自动匹配到合适的模板", "短信内容缺少签名【】或不匹配任何已审核的模板")
        if text.count("【") > 1:
            return answer(400, 16, "签名格式不正确", "短信内容不能包含多个签名【】符号")
        if failing:
            return answer(500, -50, "未知异常", "系统出现未知的异常情况")
        now = time.monotonic()
        if same_number_interval and now - last_send.get(mobile, -same_number_interval) < same_number_interval:
            return answer(400, 33, "超过频率", "同一个手机号同一验证码模板每30秒只能发送一条")
        last_send[mobile] = now
        emulator.accept(mobile, text, str(form.get("uid") or "") or None)
        return web.json_response(
            {"code": 0, "msg": "发送成功", "count": 1, "fee": 0.05, "unit": "RMB", "mobile": mobile, "sid": next(sids)}
        )

    app.router.add_post("/v2/sms/single_send.json", single_send)
    return app
