"""Addresses, abuse keys, sealing and templates."""

from __future__ import annotations

import datetime as dt
import os

import phonenumbers
import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given
from hypothesis import strategies as st

from tidings.core import abuse, templates
from tidings.core.address import InvalidAddress, _already_e164, number_range, parse_email, parse_phone
from tidings.core.push import (
    WebhookEndpoint,
    WebPushSubscription,
)
from tidings.core.records import subscriber_from_record, subscriber_record
from tidings.core.sealing import Sealer
from tidings.core.settings import LimitsSettings
from tidings.core.types import rfc3339


@pytest.mark.parametrize(
    ("raw", "region", "e164", "country"),
    [
        ("+86 138 0013 8000", None, "+8613800138000", "CN"),
        ("+8613800138000", None, "+8613800138000", "CN"),
        ("13800138000", "CN", "+8613800138000", "CN"),
        ("(415) 555-0100", "US", "+14155550100", "US"),
        ("+44 7400 123456", None, "+447400123456", "GB"),
        ("+447700900123", None, "+447700900123", "GB"),
    ],
)
def test_phone_numbers(raw, region, e164, country):
    number = parse_phone(raw, region)
    assert (number.e164, number.region) == (e164, country)


@given(
    st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)).flatmap(
        lambda code: st.text("0123456789", min_size=max(1, 7 - len(str(code))), max_size=15 - len(str(code))).map(
            lambda national: f"+{code}{national}"
        )
    )
)
def test_e164_shortcut_reads_numbers_as_phonenumbers_does(text):
    number = _already_e164(text)
    if number is not None:
        assert number == phonenumbers.parse(text, None)


@pytest.mark.parametrize("text", ["+8613800138000", "+14155550100", "+447700900123", "+4915112345678"])
def test_e164_shortcut_takes_everyday_numbers(text):
    assert _already_e164(text) is not None


@pytest.mark.parametrize(
    ("raw", "region"),
    [("", None), ("12345", None), ("+861", None), ("hello", "CN"), ("+86 1", None), ("13800138000", None)],
)
def test_bad_phone_numbers(raw, region):
    with pytest.raises(InvalidAddress):
        parse_phone(raw, region)


def test_emails():
    assert parse_email(" Ada@Example.COM ") == "ada@example.com"
    for bad in ("", "ada", "ada@", "@example.com", "a b@example.com"):
        with pytest.raises(InvalidAddress):
            parse_email(bad)


def test_number_range():
    assert number_range("+8613800138000", 3) == "+8613800138"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", True),
        ("2001:db8:1:2::1", "2001:db8:1:3::1", False),
        ("::ffff:203.0.113.5", "203.0.113.5", True),
        ("203.0.113.5", "203.0.113.6", False),
    ],
)
def test_client_keys(a, b, same):
    assert (abuse.client_key(a) == abuse.client_key(b)) is same


def test_limits_for_send():
    settings = LimitsSettings(per_ip_hour=0, per_range_hour=30, country_daily_budget={"cn": 100}, daily_budget=1000)
    limits = abuse.limits_for_send(settings, to="+8613800138000", country="CN", is_phone=True, client_ip="203.0.113.5")
    names = {limit.name: limit for limit in limits}
    assert "per_ip_hour" not in names and "per_country_hour" not in names
    assert names["country_daily_budget"].error == "budget_exhausted"
    assert names["per_range_hour"].key == "rg:+8613800138"
    email = abuse.limits_for_send(settings, to="a@b.c", country=None, is_phone=False, client_ip=None)
    assert {limit.name for limit in email} == {"per_number_hour", "per_number_day", "daily_budget"}


@given(st.text(alphabet="0123456789", min_size=4, max_size=10))
def test_sealing_round_trip(code):
    sealer = Sealer("secret", os.urandom)
    sealed = sealer.seal(code, "ver_1")
    assert code.encode() not in sealed[12:] or len(code) < 5
    assert sealer.unseal(sealed, "ver_1") == code
    assert sealer.matches(sealed, "ver_1", code) and not sealer.matches(sealed, "ver_1", code + "0")


def test_sealed_codes_are_bound_and_keyed():
    sealed = Sealer("secret", os.urandom).seal("123456", "ver_1")
    assert sealed != Sealer("secret", os.urandom).seal("123456", "ver_1")
    with pytest.raises(InvalidTag):
        Sealer("secret", os.urandom).unseal(sealed, "ver_2")
    with pytest.raises(InvalidTag):
        Sealer("other", os.urandom).unseal(sealed, "ver_1")


def test_default_templates_render():
    en = templates.render(templates.DEFAULT_TEMPLATES["verification"]["en"], app_name="Acme", code="123456", ttl=600)
    assert en == "Your Acme verification code is 123456. It expires in 10 minutes."
    zh = templates.render(templates.DEFAULT_TEMPLATES["verification"]["zh-CN"], app_name="Acme", code="1234", ttl=61)
    assert zh.startswith("【Acme】") and "1234" in zh and "2分钟" in zh


@pytest.mark.parametrize("bad", ["{code.__class__}", "{secret}", "{code:>20}", "{code!r}", "no code", "{"])
def test_templates_are_restricted(bad):
    with pytest.raises(templates.TemplateError):
        templates.validate(bad)


@pytest.mark.parametrize(
    ("wanted", "chosen"),
    [("zh-CN", "zh-CN"), ("zh_cn", "zh-CN"), ("zh-HK", "zh-CN"), ("fr-CA", "fr"), ("xx", "en"), (None, "en")],
)
def test_locale_choice(wanted, chosen):
    texts = {"en": "", "zh-CN": "", "fr": ""}
    assert templates.pick_locale(wanted, texts) == chosen


@pytest.mark.parametrize(("wanted", "chosen"), [("xx", "zh-CN"), (None, "zh-CN"), ("fr-CA", "fr"), ("de", "zh-CN")])
def test_an_unknown_locale_falls_back_to_the_default_found_as_a_locale_is(wanted, chosen):
    texts = {"en": "", "zh-CN": "", "fr": ""}
    assert templates.pick_locale(wanted, texts, default="zh") == chosen
    assert templates.pick_locale(None, {"zh-CN": "", "en": ""}, default="fr") == "en", "then English"


@given(st.floats(min_value=0, max_value=2**32, allow_nan=False) | st.integers(0, 2**32).map(lambda s: s + 0.9999996))
def test_rfc3339_agrees_with_datetime(timestamp):
    expected = dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="milliseconds")
    assert rfc3339(timestamp) == expected.replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("written", "order"),
    [
        ({}, ["webhook", "webpush", "sms", "email"]),  # before listed addresses were kept: reached by default
        ({"listed_addresses": ["email"]}, ["webhook", "webpush", "email"]),  # before the order was kept
        ({"channel_order": ["email", "webpush", "webhook"]}, ["email", "webpush", "webhook"]),
    ],
)
def test_a_subscriber_record_of_any_age_reads_back_with_its_channels_in_order(written, order):
    record = {
        "name": None, "locale": None, "phone": "+8613800138000", "email": "a@example.com", "topics": [],
        "webhooks": [["https://h.example/x", "whsec_a"]], "webpush": [["https://p.example/y", "k", "a"]],
    }  # fmt: skip
    subscriber = subscriber_from_record("ada", 0.0, 0.0, {**record, **written})
    kinds = {WebhookEndpoint: "webhook", WebPushSubscription: "webpush"}
    assert [kinds.get(type(c)) or c for c in subscriber.channels()] == order
    assert subscriber_from_record("ada", 0.0, 0.0, subscriber_record(subscriber)) == subscriber
