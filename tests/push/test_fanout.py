"""A message to a large topic is answered before its deliveries are written, and they are all written after."""

from __future__ import annotations

import pytest

from tests.conftest import merge
from tests.helpers import eventually
from tests.push.conftest import receiver, subscribe  # noqa: F401 - a fixture these tests use


@pytest.mark.parametrize("database", ["sqlite", "redis"])
async def test_a_large_topic_is_accepted_at_once_and_delivered_in_full(serve, receiver, database, request):  # noqa: F811
    hooks = await receiver()
    config = {"push": {"fanout_after": 2}}
    if database == "redis":
        config = merge(config, {"database": request.getfixturevalue("redis_url")})
    api = await serve(config)
    names = [f"u{n}" for n in range(5)]
    await subscribe(api, hooks, names, topics=["big"])
    sent = await api.post("/v1/messages", {"topic": "big", "body": "hi", "channels": ["webhook", "stream"]})
    assert sent.status == 202 and sent.body["recipients"] == 5
    path = f"/v1/messages/{sent.body['id']}"

    async def done() -> bool:
        return (await api.get(path)).body["status"] == "done"

    await eventually(done)
    body = (await api.get(path)).body
    assert body["counts"]["delivered"] == 10 and body["recipients"] == 5
    assert sorted(hook.path for hook in hooks.receiver.received) == sorted(f"/hook/{n}" for n in names)
