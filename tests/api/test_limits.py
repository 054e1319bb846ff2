"""Anti-abuse limits: per number, per client, per number range, per country, daily budgets; client addresses."""

from __future__ import annotations

import logging

import pytest

from tidings.api.client_ip import client_ip, parse_networks

OFF = {"per_number_hour": 0, "per_number_day": 0, "per_ip_hour": 0, "per_range_hour": 0}


def limits(**values: object) -> dict:
    return {"verify": {"resend_cooldown": 0}, "limits": {**OFF, **values}}


async def start_many(api, numbers, headers=None):
    return [await api.post("/v1/verifications", {"to": number}, headers=headers) for number in numbers]


async def test_the_defaults_let_one_backend_start_codes_for_many_numbers_in_one_range(serve):
    api = await serve({})
    answers = await start_many(api, [f"+86138001380{i:02d}" for i in range(60)])
    assert {a.status for a in answers} == {201}


async def test_per_number_hour(serve):
    api = await serve({"verify": {"resend_cooldown": 0, "max_sends": 10}, "limits": {**OFF, "per_number_hour": 3}})
    answers = await start_many(api, ["+8613800138000"] * 4)
    assert [a.status for a in answers] == [201, 201, 201, 429]
    assert answers[-1].error == "rate_limited" and "per_number_hour" in answers[-1].body["error"]["message"]
    assert 1000 <= int(answers[-1].headers["Retry-After"]) <= 1200


async def test_per_ip_hour(serve):
    api = await serve(limits(per_ip_hour=2))
    answers = await start_many(api, ["+8613800138000", "+8613900139000", "+8615000150000"])
    assert [a.status for a in answers] == [201, 201, 429]
    assert "per_ip_hour" in answers[-1].body["error"]["message"]


async def test_forwarded_for_is_ignored_unless_the_peer_is_trusted(serve):
    api = await serve(limits(per_ip_hour=1))
    first = await api.post("/v1/verifications", {"to": "+8613800138000"}, headers={"X-Forwarded-For": "203.0.113.1"})
    spoofed = await api.post("/v1/verifications", {"to": "+8613900139000"}, headers={"X-Forwarded-For": "203.0.113.2"})
    assert (first.status, spoofed.status) == (201, 429)


async def test_forwarded_for_from_a_trusted_proxy(serve):
    api = await serve({**limits(per_ip_hour=1), "trusted_proxies": ["127.0.0.0/8"]})
    one = await api.post("/v1/verifications", {"to": "+8613800138000"}, headers={"X-Forwarded-For": "203.0.113.1"})
    two = await api.post("/v1/verifications", {"to": "+8613900139000"}, headers={"X-Forwarded-For": "203.0.113.2"})
    again = await api.post("/v1/verifications", {"to": "+8615000150000"}, headers={"X-Forwarded-For": "203.0.113.1"})
    assert (one.status, two.status, again.status) == (201, 201, 429)


async def test_number_range_velocity(serve):
    api = await serve(limits(per_range_hour=3, range_digits=3))
    same_range = [f"+86138001380{i:02d}" for i in range(4)]
    answers = await start_many(api, same_range)
    assert [a.status for a in answers] == [201, 201, 201, 429]
    assert "per_range_hour" in answers[-1].body["error"]["message"]
    other_range = await api.post("/v1/verifications", {"to": "+8613900139000"})
    assert other_range.status == 201


async def test_per_country_hour(serve):
    api = await serve(limits(per_country_hour={"gb": 1}))
    answers = await start_many(api, ["+447922123456", "+447400123456", "+8613800138000"])
    assert [a.status for a in answers] == [201, 429, 201]


async def test_country_budget_is_logged(serve, caplog):
    api = await serve(limits(country_daily_budget={"CN": 2}))
    with caplog.at_level(logging.ERROR, logger="tidings"):
        answers = await start_many(api, ["+8613800138000", "+8613900139000", "+8615000150000", "+447911123456"])
    assert [a.status for a in answers] == [201, 201, 429, 201]
    assert answers[2].error == "budget_exhausted"
    assert "budget exhausted" in caplog.text


async def test_total_budget(serve):
    api = await serve(limits(daily_budget=1))
    answers = await start_many(api, ["+8613800138000", "+447911123456"])
    assert answers[1].status == 429 and answers[1].error == "budget_exhausted"


async def test_refused_send_uses_no_allowance(serve):
    """A request refused by one limit does not count against the others."""
    api = await serve(limits(per_ip_hour=2, per_range_hour=1))
    await api.post("/v1/verifications", {"to": "+8613800138000"})
    refused = await api.post("/v1/verifications", {"to": "+8613800138001"})
    assert "per_range_hour" in refused.body["error"]["message"]
    assert (await api.post("/v1/verifications", {"to": "+8613900139000"})).status == 201


@pytest.mark.parametrize(
    ("peer", "forwarded", "proxies", "expected"),
    [
        ("10.0.0.1", None, [], "10.0.0.1"),
        ("10.0.0.1", "203.0.113.9", [], "10.0.0.1"),
        ("10.0.0.1", "203.0.113.9", ["10.0.0.0/8"], "203.0.113.9"),
        ("10.0.0.1", "198.51.100.1, 203.0.113.9", ["10.0.0.0/8"], "203.0.113.9"),
        ("10.0.0.1", "198.51.100.1, 10.0.0.7", ["10.0.0.0/8"], "198.51.100.1"),
        ("10.0.0.1", "garbage", ["10.0.0.0/8"], "10.0.0.1"),
        ("::1", "2001:db8::1", ["::1"], "2001:db8::1"),
    ],
)
def test_client_ip(peer, forwarded, proxies, expected):
    assert client_ip(peer, forwarded, parse_networks(proxies)) == expected
