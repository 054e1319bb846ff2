"""A Yunpian emulator: ``POST /v2/sms/single_send.json`` and ``/v2/sms/multi_send.json`` checked and answered as
Yunpian documents them.

Errors come as ``{"http_status_code", "code", "msg", "detail"}`` with that HTTP status; a ``multi_send`` answers 200
with one result per number in ``data`` (an error's ``code``, ``msg`` and ``detail`` in its place), and an error
for the whole request (bad apikey, lists of unequal length) as a single send does. A batch has one ``uid`` at most
("批量接口同一批短信只能有一个uid"), recorded with every number's message. Injected failures answer
Yunpian's system error (-50, HTTP 500) for the whole request; ``same_number_interval`` turns on its per-number
frequency limit (code 33).
"""

from __future__ import annotations

import itertools
import re
import time
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from tidings.testing.emulator import Emulator, application

_CHINA_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_INTERNATIONAL = re.compile(r"^\+[1-9]\d{6,14}$")
_SIGNATURE = re.compile(r"^【[^【】]{2,20}】")


def error(status: int, code: int, msg: str, detail: str = "") -> dict[str, Any]:
    return {"http_status_code": status, "code": code, "msg": msg, "detail": detail}


def answer(body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=body.get("http_status_code", 200))


MAX_BATCH = 1000


def create_app(apikey: str = "test-apikey", same_number_interval: float = 0.0, **options: Any) -> web.Application:
    """An emulator accepting one apikey. ``same_number_interval``: seconds one number must wait between messages
    (0 is off); ``options`` go to ``Emulator`` (latency, failure_rate, fail_first, seed)."""
    emulator = Emulator(**options)
    app = application(emulator)
    sids = itertools.count(10_000_000)
    last_send: dict[str, float] = {}

    def refusal(mobile: str, text: str) -> dict[str, Any] | None:
        """Why Yunpian would not send ``text`` to ``mobile``, or None."""
        if not mobile or not text:
            return error(400, 1, "请求参数缺失", f"参数 {'mobile' if not mobile else 'text'} 必须传入")
        if not (_CHINA_MOBILE.match(mobile) or _INTERNATIONAL.match(mobile)):
            return error(400, 2, "请求参数格式错误", "参数 mobile 格式不正确，mobile手机号格式不正确")
        if not _SIGNATURE.match(text):
            return error(400, 5, "未自动匹配到合适的模板", "短信内容缺少签名【】或不匹配任何已审核的模板")
        if text.count("【") > 1:
            return error(400, 16, "签名格式不正确", "短信内容不能包含多个签名【】符号")
        return None

    def deliver(mobile: str, text: str, uid: str | None) -> dict[str, Any]:
        now = time.monotonic()
        if same_number_interval and now - last_send.get(mobile, -same_number_interval) < same_number_interval:
            return error(400, 33, "超过频率", "同一个手机号同一验证码模板每30秒只能发送一条")
        last_send[mobile] = now
        emulator.accept(mobile, text, uid)
        sid = next(sids)
        return {"code": 0, "msg": "发送成功", "count": 1, "fee": 0.05, "unit": "RMB", "mobile": mobile, "sid": sid}

    async def single_send(request: web.Request) -> web.Response:
        form = await request.post()
        failing = await emulator.arrive()
        if form.get("apikey") != apikey:
            return answer(error(401, -1, "非法的apikey", "apikey不正确或没有授权"))
        mobile, text = str(form.get("mobile", "")), str(form.get("text", ""))
        refused = refusal(mobile, text)
        if refused:
            return answer(refused)
        if failing:
            return answer(error(500, -50, "未知异常", "系统出现未知的异常情况"))
        return answer(deliver(mobile, text, str(form.get("uid") or "") or None))

    async def multi_send(request: web.Request) -> web.Response:
        """Each text is URL-encoded, then the texts are joined with commas (so a comma in a text stays apart)."""
        form = await request.post()
        failing = await emulator.arrive()
        if form.get("apikey") != apikey:
            return answer(error(401, -1, "非法的apikey", "apikey不正确或没有授权"))
        mobiles = str(form.get("mobile", "")).split(",")
        texts = [unquote(text) for text in str(form.get("text", "")).split(",")]
        if len(mobiles) != len(texts):
            return answer(error(400, 2, "请求参数格式错误", "参数 text 格式不正确，text 与 mobile 个数不一致"))
        if len(mobiles) > MAX_BATCH:
            return answer(error(400, 2, "请求参数格式错误", f"参数 mobile 格式不正确，号码个数超过{MAX_BATCH}"))
        if failing:
            return answer(error(500, -50, "未知异常", "系统出现未知的异常情况"))
        uid = str(form.get("uid") or "") or None
        data = []
        for mobile, text in zip(mobiles, texts, strict=True):
            result = refusal(mobile, text) or deliver(mobile, text, uid)
            if result["code"] != 0:  # a number's error stands in its place, without an HTTP status of its own
                del result["http_status_code"]
                result.update(count=0, fee=0, unit="RMB", mobile=mobile, sid=0)
            data.append(result)
        sent = sum(result["code"] == 0 for result in data)
        total = {"total_count": sent, "total_fee": f"{0.05 * sent:.4f}", "unit": "RMB"}
        return web.json_response({**total, "data": data})

    app.router.add_post("/v2/sms/single_send.json", single_send)
    app.router.add_post("/v2/sms/multi_send.json", multi_send)
    return app
