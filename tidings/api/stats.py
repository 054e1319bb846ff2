"""``GET /v1/stats``: what happened over time, per bucket, for the dashboard and for operators' own charts."""

from __future__ import annotations

import datetime as dt
import time

from aiohttp import web
from pydantic import BaseModel, Field

from tidings.api import paging
from tidings.api.models import RFC3339
from tidings.api.routing import Param, Router, json
from tidings.api.state import STATE
from tidings.core import stats
from tidings.core.types import rfc3339
from tidings.errors import InvalidInput

router = Router()
TAG = "stats"
DATE_TIME = {"type": "string", "format": "date-time"}
QUERY = {
    "since": Param("Start of the first bucket (RFC 3339); an hour before `until` by default.", DATE_TIME),
    "until": Param("End of the last bucket (RFC 3339); now by default.", DATE_TIME),
    "step": Param(
        "Seconds per bucket: a multiple of 60; counts older than 24 h come per hour (a multiple of 3600). At most"
        f" {stats.MAX_BUCKETS} buckets and 31 days.",
        {"type": "integer", "minimum": 60, "maximum": 31 * 86400, "multipleOf": 60, "default": 60},
    ),
}


class Verifications(BaseModel):
    started: int
    approved: int
    failed: int = Field(description="Every provider refused the code's sends.")


class Deliveries(BaseModel):
    delivered: int
    failed: int


class Sends(BaseModel):
    ok: int = Field(description="Requests the provider (or push service, or webhook) accepted.")
    error: int = Field(description="Requests refused or failed (each retry is one).")


class Circuits(BaseModel):
    opened: int = Field(description="Times the provider's circuit breaker opened.")


class Totals(BaseModel):
    verifications: Verifications
    deliveries: dict[str, Deliveries] = Field(description="By channel.")
    sends: dict[str, Sends] = Field(description="By provider or push channel.")
    circuits: dict[str, Circuits] = Field(description="By provider.")


class Bucket(Totals):
    at: str = Field(description="The bucket's start.")


class StatsOut(BaseModel):
    step: int
    since: str
    until: str
    buckets: list[Bucket]
    totals: Totals = Field(description="The sums over every bucket.")


@router.route(
    "GET",
    "/v1/stats",
    summary="Counts per time bucket: codes started, approved and failed; deliveries by channel; sends by provider",
    scope="read",
    tag=TAG,
    answers={200: StatsOut},
    query=QUERY,
)
async def get(request: web.Request) -> web.Response:
    now = time.time()
    query = request.query
    until = _time(query.get("until"), "until", now)
    since = _time(query.get("since"), "since", until - 3600)
    step = _step(query.get("step", "60"))
    if since >= until:
        raise InvalidInput("since: must be before until", field="since")
    if until - since > 31 * 86400:
        raise InvalidInput("since: at most 31 days before until", field="since")
    if (until - since) / step > stats.MAX_BUCKETS:
        raise InvalidInput(f"step: at most {stats.MAX_BUCKETS} buckets; take a longer step", field="step")
    resolution = stats.resolution_for(since, step, now)
    if isinstance(resolution, str):
        raise InvalidInput(f"step: {resolution}", field="step")
    first = stats.bucket(since, step)
    counts = await request.app[STATE].stats.read(resolution, first, until)
    answer = StatsOut(
        step=step,
        since=rfc3339(first),
        until=rfc3339(until),
        buckets=[Bucket.model_validate(bucket) for bucket in stats.series(counts, since, until, step)],
        totals=Totals.model_validate(stats.total(counts, first, until)),
    )
    return json(answer)


def _time(text: str | None, field: str, default: float) -> float:
    if text is None:
        return default
    if not RFC3339.fullmatch(text):
        raise InvalidInput(f"{field}: an RFC 3339 time with its time zone, e.g. 2030-01-01T09:00:00Z", field=field)
    try:
        return dt.datetime.fromisoformat(text.upper().replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidInput(f"{field}: not a valid time", field=field) from None


def _step(text: str) -> int:
    step = paging.whole_number(text)
    if step is None or step < 60 or step % 60:
        raise InvalidInput("step: seconds, a multiple of 60", field="step")
    if step > 31 * 86400:
        raise InvalidInput("step: at most 31 days", field="step")
    return step
