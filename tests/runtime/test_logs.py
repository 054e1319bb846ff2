"""A whole run with every log on, at DEBUG, as ``tidings serve`` writes it to stderr in either format: no secret
reaches a line, whichever way and wherever a caller sent it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp import web

from tests.conftest import CODE, ROOT_KEY, Api, ServedAsInProduction, base_config, merge
from tests.dispatch.conftest import APIKEY, Running, yunpian_config, yunpian_emulator  # noqa: F401 - a fixture
from tests.helpers import eventually
from tidings.api.access_log import AccessLogger
from tidings.config import validate_providers
from tidings.core.settings import Settings
from tidings.runtime import logs
from tidings.testing import webhooks
from tidings.wiring import build_app

NUMBERS = ("+8613800138000", "+8613900139000")
GIVEN_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@contextlib.contextmanager
def stderr_log(level: str, format: str) -> Iterator[io.StringIO]:
    """``logs.setup`` as ``tidings serve`` calls it, its stderr caught; the logging of the test session after."""
    root = logging.getLogger()
    handlers, root_level, stderr = root.handlers[:], root.level, sys.stderr
    sys.stderr = written = io.StringIO()
    try:
        logs.setup(level, format)
        yield written
    finally:
        sys.stderr = stderr
        root.handlers[:] = handlers
        root.setLevel(root_level)


async def boom(request: web.Request) -> web.Response:
    """A handler with a bug that puts what it was given in its error."""
    raise RuntimeError(f"cannot use {request.headers.get('Authorization')} for {request.query_string}")


async def raw_request(api: Api, head: str) -> None:
    """A request written as is, as a broken or hostile client would; returns once the server closed the connection."""
    host, port = api.base_url.removeprefix("http://").rstrip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head.encode())
    await reader.read()
    writer.close()
    await writer.wait_closed()


async def first_event(api: Api, path: str, headers: dict[str, str] | None = None) -> None:
    async with api.session.get(path, headers=headers) as response:
        assert response.status == 200, await response.text()
        async for line in response.content:
            if line.startswith(b"data:"):
                return


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_no_secret_reaches_the_log(tmp_path: Path, run_app, yunpian_emulator, log_format: str):  # noqa: F811
    sms = await yunpian_emulator()
    known: dict[str, str] = {"/hook/ada": GIVEN_SECRET}
    receiver = webhooks.create_app(secret_for=known.get)
    hooks_url = await run_app(receiver)
    config = {**yunpian_config(sms.url), "access_log": True, "log_level": "DEBUG", "log_format": log_format}
    settings = Settings.model_validate(merge(base_config(tmp_path), config))
    validate_providers(settings)
    with stderr_log(settings.log_level, settings.log_format) as written:
        app = build_app(settings)
        app.router.add_get("/boom", boom)
        server = ServedAsInProduction(app, host="127.0.0.1", port=0)
        await server.start_server(access_log_class=AccessLogger, access_log=logging.getLogger("tidings.access"))
        api = Api(str(server.make_url("")))
        try:
            secrets = await a_busy_run(api, hooks_url, known, receiver[webhooks.RECEIVER], sms)
        finally:
            await api.close()
            await server.close()
        log = written.getvalue()

    leaked = {secret for secret in secrets for form in (secret, quote(secret, safe="")) if form in log}
    assert not leaked, f"secrets in the log: {leaked}\n{log}"
    assert "GET /v1/subscribers/ada/stream?token=[redacted] 200" in log
    assert "unhandled error in GET /boom" in log and "RuntimeError: cannot use Bearer [redacted]" in log
    if log_format == "json":
        assert all(json.loads(line) for line in log.splitlines())


async def a_busy_run(
    api: Api, hooks_url: str, known: dict[str, str], receiver: webhooks.Receiver, sms: Running
) -> set[str]:
    """Everything a caller does, with secrets in every place one may end up; returns every secret used."""
    assert (await api.get("/v1/keys")).status == 200
    key = (await api.post("/v1/keys", {"name": "app", "scopes": ["send", "read"]})).body["key"]
    assert (await api.get("/v1/deliveries", key=key)).status == 200

    given = {"type": "webhook", "url": f"{hooks_url}/hook/ada", "secret": GIVEN_SECRET}
    assert (await api.call("PUT", "/v1/subscribers/ada", {"channels": [given]})).status in (200, 201)
    made = await api.call(
        "PUT", "/v1/subscribers/bob", {"channels": [{"type": "webhook", "url": f"{hooks_url}/hook/bob"}]}
    )
    known["/hook/bob"] = made.body["channels"][0]["secret"]
    token = (await api.post("/v1/subscribers/ada/tokens", {"ttl": 120})).body["token"]

    streams = [
        asyncio.create_task(first_event(api, f"/v1/subscribers/ada/stream?token={token}")),
        asyncio.create_task(first_event(api, "/v1/subscribers/ada/stream", {"Authorization": f"Bearer {token}"})),
    ]
    for _ in range(250):  # until both streams are open, so that the message is sent to them live
        if "tidings_stream_connections 2.0" in (await api.get("/metrics")).body:
            break
        await asyncio.sleep(0.02)
    sent = await api.post("/v1/messages", {"to": ["ada", "bob"], "body": "hi"}, key=key)
    assert sent.status == 202, sent.body
    await asyncio.wait_for(asyncio.gather(*streams), 10)
    await eventually(lambda: sum(hook.verified is True for hook in receiver.received) == 2)

    for number in NUMBERS:
        started = await api.post("/v1/verifications", {"to": number, "code_length": 10}, key=key)
        assert started.status == 201, started.body
    await eventually(lambda: all(sms.texts(number) for number in NUMBERS))
    codes = [CODE.search(text).group(1) for number in NUMBERS for text in sms.texts(number)]
    wrong = f"{(int(codes[0]) + 1) % 10**10:010d}"
    checked = await api.post("/v1/verifications/check", {"to": NUMBERS[0], "code": wrong}, key=key)
    assert checked.body["valid"] is False
    for number, code in zip(NUMBERS, codes, strict=True):
        checked = await api.post("/v1/verifications/check", {"to": number, "code": code}, key=key)
        assert checked.body["valid"] is True

    basic = base64.b64encode(f"AC0123:{key}".encode()).decode()
    odd = [
        api.get(f"/v1/deliveries?api_key={key}", key=None),
        api.get(f"/v1/deliveries?{token}"),
        api.get(f"/v1/deliveries?cursor=/v1/subscribers/ada/stream%3Ftoken%3D{token}&status={key}"),
        api.get(f"/{key}/v1/deliveries"),
        api.get("/v1/deliveries", key=None, headers={"Authorization": f"Basic {basic}"}),
        api.get("/v1/deliveries", key=None, headers={"Authorization": f"Token {key}", "X-Request-Id": key}),
        api.post("/v1/messages", {"to": ["ada"], "body": "hi", "api_key": key, "code": codes[0]}),
        api.post("/v1/messages", data=f"token={token}&Code={codes[0]}", headers={"Content-Type": "text/plain"}),
        api.get(f"/boom?token={token}", key=key),
    ]
    assert [answer.status for answer in await asyncio.gather(*odd)] == [401, 400, 400, 404, 401, 401, 400, 415, 500]
    await raw_request(api, f"GET /v1/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\x01\r\n\r\n")
    await raw_request(api, f"GET http://root:{key}@127.0.0.1/v1/keys HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")

    payload, signature = token.removeprefix("stk_").split(".")
    whsecs = [GIVEN_SECRET, known["/hook/bob"]]
    return {
        ROOT_KEY,
        key,
        token,
        payload,
        signature,
        basic,
        APIKEY,
        *codes,
        *whsecs,
        *(secret.removeprefix("whsec_") for secret in whsecs),
    }


@pytest.mark.parametrize(
    ("written", "logged"),
    [
        ("GET /v1/x?token=stk_YWRh.c2ln-_x&limit=5", "GET /v1/x?token=[redacted]&limit=5"),
        ("api_key=tk_abc-def_123,next", "api_key=[redacted],next"),
        ('seen:stk_YWRh.c2ln%2E"', 'seen:[redacted]"'),
        ("with whsec_MfKQ9r8+GK/Yq== in it", "with [redacted] in it"),
        (
            'b\'Authorization: Digest username="ada", response="9f0"\\r\\nHost: x\'',
            "b'Authorization: [redacted]\\r\\nHost: x'",
        ),
        ("{'Authorization': 'Basic QUM6dGtfeA=='}", "{'Authorization': '[redacted]"),
        ("sent Basic QUM6dGtfeA== and bearer abc.def", "sent Basic [redacted] and bearer [redacted]"),
        ('{"code": "123456", "to": "+8613800138000"}', '{"code": "[redacted]", "to": "+8613800138000"}'),
        ("To=%2B8613800138000&CustomCode=123456", "To=%2B8613800138000&CustomCode=[redacted]"),
        ("waiting for redis://:hunter2@127.0.0.1:6379/0", "waiting for redis://[redacted]@127.0.0.1:6379/0"),
        ("sent 3 of 12 in 40 ms (request 5f3a0000000001)", "sent 3 of 12 in 40 ms (request 5f3a0000000001)"),
    ],
)
def test_redact(written: str, logged: str):
    assert logs.redact(written) == logged


def test_a_record_is_masked_wherever_the_json_format_writes_from():
    key = "tk_89pVICdR56i2XNa5A-Tl9ZeH38_Yg4"
    log = logging.getLogger("tidings.test")
    with stderr_log("DEBUG", "json") as written:
        try:
            raise ValueError(f"bad key {key}")
        except ValueError:
            log.exception("failed for %s", key, extra={"request": {"Authorization": "Digest x"}, "password": "pw"})
        log.info("%s and %s", key)  # a malformed call
    lines = [json.loads(line) for line in written.getvalue().splitlines()]
    assert key not in written.getvalue()
    assert lines[0]["message"] == "failed for [redacted]" and "ValueError: bad key [redacted]" in lines[0]["exc_info"]
    assert lines[0]["request"] == {"Authorization": "[redacted]"} and lines[0]["password"] == "[redacted]"
    assert lines[1]["message"] == "%s and %s (arguments that do not fit: ('[redacted]',))"
