"""A Yunpian emulator: ``POST /v2/sms/single_send.json`` checked and answered as Yunpian documents it."""

from __future__ import annotations

import itertools
import re
import time
from typing import Any

from aiohttp import web

from tidings.testing.emulator import Emulator, application

_CHINA_MOBILE = re.compile(r"^1\d{10}$")
_INTERNATIONAL = re.compile(r"^\+[1-9]\d{6,14}$")


def create_app(apikey: str = "test-apikey", same_number_interval: float = 0.0, **options: Any) -> web.Application:
    emulator = Emulator(**options)
    app = application(emulator)
    sids = itertools.count(10_000_000)
    last_send: dict[str, float] = {}

    def answer(status: int, code: int, msg: str, detail: str = "", **extra: Any) -> web.Response:
        return web.json_response(
            {"http_status_code": status, "code": code, "msg": msg, "detail": detail, **extra}, status=status
        )

    async def single_send(request: web.Request) -> web.Response:
        form = await request.post()
        failing = await emulator.arrive()
        if form.get("apikey") != apikey:
            return answer(401, -1, "非法的apikey", "请检查的apikey是否正确")
        mobile, text = str(form.get("mobile", "")), str(form.get("text", ""))
        if not mobile or not text:
            return answer(400, 1, "请求参数缺失", f"参数 {'mobile' if not mobile else 'text'} 必须传入")
        if not (_CHINA_MOBILE.match(mobile) or _INTERNATIONAL.match(mobile)):
            return answer(400, 2, "请求参数格式错误", "参数 mobile 格式不正确")
        if not re.match(r"^【[^】]{2,20}】", text):
            return answer(400, 5, "未找到匹配的模板", "短信内容缺少签名【】")
        if failing:
            return answer(500, -50, "调用运营商接口失败", "运营商接口超时")
        now = time.monotonic()
        if same_number_interval and now - last_send.get(mobile, -same_number_interval) < same_number_interval:
            return answer(400, 33, "发送频率过快", "同一手机号发送频率过快")
        last_send[mobile] = now
        emulator.accept(mobile, text, str(form.get("uid") or "") or None)
        return web.json_response(
            {"code": 0, "msg": "发送成功", "count": 1, "fee": 0.05, "unit": "RMB", "mobile": mobile, "sid": next(sids)}
        )

    app.router.add_post("/v2/sms/single_send.json", single_send)
    return app
