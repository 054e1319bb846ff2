"""The OpenAPI document says exactly what the server takes and answers: schemathesis makes requests from it, valid
and not, sends them to a running tidings and holds every answer to the document, with every check it has and all of
its phases (examples, coverage, fuzzing, stateful), as ``schemathesis run`` does."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import load_all_checks
from schemathesis.core.failures import Failure
from schemathesis.engine import events, from_schema
from schemathesis.engine.statistic import Statistic
from schemathesis.openapi.checks import RejectedPositiveData

from tests.conftest import ROOT_KEY
from tidings.api import idempotency

pytestmark = pytest.mark.filterwarnings(
    # Hypothesis warns when it writes out a large example (a body of 100 kB, say), which says nothing of the server.
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
)
SEED = 20251207
EXAMPLES = 50
CONFIG = {
    # The anti-abuse limits answer 429 (documented) to a number sent to again and again, as a fuzzer does: off, so
    # that its requests reach the rest.
    "limits": {"per_number_hour": 0, "per_number_day": 0},
    "verify": {"resend_cooldown": 0, "max_sends": 100},
}
PARTLY_DESCRIBED = re.compile(r"to|phone|email|channels\[\d+\]\.(url|endpoint|secret)|send_at|template|since|step")
"""Fields the document can describe only in part, so that a request valid by it may be refused with 400 naming one:
a phone number must be a possible one for its country (by phonenumbers' lengths per country), an email address one
that email-validator takes, a URL's host a name DNS could hold, a webhook secret base64 that decodes, `send_at` at
most a year from now, and `template` the name of a configured template; the stats' `since` before `until` and at
most 31 days before it, and a `step` that makes at most 1,440 buckets (of whole hours beyond the last day).
Likewise a message may name the `apns` and `fcm` channels only once they are configured (422
`channel_not_configured`)."""


def fuzz(document: dict[str, Any], base_url: str) -> Statistic:
    """Blocks (schemathesis sends with ``requests``): run it outside the event loop that serves tidings."""
    load_all_checks()  # the OpenAPI checks register when imported, as the command line does at its start
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,  # the same requests every run
            "base-url": base_url,
            "headers": {"Authorization": f"Bearer {ROOT_KEY}"},
            # Every check; `max_response_time` is the one that needs a bound: a generous one, as a hang is a fault.
            "checks": {"enabled": True, "max_response_time": 5},
            # Nothing kept between runs, or written into the tree: no example database, no cache.
            "generation": {"max-examples": EXAMPLES, "database": "none"},
            "cache": {"enabled": False},
            "operations": [
                # A stream never ends: its answer is read for this long, then held to the document.
                {"include-name": "GET /v1/subscribers/{id}/stream", "request-timeout": 0.5},
                {"include-name": "GET /v1/events", "request-timeout": 0.5},
                # Past its handshake a WebSocket is no longer HTTP, which is all an OpenAPI document and this
                # fuzzer's client speak; tests/push covers it.
                {"include-name": "GET /v1/subscribers/{id}/ws", "enabled": False},
            ],
        }
    )
    schema = schemathesis.openapi.from_dict(document, config=config)  # from_url would leave out GET /openapi.json
    keys = itertools.count()

    @schema.hook
    def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
        """A client sends a new Idempotency-Key with each new request; one repeated (as a fuzzer repeats its values)
        turns a request into a replay of another's answer, or a 422 if its body differs."""
        if case.headers and idempotency.KEY.match(str(case.headers.get("Idempotency-Key", ""))):
            case.headers["Idempotency-Key"] = f"fuzz-{next(keys)}"
        return case

    @schema.hook
    def filter_failure(
        context: schemathesis.HookContext, failure: Failure, case: schemathesis.Case, response: schemathesis.Response
    ) -> bool:
        """Of the refusals of a request valid by the document, only these are right."""
        return not (isinstance(failure, RejectedPositiveData) and _partly_described(response))

    statistic = Statistic()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            statistic.on_scenario_finished(event.recorder)
        elif isinstance(event, events.NonFatalError | events.FatalError):
            raise AssertionError(f"the fuzzer could not run: {event}")
    return statistic


def _partly_described(response: schemathesis.Response) -> bool:
    """Whether the answer refuses a field that the document describes only in part."""
    if response.status_code not in (400, 422):
        return False
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    if response.status_code == 422:
        return error.get("code") == "channel_not_configured"
    return error.get("code") == "invalid_request" and PARTLY_DESCRIBED.fullmatch(str(error.get("field"))) is not None


def report(statistic: Statistic) -> str:
    lines = []
    for label, groups in statistic.failures.items():
        for group in groups.values():
            answer = "" if group.response is None else f"{group.response.status_code} {group.response.text[:300]}"
            for failure in group.failures:
                lines.append(f"{label} -> {answer}\n  {failure.title}: {failure.message}\n  {group.code_sample}")
    return "\n".join(lines)


@pytest.mark.timeout(600)  # every operation, 50 examples each: a minute on a quiet machine, more on a busy one
async def test_the_server_does_what_its_document_says(serve: Any, redis_url: str) -> None:
    # An API node on Redis sends nothing: the webhooks and push endpoints the fuzzer makes up (random host names)
    # are queued for the workers, none of which runs, rather than looked up and called.
    api = await serve({**CONFIG, "database": redis_url, "role": "api"})
    document = (await api.get("/openapi.json", key=None)).body
    started = time.monotonic()
    statistic = await asyncio.to_thread(fuzz, document, api.base_url.rstrip("/"))
    print(
        f"\nschemathesis {schemathesis.__version__}: {len(statistic.tested_operations)} operations,"
        f" {statistic.total_cases} cases, {statistic.total_failures} failures"
        f" ({statistic.filtered_failures} refused on fields described in part), {time.monotonic() - started:.1f} s"
    )
    assert statistic.total_failures == 0, report(statistic)


async def test_where_the_server_and_its_document_disagreed(serve: Any) -> None:
    """What the fuzzer found, kept as quick cases."""
    api = await serve(CONFIG)
    assert (await api.call("PUT", "/v1/subscribers/ada")).status == 201, "no body reads as {}, a valid subscriber"
    check = await api.get("/v1/verifications/check")
    assert check.status == 405 and check.headers["Allow"] == "POST", "`check` is no verification id"
    started = await api.post("/v1/verifications", {"to": "+8613800138000", "code_length": 6.0})
    assert started.status == 201, "JSON, and JSON Schema's integer, do not tell 6.0 from 6"
    cancel, key = f"/v1/verifications/{started.body['id']}/cancel", {"Idempotency-Key": "cancel-1"}
    assert (await api.post(cancel, headers=key)).status == 200
    assert (await api.post(cancel, {}, headers=key)).headers["Idempotent-Replayed"] == "true", "{} is no body"
    unix_time = await api.post("/v1/messages", {"topic": "news", "send_at": 1893456000})
    assert unix_time.status == 400 and unix_time.body["error"]["field"] == "send_at", "a date-time is RFC 3339"
    padded = await api.post("/v1/messages", {"to": [" ada\r\n"], "body": "x"})
    assert padded.status == 202 and padded.body["recipients"] == 1
    stream = await api.get("/v1/subscribers/ada/stream?since=%C2%84", headers={"Last-Event-ID": ""})
    assert stream.status == 400 and stream.body["error"]["field"] == "since", "an empty Last-Event-ID is none"
