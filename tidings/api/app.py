"""The application: routes, middlewares and the OpenAPI document. What it runs on (backends, services, the
dispatcher) is assembled by ``tidings.wiring`` and shared under ``STATE``."""

from __future__ import annotations

from aiohttp import web

from tidings.api import dashboard, events, keys, messages, ops, stats, streams, subscribers, twilio, verifications
from tidings.api.middlewares import add_request_id, handle_errors
from tidings.api.openapi import document
from tidings.api.state import STATE
from tidings.core.settings import Settings

ROUTERS = (
    verifications.router,
    subscribers.router,
    messages.router,
    streams.router,
    keys.router,
    stats.router,
    events.router,
    ops.router,
    dashboard.router,
)


def create_app(settings: Settings) -> web.Application:
    """The whole API; a ``worker`` serves only the operations routes (health, metrics, the cluster)."""
    app = web.Application(client_max_size=settings.max_body_size, middlewares=[handle_errors])
    routers = (ops.router,) if settings.role == "worker" else ROUTERS
    for router in routers:
        router.install(app)
    ops.add_static(app)
    twilio.install(app, settings)
    events.install(app)
    app[ops.OPENAPI] = document([endpoint for router in routers for endpoint in router.endpoints])
    app.on_response_prepare.append(add_request_id)
    app.on_shutdown.append(_close_streams)
    return app


async def _close_streams(app: web.Application) -> None:
    """Open streams would hold a graceful stop for its whole grace time; their clients reconnect elsewhere."""
    if STATE in app:
        app[STATE].hub.close_all()
