"""Which process builds what: the backend, the services, the outbound clients and lanes, and, by role, the
dispatcher (``worker``, ``all``) and the live streams' relay and heartbeats (``api``, ``all``). Everything is opened
when the application starts and closed in the reverse order when it stops (aiohttp's ``cleanup_ctx``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from tidings.api.app import create_app
from tidings.api.client_ip import parse_networks
from tidings.api.state import STATE, State
from tidings.backends import Backend, open_backend
from tidings.channels.apns import Apns, ApnsSettings
from tidings.channels.fcm import Fcm, FcmSettings
from tidings.channels.stream import Hub, Streams
from tidings.channels.webhook import Webhooks
from tidings.channels.webpush import WebPush, application_server_key, vapid_key
from tidings.core import push
from tidings.core.breaker import Breaker
from tidings.core.outcomes import FEEDBACK_LANE
from tidings.core.sealing import Sealer
from tidings.core.settings import Settings
from tidings.core.tokens import Tokens
from tidings.dispatch.dispatcher import Dispatcher, JobKind
from tidings.dispatch.lane import Lane
from tidings.outbound.client import HttpClient
from tidings.outbound.guard import guarded_client
from tidings.ports import Relay
from tidings.providers.registry import PROVIDERS
from tidings.runtime.metrics import Metrics
from tidings.runtime.nodes import beat_forever
from tidings.runtime.oslimits import raise_open_files
from tidings.runtime.tally import Tally
from tidings.runtime.tasks import stop
from tidings.services.feedback import Feedback, feedback_secret
from tidings.services.keys import Keyring
from tidings.services.messages import FANOUT as FANOUT_LANE
from tidings.services.messages import Fanouts, Messages, StreamJobs
from tidings.services.subscribers import Subscribers
from tidings.services.verifications import Verifications

log = logging.getLogger("tidings")
PURGE_EVERY = 600.0
BREAKER_WINDOW = 20
"""A provider's circuit judges its last 20 requests (see ``DispatchSettings.breaker_threshold``)."""
FILES_RESERVED = 256
"""Open files kept for API requests, the database and outbound sends when streams are counted against the limit."""


def build_app(settings: Settings) -> web.Application:
    """The application for this process's role, with everything it runs on."""
    app = create_app(settings)
    app.cleanup_ctx.append(lambda app: _running(app, settings))
    return app


async def _running(app: web.Application, settings: Settings) -> AsyncIterator[None]:
    async with open_backend(settings.database, settings.secret_key, settings.streams) as backend:
        metrics = Metrics()
        sealer = Sealer(backend.secret, os.urandom)
        tally = Tally(backend.stats)
        verifications = Verifications(settings, backend.store, backend.queue, sealer, tally)
        keyring = Keyring(backend.store, settings.api_key)
        root_key = await keyring.ensure_root()
        if root_key is not None:
            print(
                f"Created the root API key (admin scope); it is shown only this once:\n\n    {root_key}\n",
                flush=True,
            )
        allow_private = settings.webhooks.allow_private_networks
        vapid = vapid_key(backend.secret)
        people = Subscribers(backend.push, sealer, allow_private=allow_private, region=settings.region)
        state = State(
            settings=settings,
            store=backend.store,
            queue=backend.queue,
            keyring=keyring,
            verifications=verifications,
            metrics=metrics,
            proxies=parse_networks(settings.trusted_proxies),
            push=backend.push,
            subscribers=people,
            messages=Messages(settings, backend.push, people),
            hub=Hub(
                settings.streams.buffer,
                _stream_capacity(settings),
                settings.streams.max_per_subscriber,
                settings.streams.max_per_token,
            ),
            tokens=Tokens(backend.secret),
            vapid_public_key=application_server_key(vapid),
            nodes=backend.nodes,
            backend=backend.name,
            sealer=sealer,
            feedback=Feedback(
                backend.push, settings.push.feedback_url, feedback_secret(settings.push.feedback_secret, backend.secret)
            ),
            stats=backend.stats,
        )
        app[STATE] = state
        http = HttpClient(settings.dispatch.request_timeout)
        outside = guarded_client(settings.webhooks.timeout, allow_private)
        fanouts = Fanouts(state.messages)
        lanes = {
            FANOUT_LANE: Lane(fanouts, 2, 0),
            **_lanes(settings, http),
            **_push_lanes(settings, state, vapid, outside, backend.relay),
            **_mobile_lanes(settings, http),
        }
        webhooks = lanes["webhook"].sender
        assert isinstance(webhooks, Webhooks)
        _watch(metrics, state.hub, webhooks)
        for lane, depth in (await backend.queue.depth()).items():
            if lane not in lanes:
                log.warning("%d jobs wait for provider %r, which is not configured; they stay queued", depth, lane)
        kinds: dict[str, JobKind] = {
            "verification": verifications,
            "delivery": state.messages,
            "stream": StreamJobs(backend.push),
            "feedback": state.feedback,
            "fanout": fanouts,
        }
        dispatcher = Dispatcher(
            backend.queue, lanes, kinds, settings.dispatch, metrics, tally=tally, channels=_delivery_channels(settings)
        )
        sends = settings.role != "api"
        background = [
            asyncio.create_task(_purge_forever(backend, settings), name="purge"),
            asyncio.create_task(tally.flush_forever(settings.stats.flush_every), name="stats"),
            asyncio.create_task(
                beat_forever(
                    backend.nodes,
                    settings.role,
                    lambda: state.hub.connections,
                    lambda: dispatcher.in_flight,
                    lambda: _open_circuits(lanes),
                ),
                name="heartbeat",
            ),
        ]
        if settings.role != "worker":
            background += [
                asyncio.create_task(state.hub.heartbeat_forever(settings.streams.heartbeat), name="stream-heartbeat"),
                asyncio.create_task(backend.relay.run(state.hub.deliver, state.hub.close_all), name="relay"),
            ]
        running = asyncio.create_task(dispatcher.run(), name="dispatcher") if sends else None
        try:
            yield
        finally:
            log.info("stopping: finishing or giving back the sends in flight")
            await stop(background)  # before the backend closes the connections they use
            if running is not None:
                await dispatcher.stop()
                await running
            apns = lanes.get("apns")
            if apns is not None and isinstance(apns.sender, Apns):
                await apns.sender.close()  # its own HTTP/2 connections
            await http.close()
            await outside.close()


def _push_lanes(
    settings: Settings, state: State, vapid: ec.EllipticCurvePrivateKey, outside: HttpClient, relay: Relay
) -> dict[str, Lane]:
    hooks = settings.webhooks
    webhooks = Webhooks(
        outside,
        per_host_concurrency=hooks.per_host_concurrency,
        per_host_rate=hooks.per_host_rate,
        breaker_threshold=hooks.breaker_threshold,
        breaker_cooldown=hooks.breaker_cooldown,
    )
    webpush = WebPush(outside, vapid, settings.webpush.vapid_subject)
    return {
        "webhook": Lane(webhooks, hooks.concurrency, 0),
        "webpush": Lane(webpush, settings.webpush.concurrency, 0),
        "stream": Lane(Streams(state.push, relay), 64, 0),
    }


def _mobile_lanes(settings: Settings, http: HttpClient) -> dict[str, Lane]:
    """APNs and FCM when configured, and the reports of the tokens they say are dead. The feedback URL is the
    operator's own, so it goes through the unguarded client (it may well be on a private network)."""
    lanes = {FEEDBACK_LANE: Lane(Webhooks(http, name=FEEDBACK_LANE, per_host_concurrency=16), 16, 0)}
    if "apns" in settings.providers:
        apns = ApnsSettings.model_validate(settings.providers["apns"])
        lanes["apns"] = Lane(Apns(apns), apns.concurrency, 0, _breaker(settings))
    if "fcm" in settings.providers:
        fcm = FcmSettings.model_validate(settings.providers["fcm"])
        lanes["fcm"] = Lane(Fcm(fcm, http), fcm.concurrency, 0, _breaker(settings))
    return lanes


def _open_circuits(lanes: dict[str, Lane]) -> dict[str, str]:
    return {name: lane.breaker.state for name, lane in lanes.items() if lane.breaker and lane.breaker.state != "closed"}


def _delivery_channels(settings: Settings) -> dict[str, str]:
    """The channel a pushed message's delivery counts under, by the lane it went through (``GET /v1/stats``)."""
    channels = dict.fromkeys(settings.verify.email_providers, "email")
    channels.update(dict.fromkeys(settings.verify.sms_providers, "sms"))
    return channels


def _breaker(settings: Settings) -> Breaker:
    """A provider's circuit: it opens on ``breaker_threshold`` failed requests of its last ``BREAKER_WINDOW``."""
    dispatch = settings.dispatch
    return Breaker(dispatch.breaker_threshold, dispatch.breaker_cooldown, 5 * dispatch.breaker_cooldown, BREAKER_WINDOW)


def _lanes(settings: Settings, http: HttpClient) -> dict[str, Lane]:
    named = [*settings.verify.sms_providers, *settings.verify.email_providers, *settings.providers]
    mobile = {channel.value for channel in push.MOBILE_CHANNELS}  # configured there too, but channels
    lanes = {}
    for name in dict.fromkeys(name for name in named if name not in mobile):
        cls = PROVIDERS[name]
        provider_settings = cls.Settings.model_validate(settings.providers.get(name, {}))
        provider = cls(provider_settings, http)
        if not cls.sends_for_real:
            log.warning("provider %r does not send anything: it only logs messages (development only)", name)
        dispatch = settings.dispatch
        lanes[name] = Lane(
            provider,
            provider_settings.concurrency or dispatch.concurrency,
            dispatch.rate if provider_settings.rate is None else provider_settings.rate,
            _breaker(settings),
        )
    return lanes


def _stream_capacity(settings: Settings) -> int:
    """The configured cap, or what the open-file limit leaves once the API and the database have their share."""
    if settings.streams.max_connections:
        return settings.streams.max_connections
    files = raise_open_files()
    return max(1, files - FILES_RESERVED) if files is not None else 1 << 30


def _watch(metrics: Metrics, hub: Hub, webhooks: Webhooks) -> None:
    """Gauges read when scraped, from the objects that know."""
    metrics.stream_connections.set_function(lambda: hub.connections)
    metrics.stream_drops.set_function(lambda: hub.dropped)
    metrics.open_circuits.set_function(lambda: sum(state != "closed" for state in webhooks.breakers().values()))


async def _purge_forever(backend: Backend, settings: Settings) -> None:
    while True:
        with contextlib.suppress(Exception):
            now = time.time()
            removed = await backend.store.purge(now)
            removed += await backend.push.purge(now, push.RETENTION, settings.streams.cache_age)
            removed += await backend.stats.purge(now)
            if removed:
                log.info("purged %d expired rows", removed)
        await asyncio.sleep(PURGE_EVERY)
