"""The lists (``GET /v1/verifications``, ``/v1/subscribers``, ``/v1/messages``) as a user's script pages through
them, on a real server: newest first, each item once and as its own ``GET`` shows it, filtered, and refused with 400
for what they do not take."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.conftest import Api

CODE = "123456"
NUMBERS = [f"+44770090012{n}" for n in range(5)]
TEST_NUMBERS = {"verify": {"test_numbers": {n: {"code": CODE, "until": "2099-12-31"} for n in NUMBERS}}}
HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture(params=["sqlite", "redis"])
def database(request) -> dict[str, Any]:
    """The settings that put the server on each backend."""
    return {"database": request.getfixturevalue("redis_url")} if request.param == "redis" else {}


async def every_page(api: Api, path: str, name: str, key: str | None = "default", **query: Any) -> list[dict]:
    """Every item of a list, page after page, as a client walks it."""
    items: list[dict] = []
    cursor = None
    while True:
        asked = {**query, **({"cursor": cursor} if cursor else {})}
        answer = await api.get(f"{path}?{urlencode(asked)}" if asked else path, key=key)
        assert answer.status == 200, answer.body
        assert set(answer.body) == {name, "next_cursor"}
        items += answer.body[name]
        cursor = answer.body["next_cursor"]
        if cursor is None:
            return items
        assert len(answer.body[name]) == int(query.get("limit", 100)), "only a full page has a next one"


def ids(items: list[dict]) -> list[str]:
    return [item["id"] for item in items]


async def test_verifications_are_listed_newest_first_as_each_reads(serve, database):
    api = await serve({**TEST_NUMBERS, **database})
    started = []
    for number in NUMBERS:
        started.append((await api.post("/v1/verifications", {"to": number})).body["id"])
    canceled = (await api.post(f"/v1/verifications/{started[0]}/cancel")).body
    approved = await api.post("/v1/verifications/check", {"to": NUMBERS[1], "code": CODE})
    assert approved.body["valid"]
    again = (await api.post("/v1/verifications", {"to": NUMBERS[0]})).body["id"]
    newest_first = [again, *reversed(started)]

    for limit in (1, 2, 6, 1000):
        listed = await every_page(api, "/v1/verifications", "verifications", limit=limit)
        assert ids(listed) == newest_first, limit
    for item in listed:
        assert item == (await api.get(f"/v1/verifications/{item['id']}")).body, "as GET shows it: never the code"
    by_address = await every_page(api, "/v1/verifications", "verifications", to="+44 7700 900120")
    assert ids(by_address) == [again, started[0]], "`to` is read as a start reads it"
    assert ids(await every_page(api, "/v1/verifications", "verifications", to=NUMBERS[3])) == [started[3]]
    assert await every_page(api, "/v1/verifications", "verifications", to="ada@example.com") == []
    assert ids(await every_page(api, "/v1/verifications", "verifications", status="canceled")) == [canceled["id"]]
    assert ids(await every_page(api, "/v1/verifications", "verifications", status="approved")) == [started[1]]
    pending = await every_page(api, "/v1/verifications", "verifications", status="pending", limit=2)
    assert ids(pending) == [again, *reversed(started[2:])]
    both = await every_page(api, "/v1/verifications", "verifications", status="pending", to=NUMBERS[0])
    assert ids(both) == [again]


async def test_the_status_filter_agrees_with_the_status_shown(serve, database):
    """A pending verification past its expiry reads `expired`, though nothing wrote that down: found so too."""
    api = await serve({**TEST_NUMBERS, **database, "verify": {**TEST_NUMBERS["verify"], "ttl": 0.5}})
    id = (await api.post("/v1/verifications", {"to": NUMBERS[0]})).body["id"]
    assert ids(await every_page(api, "/v1/verifications", "verifications", status="pending")) == [id]
    await asyncio.sleep(0.6)
    [expired] = await every_page(api, "/v1/verifications", "verifications", status="expired")
    assert expired["status"] == "expired" and expired == (await api.get(f"/v1/verifications/{id}")).body
    assert await every_page(api, "/v1/verifications", "verifications", status="pending") == []


async def test_subscribers_are_listed_newest_first_without_secrets(serve, database):
    api = await serve(database)
    put = {}
    for n, topics in enumerate([["news"], ["news", "sports"], [], ["sports"], ["news"]]):
        body = {"name": f"user {n}", "topics": topics, "channels": [{"type": "webhook", "url": f"{HOOK}/{n}"}]}
        put[f"u{n}"] = (await api.call("PUT", f"/v1/subscribers/u{n}", body)).body
    await api.call("PUT", "/v1/subscribers/u1", {"topics": ["sports"]})  # keeps its place, leaves news
    await api.call("DELETE", "/v1/subscribers/u3")

    for limit in (1, 2, 100):
        listed = await every_page(api, "/v1/subscribers", "subscribers", limit=limit)
        assert ids(listed) == ["u4", "u2", "u1", "u0"], limit
    for item in listed:
        shown = (await api.get(f"/v1/subscribers/{item['id']}")).body
        for channel in shown["channels"]:
            channel.pop("secret")
        assert item == shown, "as GET shows it, but for the webhooks' secrets"
    assert "secret" not in str(listed) and put["u0"]["channels"][0]["secret"] not in str(listed)
    assert ids(await every_page(api, "/v1/subscribers", "subscribers", topic="news", limit=1)) == ["u4", "u0"]
    assert ids(await every_page(api, "/v1/subscribers", "subscribers", topic="sports")) == ["u1"]
    assert await every_page(api, "/v1/subscribers", "subscribers", topic="nobody") == []


async def test_messages_are_listed_newest_first_by_status(serve, database):
    api = await serve(database)
    await api.call("PUT", "/v1/subscribers/ada", {"channels": [{"type": "webhook", "url": HOOK}]})
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    nobody = (await api.post("/v1/messages", {"topic": "nobody", "body": "x"})).body["id"]  # no one: done at once
    waiting = (await api.post("/v1/messages", {"to": ["ada"], "body": "x", "send_at": later})).body["id"]
    also_nobody = (await api.post("/v1/messages", {"to": ["zed"], "body": "x"})).body["id"]

    for limit in (1, 2, 100):
        listed = await every_page(api, "/v1/messages", "messages", limit=limit)
        assert ids(listed) == [also_nobody, waiting, nobody], limit
    for item in listed:
        assert item == (await api.get(f"/v1/messages/{item['id']}")).body
    assert ids(await every_page(api, "/v1/messages", "messages", status="done")) == [also_nobody, nobody]
    [queued] = await every_page(api, "/v1/messages", "messages", status="queued")
    assert queued["id"] == waiting and queued["counts"]["queued"] == 2, "its webhook and its stream"
    assert await every_page(api, "/v1/messages", "messages", status="sending") == []


@pytest.mark.parametrize("path", ["/v1/verifications", "/v1/subscribers", "/v1/messages"])
@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ("cursor=abc", "cursor", "invalid_request"),
        ("cursor=1733500000.5", "cursor", "invalid_request"),
        ("cursor=1.5~bad%20id", "cursor", "invalid_request"),
        ("limit=0", "limit", "invalid_request"),
        ("limit=1001", "limit", "invalid_request"),
        ("limit=ten", "limit", "invalid_request"),
        ("limit=%C2%B2", "limit", "invalid_request"),
        ("limt=10", "limt", "unknown_field"),
    ],
)
async def test_what_a_list_does_not_take_is_refused_naming_it(serve, path, query, field, code):
    api = await serve()
    answer = await api.get(f"{path}?{query}")
    assert answer.status == 400 and answer.error == code, answer.body
    assert answer.body["error"]["field"] == field
    if code == "unknown_field":
        assert answer.body["error"]["did_you_mean"] == "limit"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/subscribers?topic=no%20spaces", "topic"),
        ("/v1/subscribers?to=%2B447700900120", "to"),
        ("/v1/verifications?to=12", "to"),
        ("/v1/verifications?to=", "to"),
        ("/v1/verifications?to=not-an-address%40", "to"),
        ("/v1/verifications?to=" + "1" * 321, "to"),
        ("/v1/messages?topic=news", "topic"),
        ("/v1/messages?status=failed", "status"),
        ("/v1/verifications?status=done", "status"),
    ],
)
async def test_filters_are_checked(serve, path, field):
    api = await serve()
    answer = await api.get(path)
    assert answer.status == 400 and answer.body["error"]["field"] == field, answer.body


async def test_a_list_needs_the_read_scope_and_shows_it_no_secret(serve):
    api = await serve()
    await api.call("PUT", "/v1/subscribers/ada", {"channels": [{"type": "webhook", "url": HOOK}]})
    send = (await api.post("/v1/keys", {"name": "sender", "scopes": ["send"]})).body["key"]
    read = (await api.post("/v1/keys", {"name": "reader", "scopes": ["read"]})).body["key"]
    for path in ("/v1/verifications", "/v1/subscribers", "/v1/messages"):
        refused = await api.get(path, key=send)
        assert refused.status == 403 and refused.error == "insufficient_scope", path
        assert (await api.get(path, key=None)).status == 401
        assert (await api.get(path, key=read)).status == 200, path
    [ada] = await every_page(api, "/v1/subscribers", "subscribers", key=read)
    assert ada["channels"] == [{"type": "webhook", "url": HOOK}]
    assert (await api.get("/v1/subscribers/ada", key=read)).status == 403, "one subscriber, secrets and all: admin"


async def test_the_document_says_what_the_lists_take(serve):
    api = await serve()
    document = (await api.get("/openapi.json", key=None)).body
    for path, filters in [
        ("/v1/verifications", {"status", "to"}),
        ("/v1/subscribers", {"topic"}),
        ("/v1/messages", {"status"}),
    ]:
        operation = document["paths"][path]["get"]
        params = {param["name"]: param for param in operation["parameters"]}
        assert set(params) == filters | {"cursor", "limit"}
        assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}
        assert "1-1000" in operation["summary"] and "`read` scope" in operation["description"]
    listed = document["paths"]["/v1/subscribers"]["get"]
    assert "without their `secret`" in listed["description"]
    webhook = document["components"]["schemas"]["ListedWebhookChannelOut"]
    assert set(webhook["properties"]) == {"type", "url"}
