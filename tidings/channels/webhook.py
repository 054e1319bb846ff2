"""Webhooks: a signed POST to a subscriber's URL, as Standard Webhooks describes (https://www.standardwebhooks.com).

Each destination host gets its own concurrency bound and rate, and two kinds of circuit breaker: one for the host,
opened when it does not answer at all (down, unreachable, timing out), and one for each endpoint (URL), opened when
it answers with server errors, so that a broken path does not hold up the host's other endpoints. One slow or dead
receiver holds up its own deliveries and nobody else's: what it cannot take now is deferred (not counted as a try)
rather than waited for.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from collections.abc import Callable

from standardwebhooks import Webhook
from yarl import URL

from tidings.core import webhook_secrets
from tidings.core.breaker import Breaker, State
from tidings.core.push import WebhookCall
from tidings.core.ratelimit import Limit, gcra
from tidings.core.types import Deferred, Delivered, Permanent, SendOutcome, Transient
from tidings.outbound.client import WEBHOOK_RETRIES, HttpClient, outcome_for_status
from tidings.outbound.guard import PrivateAddress

BUSY_WAIT = 1.0
"""How long a delivery to a saturated host is put off."""
MAX_COOLDOWN = 600.0
"""The longest a dead host's circuit stays open between probes."""
MAX_RATE_SLEEP = 1.0
"""A wait for the host's rate shorter than this is slept through; a longer one is deferred."""


NO_ANSWER = frozenset({"timeout", "connection_error"})
"""Failures that are the host's (it did not answer), as opposed to an endpoint's (it answered with an error)."""


class _Host:
    """What is known of one destination host; dropped once nothing about it is worth remembering."""

    __slots__ = ("breaker", "endpoints", "slots", "tat", "users", "waiting")

    def __init__(self, breaker: Breaker, concurrency: int) -> None:
        self.breaker = breaker
        self.endpoints: dict[str, Breaker] = {}
        """The circuit of each endpoint lately failing or being probed; one doing well is not kept."""
        self.slots = asyncio.Semaphore(concurrency)
        self.waiting = 0
        self.users = 0
        self.tat: float | None = None


class Webhooks:
    def __init__(
        self,
        http: HttpClient,
        *,
        name: str = "webhook",
        per_host_concurrency: int = 32,
        per_host_rate: float = 0,
        breaker_threshold: int = 5,
        breaker_cooldown: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``http`` should come from ``channels.guard.guarded_client``, which keeps it off private addresses and
        follows no redirect (the operator's own ``push.feedback_url`` needs no guard). ``name`` is the lane's."""
        self.name = name
        self.http = http
        self.per_host_concurrency = per_host_concurrency
        self.breaker_threshold = breaker_threshold
        self.breaker_cooldown = breaker_cooldown
        self.clock = clock
        burst = math.ceil(per_host_rate)
        self._rate = Limit("webhook_host", "", burst, burst / per_host_rate) if per_host_rate > 0 else None
        self._hosts: dict[str, _Host] = {}

    def breakers(self) -> dict[str, State]:
        """The circuit of each host being sent to or lately failing, and of each endpoint lately failing, for
        metrics; what is doing well is left out."""
        circuits: dict[str, State] = {}
        for key, host in self._hosts.items():
            circuits[key] = host.breaker.state
            circuits.update((url, breaker.state) for url, breaker in host.endpoints.items())
        return circuits

    def _breaker(self) -> Breaker:
        return Breaker(self.breaker_threshold, self.breaker_cooldown, max(MAX_COOLDOWN, self.breaker_cooldown))

    async def send(self, call: WebhookCall) -> SendOutcome:
        try:
            url = URL(call.url)
        except ValueError:
            url = URL()
        if url.scheme not in ("http", "https") or not url.host:
            return Permanent("invalid_url", "a webhook URL is an http:// or https:// URL with a host")
        if not webhook_secrets.valid(call.secret):
            limit = webhook_secrets.MAX_KEY_BYTES
            return Permanent("invalid_secret", f"a webhook secret is whsec_ and 1-{limit} bytes in base64")
        signer = Webhook(call.secret)
        key = f"[{url.host}]:{url.port}" if ":" in url.host else f"{url.host}:{url.port}"
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host(self._breaker(), self.per_host_concurrency)
        host.users += 1
        try:
            return await self._send_to(key, host, call, signer)
        finally:
            host.users -= 1
            self._forget_if_idle(key, host, call.url)

    async def _send_to(self, key: str, host: _Host, call: WebhookCall, signer: Webhook) -> SendOutcome:
        """Wait for one of the host's slots and its rate, unless that means queueing behind a full line. The
        circuit is asked once a slot is free, so what waited while the host was failing does not go out after it."""
        if host.waiting >= self.per_host_concurrency and host.slots.locked():  # locked() walks the waiters
            return Deferred("host_busy", self.clock() + BUSY_WAIT, "too many requests in flight to this host")
        host.waiting += 1
        try:
            await host.slots.acquire()
        finally:
            host.waiting -= 1
        try:
            now = self.clock()
            until = host.breaker.allow(now)
            if until is not None:
                return Deferred("circuit_open", until, f"{key} did not answer too often; the next try goes as a probe")
            endpoint = host.endpoints.get(call.url) or host.endpoints.setdefault(call.url, self._breaker())
            until = endpoint.allow(now)
            if until is not None:
                host.breaker.released()
                return Deferred("circuit_open", until, f"{call.url} failed too often; the next try goes as a probe")
            outcome: SendOutcome | None = None
            try:
                wait = self._rate_wait(host, now)
                if wait >= MAX_RATE_SLEEP:
                    outcome = Deferred("rate_limited", now + wait, "this host's rate is used up")
                    return outcome
                if wait > 0:
                    await asyncio.sleep(wait)
                outcome = await self._post(call, signer)
                return outcome
            finally:
                self._report(host.breaker, endpoint, outcome)
        finally:
            host.slots.release()

    def _rate_wait(self, host: _Host, now: float) -> float:
        """Seconds before the host's rate allows a send; a wait short enough to sleep through is booked at once, so
        those sleeping at the same time each get their own turn."""
        if self._rate is None:
            return 0.0
        verdict = gcra(host.tat, now, self._rate)
        if verdict.allowed:
            host.tat = verdict.tat
        elif verdict.retry_after < MAX_RATE_SLEEP:
            host.tat = verdict.tat + self._rate.interval
        return verdict.retry_after

    async def _post(self, call: WebhookCall, signer: Webhook) -> SendOutcome:
        timestamp = int(self.clock())
        body = call.body.decode()
        headers = {
            "webhook-id": call.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signer.sign(call.id, dt.datetime.fromtimestamp(timestamp, dt.UTC), body),
            "Content-Type": "application/json",
            "User-Agent": "tidings",
        }
        answer = await self.http.request("POST", call.url, data=call.body, headers=headers)
        if isinstance(answer, Transient | Permanent):
            return answer
        if answer.ok:
            return Delivered()
        return outcome_for_status(answer, retry=WEBHOOK_RETRIES)

    def _report(self, host: Breaker, endpoint: Breaker, outcome: SendOutcome | None) -> None:
        """Tell the breakers how the host and the endpoint did. Silence counts against the host, a server error
        against the endpoint (its host answered); a 4xx is an answer, a 429 is the host pacing us, and a deferral
        or a refused address never reached it."""
        now = self.clock()
        match outcome:
            case Transient(error="http_429") | Permanent(error=PrivateAddress.error) | Deferred() | None:
                host.released()
                endpoint.released()
            case Transient(error=error) if error in NO_ANSWER:
                host.failed(now)
                endpoint.released()
            case Transient():
                host.succeeded(now)
                endpoint.failed(now)
            case _:
                host.succeeded(now)
                endpoint.succeeded(now)

    def _forget_if_idle(self, key: str, host: _Host, url: str) -> None:
        now = self.clock()
        endpoint = host.endpoints.get(url)
        if endpoint is not None and endpoint.healthy:
            del host.endpoints[url]
        idle = host.users == 0 and host.breaker.healthy
        if idle and not host.endpoints and (host.tat is None or host.tat <= now) and self._hosts.get(key) is host:
            del self._hosts[key]
