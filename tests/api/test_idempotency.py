"""``Idempotency-Key``: a retried POST gets the first answer back, on this node or another, and is never done twice."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time

from tests.helpers import TEST_CONFIG
from tidings.api import idempotency


async def test_idempotency_key_returns_the_first_answer(serve):
    api = await serve({"verify": {"resend_cooldown": 0}})
    headers = {"Idempotency-Key": "order-42"}
    first = await api.post("/v1/verifications", {"to": "+8613800138000"}, headers=headers)
    second = await api.post("/v1/verifications", {"to": "+8613800138000"}, headers=headers)
    assert first.status == second.status == 201
    assert first.body == second.body and second.body["send_count"] == 1
    assert second.headers["Idempotent-Replayed"] == "true"
    other = await api.post("/v1/verifications", {"to": "+8613800138001"}, headers=headers)
    assert other.status == 422 and other.error == "idempotency_key_reused"


async def test_idempotency_key_holds_for_a_post_without_a_body(serve):
    api = await serve()
    started = await api.post("/v1/verifications", {"to": "+8613800138000"})
    cancel = f"/v1/verifications/{started.body['id']}/cancel"
    first = await api.post(cancel, headers={"Idempotency-Key": "cancel-1"})
    retried = await api.post(cancel, headers={"Idempotency-Key": "cancel-1"})
    assert first.status == retried.status == 200 and first.body == retried.body
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert (await api.post(cancel)).status == 409


async def test_a_retry_while_another_node_holds_the_key_waits_then_answers_409(serve, tmp_path):
    """Another node's request under way is a claim in the shared store; here one is written there directly."""
    api = await serve()
    body = b'{"to": "+8613800138000"}'
    with sqlite3.connect(tmp_path / "tidings.db") as other_node:
        other_node.execute(
            "INSERT INTO idempotency VALUES (?, ?, ?, ?, ?, ?)",
            ("key_root:POST:/v1/verifications", "k9", hashlib.sha256(body).hexdigest(), 0, b"", time.time()),
        )
    started = time.monotonic()
    headers = {"Idempotency-Key": "k9", "Content-Type": "application/json"}
    answer = await api.post("/v1/verifications", data=body, headers=headers)
    assert answer.status == 409 and answer.error == "idempotency_key_in_use" and answer.headers["Retry-After"] == "1"
    assert time.monotonic() - started >= idempotency.WAIT_FOR_FIRST


async def test_an_answer_kept_before_answers_were_sealed_is_still_replayed(serve, tmp_path):
    api = await serve()
    body = b'{"to": "+8613800138000"}'
    kept = b'{"id": "ver_kept", "status": "pending"}'
    with sqlite3.connect(tmp_path / "tidings.db") as earlier:
        earlier.execute(
            "INSERT INTO idempotency VALUES (?, ?, ?, ?, ?, ?)",
            ("key_root:POST:/v1/verifications", "k8", hashlib.sha256(body).hexdigest(), 201, kept, time.time()),
        )
    headers = {"Idempotency-Key": "k8", "Content-Type": "application/json"}
    answer = await api.post("/v1/verifications", data=body, headers=headers)
    assert answer.status == 201 and answer.body == json.loads(kept) and answer.headers["Idempotent-Replayed"] == "true"


async def test_idempotency_key_concurrent_retries_send_once(serve):
    api = await serve({"verify": {"resend_cooldown": 0}})
    answers = await asyncio.gather(
        *(api.post("/v1/verifications", {"to": "+8613800138000"}, headers={"Idempotency-Key": "k1"}) for _ in range(10))
    )
    assert {a.body["id"] for a in answers} == {answers[0].body["id"]}
    assert {a.body["send_count"] for a in answers} == {1}


async def test_a_retry_that_writes_the_same_json_differently_is_the_same_request(serve):
    api = await serve(TEST_CONFIG)
    headers = {"Idempotency-Key": "spaced", "Content-Type": "application/json"}
    first = await api.post("/v1/verifications", data=b'{"to": "+8613800138000", "locale": "en"}', headers=headers)
    again = await api.post("/v1/verifications", data=b'{"locale":"en","to":"+8613800138000"}', headers=headers)
    assert first.status == again.status == 201 and again.headers["Idempotent-Replayed"] == "true"
    other = await api.post("/v1/verifications", data=b'{"to": "+8613800138000"}', headers=headers)
    assert other.status == 422 and other.error == "idempotency_key_reused"
