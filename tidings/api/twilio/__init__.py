"""Twilio Verify v2, answered by tidings: an app written for Twilio Verify works by changing only where its client
points (docs/twilio.md).

These routes are not in ``/openapi.json``: they take form bodies and HTTP Basic auth and answer Twilio's error shape,
none of which the document's conventions (JSON, bearer keys, tidings' errors) describe; Twilio's own OpenAPI
document of Verify v2 describes them. They are routed outside ``api.routing`` for the same reason.
"""

from __future__ import annotations

from aiohttp import web

from tidings.api.twilio import routes
from tidings.core.settings import Settings

SERVICE = "/v2/Services/{service}"
_ANY = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def install(app: web.Application, settings: Settings) -> None:
    """The /v2 routes, on a process that answers the API and once ``[twilio_compat]`` names the account and the
    service; every other path under /v2 is then Twilio's 404."""
    if settings.role == "worker" or settings.twilio_compat.account_sid is None:
        return
    add = app.router.add_route
    add("*", f"{SERVICE}/Verifications", routes.endpoint({"POST": routes.create}))
    add("*", f"{SERVICE}/Verifications/{{sid}}", routes.endpoint({"GET": routes.fetch, "POST": routes.update}))
    add("*", f"{SERVICE}/VerificationCheck", routes.endpoint({"POST": routes.check}))
    add("*", "/v2{tail:(/.*)?}", routes.endpoint(dict.fromkeys(_ANY, routes.unknown)))
