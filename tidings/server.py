"""Serving: uvloop, the listening socket, and a graceful stop on SIGTERM or SIGINT.

On a signal the server stops accepting, lets requests in progress finish, then the dispatcher finishes or gives
back its leased jobs (``wiring``), so nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import gc
import logging

from aiohttp import web

from tidings.api.access_log import AccessLogger
from tidings.core.settings import Settings
from tidings.runtime.oslimits import raise_open_files
from tidings.wiring import build_app

log = logging.getLogger("tidings")
YOUNG_COLLECTION_EVERY = 20_000


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it exists (not on Windows), the standard loop elsewhere."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(settings: Settings) -> None:
    raise_open_files()  # every live stream is an open file
    app = build_app(settings)
    app.on_startup.append(_tune_garbage_collector)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        loop=new_loop(),
        access_log_class=AccessLogger,
        access_log=log.getChild("access") if settings.access_log else None,
        print=lambda _: log.info("listening on http://%s:%d", settings.host, settings.port),
        shutdown_timeout=settings.dispatch.shutdown_grace,
        backlog=4096,
    )


async def _tune_garbage_collector(app: web.Application) -> None:
    """Two changes to the collector, both measured under load (``bench/verifications.py --api-only``).

    What startup made (modules, models, schemas, settings) lives as long as the process; left to the collector,
    every full collection walks it again, and those pauses set the p99 of a request (70-107 ms against 32-47 ms
    frozen). And a young collection every 700 net allocations, Python's default, ran about 90 times a second and
    took 5% of the server's CPU (0.49-0.56 s in 11 s); every 20,000, a few times a minute (0.04-0.07 s). Nearly
    everything a request makes is freed by reference counting, so what waits longer is only cyclic garbage."""
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY)
