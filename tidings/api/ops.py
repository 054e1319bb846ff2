"""Operations: liveness, readiness, Prometheus metrics, the OpenAPI document and a page that renders it offline."""

from __future__ import annotations

import asyncio
import logging
import time
from importlib import resources

from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from swagger_ui.utils import SWAGGER_UI_PY_ROOT

from tidings.api.models import Cluster, Health, NodeOut
from tidings.api.routing import Reply, Router, json
from tidings.api.state import STATE
from tidings.errors import StoreError

log = logging.getLogger("tidings.api")
router = Router()
TAG = "operations"
DEPTH_TIMEOUT = 2.0
"""Seconds a scrape waits for the queue depth, well inside Prometheus's own scrape timeout (10 s by default)."""
DOCS_PAGE = resources.files(__package__).joinpath("docs.html").read_text()
OPENAPI = web.AppKey("openapi", dict)


@router.route("GET", "/healthz", summary="The process is alive", scope=None, tag=TAG, answers={200: Health})
async def healthz(request: web.Request) -> web.Response:
    return json(Health(status="ok"))


@router.route(
    "GET",
    "/readyz",
    summary="The store and queue answer",
    scope=None,
    tag=TAG,
    answers={200: Health, 503: Health},
)
async def readyz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        await state.store.ping()
        await state.queue.depth()
    except Exception as exc:
        answer = json(Health(status="unavailable", checks={"store": type(exc).__name__}), 503)
        answer.headers["Retry-After"] = "5"
        return answer
    return json(Health(status="ok", checks={"store": "ok", "queue": "ok"}))


@router.route(
    "GET",
    "/v1/cluster",
    summary="The live nodes (processes) and the queue depths",
    scope="read",
    tag=TAG,
    answers={200: Cluster},
)
async def cluster(request: web.Request) -> web.Response:
    state = request.app[STATE]
    nodes = await state.nodes.live(time.time())
    depth = await state.queue.depth()
    return json(
        Cluster(
            backend=state.backend,
            nodes=[NodeOut.of(node) for node in nodes],
            queues=depth,
            queued=sum(depth.values()),
        )
    )


@router.route(
    "GET",
    "/metrics",
    summary="Prometheus metrics",
    scope=None,
    tag=TAG,
    answers={200: Reply("The Prometheus text format (0.0.4).", "text/plain")},
)
async def metrics(request: web.Request) -> web.Response:
    """Served even when the store does not answer, since the rest is in memory and matters most then; the queue
    depth keeps its last reading."""
    state = request.app[STATE]
    try:
        async with asyncio.timeout(DEPTH_TIMEOUT):
            state.metrics.set_queue_depth(await state.queue.depth())
    except (StoreError, TimeoutError) as exc:
        log.warning("metrics without a fresh queue depth: %s", exc or "the store took too long")
    response = web.Response(body=generate_latest(state.metrics.registry))
    response.headers["Content-Type"] = CONTENT_TYPE_PLAIN_0_0_4  # the text format every scraper reads
    return response


@router.route(
    "GET",
    "/openapi.json",
    summary="This document",
    scope=None,
    tag=TAG,
    answers={200: Reply("The OpenAPI 3.1 document.", "application/json", {"type": "object"})},
)
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


@router.route(
    "GET",
    "/docs",
    summary="The API reference, rendered",
    scope=None,
    tag=TAG,
    answers={200: Reply("A page that renders this document.", "text/html")},
)
async def docs(request: web.Request) -> web.Response:
    return web.Response(text=DOCS_PAGE, content_type="text/html")


def add_static(app: web.Application) -> None:
    """Swagger UI's files come from the installed package, so ``/docs`` needs no network. They are listed once:
    aiohttp's static route answers a missing file with an empty 404 of its own, not the JSON error of every other
    path."""
    files = {path.name: path for path in (SWAGGER_UI_PY_ROOT / "static").iterdir() if path.is_file()}

    async def static(request: web.Request) -> web.FileResponse:
        path = files.get(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound(text=f"there is no file {request.path[:200]}; /docs loads the files it needs")
        return web.FileResponse(path)

    app.router.add_get("/docs/static/{name}", static)
