"""The application: routes and middlewares, and the resources it runs on, opened and closed in pairs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web

from tidings.api import keys, ops, verifications
from tidings.api.client_ip import parse_networks
from tidings.api.middlewares import handle_errors
from tidings.api.openapi import document
from tidings.api.state import STATE, State
from tidings.backends import open_backend
from tidings.core.sealing import Sealer
from tidings.core.settings import Settings
from tidings.dispatch.dispatcher import Dispatcher
from tidings.dispatch.lane import Lane
from tidings.keys import Keyring
from tidings.metrics import Metrics
from tidings.ports import Store
from tidings.providers.client import HttpClient
from tidings.providers.registry import PROVIDERS
from tidings.verification import Verifications

log = logging.getLogger("tidings")
ROUTERS = (verifications.router, keys.router, ops.router)
PURGE_EVERY = 600.0


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_size, middlewares=[handle_errors])
    for router in ROUTERS:
        router.install(app)
    ops.add_static(app)
    app[ops.OPENAPI] = document([endpoint for router in ROUTERS for endpoint in router.endpoints])
    app.cleanup_ctx.append(lambda app: _runtime(app, settings))
    return app


async def _runtime(app: web.Application, settings: Settings) -> AsyncIterator[None]:
    async with open_backend(settings.database, settings.secret_key) as backend:
        metrics = Metrics()
        verifications = Verifications(settings, backend.store, Sealer(backend.secret))
        keyring = Keyring(backend.store, settings.api_key)
        root_key = await keyring.ensure_root()
        if root_key is not None:
            print(
                f"Created the root API key (admin scope); it is shown only this once:\n\n    {root_key}\n",
                flush=True,
            )
        app[STATE] = State(
            settings,
            backend.store,
            backend.queue,
            keyring,
            verifications,
            metrics,
            parse_networks(settings.trusted_proxies),
        )
        http = HttpClient(settings.dispatch.request_timeout)
        lanes = _lanes(settings, http)
        for lane, depth in (await backend.queue.depth()).items():
            if lane not in lanes:
                log.warning("%d jobs wait for provider %r, which is not configured; they stay queued", depth, lane)
        dispatcher = Dispatcher(backend.queue, lanes, {"verification": verifications}, settings.dispatch, metrics)
        running = asyncio.create_task(dispatcher.run(), name="dispatcher")
        purging = asyncio.create_task(_purge_forever(backend.store), name="purge")
        try:
            yield
        finally:
            log.info("stopping: finishing or giving back the sends in flight")
            purging.cancel()
            await dispatcher.stop()
            await running
            await http.close()


def _lanes(settings: Settings, http: HttpClient) -> dict[str, Lane]:
    names = dict.fromkeys([*settings.verify.sms_providers, *settings.verify.email_providers, *settings.providers])
    lanes = {}
    for name in names:
        cls = PROVIDERS[name]
        provider_settings = cls.Settings.model_validate(settings.providers.get(name, {}))
        provider = cls(provider_settings, http)
        if not cls.sends_for_real:
            log.warning("provider %r does not send anything: it only logs messages (development only)", name)
        lanes[name] = Lane(
            provider,
            provider_settings.concurrency or settings.dispatch.concurrency,
            settings.dispatch.rate if provider_settings.rate is None else provider_settings.rate,
        )
    return lanes


async def _purge_forever(store: Store) -> None:
    while True:
        with contextlib.suppress(Exception):
            removed = await store.purge(time.time())
            if removed:
                log.info("purged %d expired rows", removed)
        await asyncio.sleep(PURGE_EVERY)
