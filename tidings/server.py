"""Serving: uvloop, the listening socket, and a graceful stop on SIGTERM or SIGINT.

On a signal the server stops accepting, lets requests in progress finish, then the dispatcher finishes or gives
back its leased jobs (``api.app``), so nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from tidings.api.app import create_app
from tidings.core.settings import Settings

log = logging.getLogger("tidings")


def run(settings: Settings) -> None:
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # uvloop does not exist on Windows
        loop = asyncio.new_event_loop()
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop=loop,
        access_log=log.getChild("access") if settings.access_log else None,
        print=lambda _: log.info("listening on http://%s:%d", settings.host, settings.port),
        shutdown_timeout=settings.dispatch.shutdown_grace,
        backlog=4096,
    )
