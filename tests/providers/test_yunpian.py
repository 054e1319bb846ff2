"""Yunpian against its emulator: number format, signature, and Yunpian's documented answer codes."""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import quote, urlencode

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tidings.core.types import Delivered, OutboundMessage, Permanent, Transient
from tidings.outbound.client import HttpClient, Response
from tidings.providers import yunpian
from tidings.providers.yunpian import Yunpian
from tidings.testing import yunpian as emulator
from tidings.testing.__main__ import parse

APIKEY = "key-1"


def message(
    to: str = "+8613800138000", text: str = "【Acme】您的验证码是123456", key: str = "snd_1.1", **params: str
) -> OutboundMessage:
    return OutboundMessage(to=to, text=text, idempotency_key=key, params={"code": "123456", **params})


@pytest.fixture
async def yunpian_app(emulate):
    async def start(**options):
        return await emulate(emulator.create_app(apikey=APIKEY, **options))

    return start


@pytest.mark.parametrize(
    ("to", "received_to"),
    [("+8613800138000", "13800138000"), ("+14155550100", "+14155550100"), ("+85291234567", "+85291234567")],
)
async def test_delivered(yunpian_app, provider, to, received_to):
    sms = await yunpian_app()
    outcome = await provider(Yunpian, base_url=sms.url, apikey=APIKEY).send(message(to=to))
    assert isinstance(outcome, Delivered) and outcome.provider_message_id
    [received] = sms.received
    assert (received.to, received.text, received.id) == (received_to, "【Acme】您的验证码是123456", "snd_1.1")


@pytest.mark.parametrize(
    ("signature", "text", "params", "sent"),
    [
        ("Acme", "Your code is 123456", {}, "【Acme】Your code is 123456"),
        (None, "Your code is 123456", {"app_name": "Bolt"}, "【Bolt】Your code is 123456"),
        ("Acme", "【Bolt】您的验证码是123456", {}, "【Bolt】您的验证码是123456"),
    ],
)
async def test_signature(yunpian_app, provider, signature, text, params, sent):
    sms = await yunpian_app()
    configured = {"signature": signature} if signature else {}
    outcome = await provider(Yunpian, base_url=sms.url, apikey=APIKEY, **configured).send(message(text=text, **params))
    assert isinstance(outcome, Delivered)
    assert sms.received[0].text == sent


@pytest.mark.parametrize(
    ("apikey", "to", "text", "error"),
    [
        ("wrong", "+8613800138000", "【Acme】code 1", "yunpian_-1"),
        (APIKEY, "+1", "【Acme】code 1", "yunpian_2"),
        (APIKEY, "+8612345", "【Acme】code 1", "yunpian_2"),
        (APIKEY, "+8613800138000", "Your code is 1", "yunpian_5"),
        (APIKEY, "+8613800138000", "【Acme】【Bolt】code 1", "yunpian_16"),
    ],
)
async def test_refusals_are_final(yunpian_app, provider, apikey, to, text, error):
    sms = await yunpian_app()
    outcome = await provider(Yunpian, base_url=sms.url, apikey=apikey).send(message(to=to, text=text))
    assert isinstance(outcome, Permanent) and outcome.error == error
    assert sms.received == []


async def test_system_error_is_transient(yunpian_app, provider):
    sms = await yunpian_app(failure_rate=1.0)
    outcome = await provider(Yunpian, base_url=sms.url, apikey=APIKEY).send(message())
    assert isinstance(outcome, Transient) and outcome.error == "yunpian_-50" and outcome.retry_after is None


async def test_same_number_too_fast_asks_to_wait(yunpian_app, provider):
    sms = await yunpian_app(same_number_interval=60)
    sender = provider(Yunpian, base_url=sms.url, apikey=APIKEY)
    assert isinstance(await sender.send(message()), Delivered)
    outcome = await sender.send(message())
    assert isinstance(outcome, Transient) and outcome.error == "yunpian_33" and outcome.retry_after == 30.0
    assert isinstance(await sender.send(message(to="+8613900139000")), Delivered)


async def test_timeouts_and_refused_connections_are_transient(yunpian_app, provider, closed_url):
    slow = await yunpian_app(latency=2.0)
    assert (await provider(Yunpian, base_url=slow.url, apikey=APIKEY).send(message())).error == "timeout"
    assert (await provider(Yunpian, base_url=closed_url, apikey=APIKEY).send(message())).error == "connection_error"


@pytest.mark.parametrize(
    ("code", "kind", "retry_after"),
    [
        (0, Delivered, None),
        (-4, Transient, None),
        (-5, Transient, None),
        (-50, Transient, None),
        (-51, Transient, None),
        (-53, Transient, None),
        (8, Transient, 30.0),
        (33, Transient, 30.0),
        (9, Transient, 300.0),
        (22, Transient, 3600.0),
        (17, Transient, 3600.0),
        (43, Transient, 3600.0),
        (1, Permanent, None),
        (2, Permanent, None),
        (3, Permanent, None),
        (4, Permanent, None),
        (5, Permanent, None),
        (10, Permanent, None),
        (20, Permanent, None),
        (-1, Permanent, None),
        (-2, Permanent, None),
        (-3, Permanent, None),
    ],
)
def test_codes(code, kind, retry_after):
    answer = Response(200 if code == 0 else 400, {}, f'{{"code": {code}, "msg": "m", "sid": 7}}'.encode())
    outcome = yunpian.read_answer(answer)
    assert isinstance(outcome, kind)
    if kind is not Delivered:
        assert outcome.error == f"yunpian_{code}" and getattr(outcome, "retry_after", None) == retry_after


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (502, b"<html>bad gateway</html>", Transient("http_502", "<html>bad gateway</html>")),
        (403, b"forbidden", Permanent("http_403", "forbidden")),
        (200, b"<html>?</html>", Transient("yunpian_bad_answer", "<html>?</html>")),
    ],
)
def test_answers_that_are_not_yunpian_json(status, body, expected):
    assert yunpian.read_answer(Response(status, {}, body)) == expected


def test_the_apikey_does_not_print():
    configured = Yunpian(Yunpian.Settings.model_validate({"apikey": APIKEY}), None)
    assert APIKEY not in repr(configured)


async def test_emulator_holds_slow_requests_at_once(yunpian_app):
    """Slow answers overlap instead of queueing: 500 sends at 0.5 s latency take about a second, not 250 s."""
    sms = await yunpian_app(latency=0.5)
    http = HttpClient(timeout=10.0)
    settings = {"base_url": sms.url, "apikey": APIKEY, "batch_size": 1}
    sender = Yunpian(Yunpian.Settings.model_validate(settings), http)
    try:
        started = time.perf_counter()
        outcomes = await asyncio.gather(*(sender.send(message(to=f"+86138{i:08d}")) for i in range(500)))
        elapsed = time.perf_counter() - started
    finally:
        await http.close()
    assert [outcome for outcome in outcomes if not isinstance(outcome, Delivered)] == []
    assert elapsed < 5.0
    assert len({received.to for received in sms.received}) == 500


async def test_sends_started_together_go_in_one_multi_send(yunpian_app, provider):
    sms = await yunpian_app()
    sender = provider(Yunpian, base_url=sms.url, apikey=APIKEY, signature="Acme")
    numbers = [f"+86138{i:08d}" for i in range(5)] + ["+14155550100"]
    texts = [f"Your code is {i}, valid 10 min" for i in range(6)]
    pairs = list(zip(numbers, texts, strict=True))
    outcomes = await asyncio.gather(
        *(sender.send(message(to=n, text=t, key=f"snd_{i}.1")) for i, (n, t) in enumerate(pairs))
    )
    assert all(isinstance(outcome, Delivered) and outcome.provider_message_id for outcome in outcomes)
    assert len({outcome.provider_message_id for outcome in outcomes}) == 6
    assert sms.state.requests == 1
    assert [(r.to, r.text) for r in sms.received] == [(yunpian.mobile(n), f"【Acme】{t}") for n, t in pairs]
    assert [r.id for r in sms.received] == [None] * 6, "one uid per batch: no message's own would do for all"


async def test_a_batch_is_read_number_by_number(yunpian_app, provider):
    """One refused number does not fail the others, and a frequency error still asks to wait."""
    sms = await yunpian_app(same_number_interval=60)
    sender = provider(Yunpian, base_url=sms.url, apikey=APIKEY)
    assert isinstance(await sender.send(message(to="+8613800138000")), Delivered)
    outcomes = await asyncio.gather(
        sender.send(message(to="+8613900139000")),
        sender.send(message(to="+8612345")),
        sender.send(message(to="+8613700137000", text="no signature")),
        sender.send(message(to="+8613800138000")),
    )
    assert isinstance(outcomes[0], Delivered)
    assert [outcome.error for outcome in outcomes[1:]] == ["yunpian_2", "yunpian_5", "yunpian_33"]
    assert isinstance(outcomes[1], Permanent) and isinstance(outcomes[2], Permanent)
    assert isinstance(outcomes[3], Transient) and outcomes[3].retry_after == 30.0
    assert sms.state.requests == 2


@pytest.mark.parametrize(
    ("options", "apikey", "expected"),
    [({"failure_rate": 1.0}, APIKEY, Transient), ({}, "wrong", Permanent), ({"latency": 2.0}, APIKEY, Transient)],
)
async def test_a_batch_that_fails_whole_fails_every_message(yunpian_app, provider, options, apikey, expected):
    sms = await yunpian_app(**options)
    sender = provider(Yunpian, base_url=sms.url, apikey=apikey)
    outcomes = await asyncio.gather(*(sender.send(message(to=f"+86138{i:08d}")) for i in range(3)))
    assert all(isinstance(outcome, expected) for outcome in outcomes)
    assert len({outcome.error for outcome in outcomes}) == 1
    assert sms.received == []


async def test_batches_are_cut_at_batch_size(yunpian_app, provider):
    sms = await yunpian_app()
    sender = provider(Yunpian, base_url=sms.url, apikey=APIKEY, batch_size=4)
    outcomes = await asyncio.gather(*(sender.send(message(to=f"+86138{i:08d}", key=f"snd_{i}.1")) for i in range(10)))
    assert all(isinstance(outcome, Delivered) for outcome in outcomes)
    assert sms.state.requests == 3 and len(sms.received) == 10
    assert [r.id for r in sms.received] == [None] * 10


@pytest.mark.parametrize("batch_size", [0, 1001, "many"])
def test_a_batch_size_outside_what_yunpian_takes_is_refused(batch_size):
    with pytest.raises(ValidationError, match="batch_size"):
        Yunpian.Settings.model_validate({"apikey": APIKEY, "batch_size": batch_size})


async def test_batch_size_1_sends_every_message_alone(yunpian_app, provider):
    sms = await yunpian_app()
    sender = provider(Yunpian, base_url=sms.url, apikey=APIKEY, batch_size=1)
    outcomes = await asyncio.gather(*(sender.send(message(to=f"+86138{i:08d}", key=f"snd_{i}.1")) for i in range(3)))
    assert all(isinstance(outcome, Delivered) for outcome in outcomes)
    assert sms.state.requests == 3
    assert {r.to: r.id for r in sms.received} == {f"138{i:08d}": f"snd_{i}.1" for i in range(3)}


async def test_a_lone_send_goes_alone_with_its_uid(yunpian_app, provider):
    sms = await yunpian_app()
    sender = provider(Yunpian, base_url=sms.url, apikey=APIKEY)
    await sender.send(message())
    await sender.send(message(to="+8613900139000", key="snd_2.1"))
    assert sms.state.requests == 2 and [r.id for r in sms.received] == ["snd_1.1", "snd_2.1"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"data": [{"code": 0, "sid": 1}]}, "yunpian_bad_answer"),
        ({"data": [{"code": 0, "sid": 1}, {"msg": "?"}]}, "yunpian_bad_answer"),
        ({"http_status_code": 400, "code": -1, "msg": "m"}, "yunpian_-1"),
    ],
)
def test_multi_send_answers_that_cannot_be_read_by_number(body, expected):
    answer = Response(200, {}, json.dumps(body).encode())
    assert {outcome.error for outcome in yunpian.read_many(answer, 2)} == {expected}


async def test_emulator_multi_send_checks_the_lists(yunpian_app):
    sms = await yunpian_app()
    async with aiohttp.ClientSession() as session:
        form = {"apikey": APIKEY, "mobile": "13800138000,13900139000", "text": "%E3%80%90A%E3%80%91x"}
        async with session.post(f"{sms.url}/v2/sms/multi_send.json", data=form) as answer:
            assert answer.status == 400 and (await answer.json())["code"] == 2
        form = {"apikey": APIKEY, "mobile": ",".join(["13800138000"] * 1001), "text": ",".join(["x"] * 1001)}
        async with session.post(f"{sms.url}/v2/sms/multi_send.json", data=form) as answer:
            assert answer.status == 400 and (await answer.json())["code"] == 2
    assert sms.received == []


async def test_emulator_gives_a_multi_send_uid_to_every_number(yunpian_app):
    """Yunpian takes one uid for a whole batch and reports it with each of the batch's messages."""
    sms = await yunpian_app()
    texts = ",".join(quote(f"【Acme】code {i}", safe="") for i in range(2))
    async with aiohttp.ClientSession() as session:
        form = {"apikey": APIKEY, "mobile": "13800138000,13900139000", "text": texts, "uid": "order-7"}
        async with session.post(f"{sms.url}/v2/sms/multi_send.json", data=form) as answer:
            assert answer.status == 200 and [r["code"] for r in (await answer.json())["data"]] == [0, 0]
        form.pop("uid")
        async with session.post(f"{sms.url}/v2/sms/multi_send.json", data=form) as answer:
            assert answer.status == 200
    assert [(r.to, r.id) for r in sms.received] == [
        ("13800138000", "order-7"),
        ("13900139000", "order-7"),
        ("13800138000", None),
        ("13900139000", None),
    ]


def test_emulator_command_line():
    args = parse(["yunpian", "--port", "9001", "--latency", "0.5", "--failure-rate", "0.1", "--apikey", "k"])
    assert (args.name, args.port, args.latency, args.failure_rate, args.apikey) == ("yunpian", 9001, 0.5, 0.1, "k")
    with pytest.raises(SystemExit):
        parse(["twilio", "--apikey", "k"])
    with pytest.raises(ValueError, match="failure_rate"):
        emulator.create_app(failure_rate=2)


@given(
    st.text(min_size=1),
    st.lists(st.text(alphabet="+0123456789", min_size=1), min_size=1, max_size=5),
    st.lists(st.text(), min_size=1, max_size=5),
)
def test_multi_send_form_is_the_double_encoding_yunpian_documents(apikey, mobiles, texts):
    expected = urlencode(
        {"apikey": apikey, "mobile": ",".join(mobiles), "text": ",".join(quote(text, safe="") for text in texts)}
    )
    assert yunpian.multi_send_form(apikey, mobiles, texts) == expected.encode()


def test_the_encoding_table_stays_bounded_however_many_characters_texts_carry():
    texts = ["".join(chr(0x4E00 + i) for i in range(start, start + 1000)) for start in range(0, 10_000, 1000)]
    expected = urlencode({"apikey": "k", "mobile": "1", "text": ",".join(quote(text, safe="") for text in texts)})
    assert yunpian.multi_send_form("k", ["1"], texts) == expected.encode()
    assert len(yunpian._ENCODED_TWICE) <= yunpian._MOST_CHARACTERS_KEPT
