"""Verifications, API keys, idempotency records and rate limits in Redis, shared by every node.

A verification is a hash with a version. Starting, checking and cancelling read it, let ``core`` decide, and write
the result back with a script that refuses if the version moved meanwhile; the caller then reads again and decides
again. So concurrent checks on any nodes are judged one after another, and the rules live only in ``core``.
Rate limits run inside the start script (see ``lib.lua``), so a limit shared by every request is never contended.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import fields
from typing import TypeVar

import redis.asyncio as redis

from tidings.backends.redis import lists
from tidings.backends.redis.client import PREFIX, Scripts, guarded, hash_at, hashes, raw, text
from tidings.backends.redis.queue import RedisQueue, queued_job
from tidings.core import abuse, otp
from tidings.core.otp import RETENTION, CheckResult, Refused
from tidings.core.types import Channel, Status, Verification
from tidings.errors import StoreError
from tidings.ports import IDEMPOTENCY_CLAIM, IDEMPOTENCY_PENDING, ApiKey, Lookup, Position, Started, StartRequest

TRIES = 200
"""Reads and writes one change may take when others keep changing the same verification."""

_TEXT_FIELDS = [field.name for field in fields(Verification) if field.name != "sealed_code"]


def encode(verification: Verification) -> tuple[list[str], bytes]:
    """A verification as a flat list of its text fields (absent ones left out), and its sealed code apart: the
    fields travel to the script as one JSON argument, which costs a tenth of forty arguments to pack, and the
    sealed code, which is binary, as one of its own."""
    flat: list[str] = []
    for name in _TEXT_FIELDS:
        value = getattr(verification, name)
        if value is None:
            continue
        if isinstance(value, bool):
            value = "1" if value else "0"
        elif isinstance(value, float):
            value = repr(value)
        else:
            value = str(value)
        flat += [name, value]
    return flat, verification.sealed_code


def decode(found: dict[bytes, bytes]) -> tuple[Verification, str]:
    """A verification and its version from its hash."""
    values = {key.decode(): value for key, value in found.items()}
    version = values.pop("v").decode()
    sealed = values.pop("sealed_code")
    text = {key: value.decode() for key, value in values.items()}
    verification = Verification(
        id=text["id"], to=text["to"], channel=Channel(text["channel"]), status=Status(text["status"]),
        sealed_code=sealed, locale=text["locale"], app_name=text["app_name"], template=text.get("template"),
        created_at=float(text["created_at"]), expires_at=float(text["expires_at"]),
        updated_at=float(text["updated_at"]), send_count=int(text["send_count"]),
        check_count=int(text["check_count"]), delivered_count=int(text["delivered_count"]),
        max_checks=int(text["max_checks"]), max_sends=int(text["max_sends"]),
        last_sent_at=float(text["last_sent_at"]), is_test=text["is_test"] == "1", country=text.get("country"),
    )  # fmt: skip
    return verification, version


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _ttl(verification: Verification, now: float) -> int:
    return max(1, int(verification.expires_at - now + RETENTION))


def _idempotency_key(scope: str, key: str) -> str:
    """Scopes (caller, method, path) and keys may both hold ``:``; a digest of the scope keeps two apart."""
    return f"{PREFIX}idem:{hashlib.sha256(scope.encode()).hexdigest()}:{key}"


def _pointers(to: str, channel: Channel) -> list[str]:
    """An address's latest verification on a channel (what a start looks at), then on any (what a check by
    address looks at)."""
    return [f"{PREFIX}latest:{channel.value}:{to}", f"{PREFIX}latest:{to}"]


Decided = TypeVar("Decided", CheckResult | Refused, Verification | Refused)
"""What ``core.otp`` decides on a verification that is read: a check's result, or the verification changed."""


class RedisStore:
    def __init__(self, client: redis.Redis, scripts: Scripts, queue: RedisQueue) -> None:
        self.client = client
        self.scripts = scripts
        self.queue = queue

    async def _latest(self, pointer: str) -> tuple[Verification, str] | None:
        found = await self.scripts("latest", pointer)
        return decode(_pairs(found[1:])) if found else None

    async def _by_id(self, id: str) -> tuple[Verification, str] | None:
        found = await hash_at(self.client, f"{PREFIX}ver:{id}")
        return decode(found) if found else None

    def _lookup(self, lookup: Lookup) -> Awaitable[tuple[Verification, str] | None]:
        return self._by_id(lookup.id) if lookup.id else self._latest(f"{PREFIX}latest:{lookup.to}")

    @guarded
    async def start_verification(self, request: StartRequest, now: float) -> Started | Refused:
        """One round trip when the address has no verification yet (the usual case); when it has, the script
        answers with it, ``core`` decides again on it, and a second round trip writes the decision."""
        pointers = _pointers(request.to, request.channel)
        existing: tuple[Verification, str] | None = None
        for _ in range(TRIES):
            decision = otp.decide_start(existing[0] if existing else None, now, request.resend_cooldown)
            if isinstance(decision, Refused):
                return decision
            resent = isinstance(decision, otp.Resend)
            verification = decision.verification if isinstance(decision, otp.Resend) else request.fresh
            job = request.job and otp.send_job(request.job, verification)
            text, sealed = encode(verification)
            plan = {
                "id": verification.id,
                "created_at": repr(verification.created_at),
                "fields": text,
                "expect": existing[0].id if existing else "",
                "version": existing[1] if existing else "0",
                "pointers": pointers,
                "ttl": _ttl(verification, now),
                "now": repr(now),
                "limits": [[limit.key, limit.count, limit.period] for limit in request.limits],
                "job": queued_job(job) if job else None,
            }
            answer = await self.scripts("start", plan, sealed)
            if answer[0] == b"ok":
                if job:
                    self.queue.notify()
                return Started(verification, resent)
            if answer[0] == b"limited":
                return abuse.refusal(request.limits[int(answer[1]) - 1], float(answer[2]))
            existing = decode(_pairs(answer[2:])) if len(answer) > 1 else None
        raise StoreError("the verification keeps changing; try again", retry_after=1)

    async def _change(
        self,
        read: Callable[[], Awaitable[tuple[Verification, str] | None]],
        decide: Callable[[Verification], Decided],
        now: float,
    ) -> Decided | None:
        """Read, decide, write back if unchanged; again if it changed."""
        for _ in range(TRIES):
            found = await read()
            if found is None:
                return None
            verification, version = found
            result = decide(verification)
            changed = result.verification if isinstance(result, CheckResult) else result
            if not isinstance(changed, Verification):
                return result
            text, sealed = encode(changed)
            if await self.scripts("save", changed.id, version, _ttl(changed, now), text, sealed):
                return result
        raise StoreError("the verification keeps changing; try again", retry_after=1)

    @guarded
    async def check_verification(
        self, lookup: Lookup, matches: Callable[[Verification], bool], now: float
    ) -> CheckResult | Refused | None:
        return await self._change(lambda: self._lookup(lookup), lambda v: otp.check(v, matches, now), now)

    @guarded
    async def cancel_verification(self, id: str, now: float) -> Verification | Refused | None:
        return await self._change(lambda: self._by_id(id), lambda v: otp.cancel(v, now), now)

    @guarded
    async def get_verification(self, id: str) -> Verification | None:
        found = await self._by_id(id)
        return found[0] if found else None

    @guarded
    async def get_verifications(self, ids: list[str]) -> dict[str, Verification]:
        found = await hashes(self.client, [f"{PREFIX}ver:{id}" for id in ids])
        return {id: decode(hash)[0] for id, hash in zip(ids, found, strict=True) if hash}

    @guarded
    async def list_verifications(
        self, to: str | None, status: Status | None, after: Position | None, limit: int, now: float
    ) -> list[Verification]:
        async def read(ids: list[str]) -> dict[str, Verification | None]:
            """The verifications; with a filter, each one's address and status are looked at first."""
            if to is None and status is None:
                return dict(await self.get_verifications(ids))
            async with self.client.pipeline(transaction=False) as pipe:
                for id in ids:
                    pipe.hmget(f"{PREFIX}ver:{id}", "to", "status", "expires_at")
                probes = await pipe.execute()
            matching: list[str] = []
            answer: dict[str, Verification | None] = {}
            for id, (address, stored, expires_at) in zip(ids, probes, strict=True):
                if stored is None:
                    continue  # expired: no answer for it, and its entry goes
                shown = otp.status_at(Status(stored.decode()), float(expires_at), now)
                if to in (None, address.decode()) and status in (None, shown):
                    matching.append(id)
                else:
                    answer[id] = None
            answer.update(await self.get_verifications(matching))
            return answer

        return await lists.newest_first(self.client, self.scripts, lists.VERIFICATIONS, "ver:", after, limit, read)

    @guarded
    async def add_key(self, key: ApiKey) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(f"{PREFIX}key:{key.id}", mapping={
                "hash": key.key_hash, "name": key.name, "scopes": " ".join(sorted(key.scopes)),
                "created_at": repr(key.created_at),
            })  # fmt: skip
            pipe.set(f"{PREFIX}keyhash:{key.key_hash}", key.id)
            pipe.zadd(f"{PREFIX}keys", {key.id: key.created_at})
            await pipe.execute()

    async def _key(self, id: str) -> ApiKey | None:
        found = await hash_at(self.client, f"{PREFIX}key:{id}")
        if not found or b"revoked_at" in found:
            return None
        return ApiKey(id, found[b"name"].decode(), frozenset(found[b"scopes"].decode().split()),
                      float(found[b"created_at"]), found[b"hash"].decode())  # fmt: skip

    @guarded
    async def find_key(self, key_hash: str) -> ApiKey | None:
        id = await self.client.get(f"{PREFIX}keyhash:{key_hash}")
        return await self._key(text(id)) if id else None

    @guarded
    async def list_keys(self) -> list[ApiKey]:
        keys = [await self._key(text(id)) for id in await self.client.zrange(f"{PREFIX}keys", 0, -1)]
        return [key for key in keys if key is not None]

    @guarded
    async def revoke_key(self, id: str, now: float) -> bool:
        found = await self.client.hget(f"{PREFIX}key:{id}", "hash")
        if found is None or not await self.client.hsetnx(f"{PREFIX}key:{id}", "revoked_at", repr(now)):
            return False
        await self.client.delete(f"{PREFIX}keyhash:{text(found)}")
        await self.client.zrem(f"{PREFIX}keys", id)
        return True

    @guarded
    async def idempotent_claim(
        self, scope: str, key: str, fingerprint: str, now: float
    ) -> tuple[str, int, bytes] | None:
        name, claim = _idempotency_key(scope, key), f"{fingerprint}\n{IDEMPOTENCY_PENDING}\n".encode()
        while not await self.client.set(name, claim, nx=True, ex=int(IDEMPOTENCY_CLAIM)):
            found = await self.client.get(name)
            if found is not None:  # else its claim was given up meanwhile: claim it again
                kept, status, body = raw(found).split(b"\n", 2)
                return kept.decode(), int(status), body
        return None

    @guarded
    async def idempotent_put(
        self, scope: str, key: str, fingerprint: str, status: int, body: bytes, now: float
    ) -> None:
        record = f"{fingerprint}\n{status}\n".encode() + body
        await self.client.set(_idempotency_key(scope, key), record, ex=int(RETENTION))

    @guarded
    async def idempotent_release(self, scope: str, key: str) -> None:
        await self.scripts("release_claim", _idempotency_key(scope, key), str(IDEMPOTENCY_PENDING))

    @guarded
    async def purge(self, now: float) -> int:
        """Everything here expires by itself (Redis TTLs) but the list's entries of the verifications that did."""
        return await lists.trim_verifications(self.client, self.scripts)

    @guarded
    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        """The connection and the queue belong to the backend (``open_redis``), which closes them."""
