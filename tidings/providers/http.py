"""A generic HTTP provider for SMS gateways that have no module of their own: a URL, a method, and a form or JSON
body whose string values may name the message's fields.

    [providers.http]
    url = "https://sms.example.com/send"
    format = "json"
    body = { phone = "{to}", message = "{text}", ref = "{idempotency_key}" }
    headers = { Authorization = "Bearer ..." }

Only ``{to}``, ``{text}``, ``{code}`` and ``{idempotency_key}`` are filled in; any other brace stays as written, so
a template can never reach anything but these four strings.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr

from tidings.core.types import Delivered, OutboundMessage, Permanent, SendOutcome, Transient
from tidings.outbound.client import outcome_for_status
from tidings.providers.base import Provider, ProviderSettings, secret

_PLACEHOLDER = re.compile(r"\{(to|text|code|idempotency_key)\}")


class HttpSettings(ProviderSettings):
    url: str = Field(pattern=r"(?i)^https?://[^/\s]+")
    method: Literal["POST", "PUT", "GET"] = "POST"
    format: Literal["form", "json"] = "form"
    """How the body is sent; with GET it always goes in the query string."""
    body: dict[str, Any] = Field(default_factory=lambda: {"to": "{to}", "text": "{text}"})
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    """Sent as given; values are secrets (an API key, a bearer token) and never print."""
    success_statuses: list[int] | None = None
    """Statuses that mean sent; any 2xx when not set."""


class GenericHttp(Provider):
    name = "http"
    channels = frozenset({"sms", "email"})  # a URL that takes {to} and {text}: an SMS or an email API
    Settings: ClassVar[type[ProviderSettings]] = HttpSettings
    settings: HttpSettings

    async def send(self, message: OutboundMessage) -> SendOutcome:
        settings = self.settings
        values = {
            "to": message.to,
            "text": message.text,
            "code": message.params.get("code", ""),
            "idempotency_key": message.idempotency_key,
        }
        body = fill(settings.body, values)
        options: dict[str, Any] = {"headers": {name: secret(value) for name, value in settings.headers.items()}}
        if settings.method == "GET":
            options["params"] = flat(body)
        elif settings.format == "json":
            options["json_body"] = body
        else:
            options["data"] = flat(body)
        answer = await self.http.request(settings.method, settings.url, **options)
        if isinstance(answer, Transient | Permanent):
            return answer
        sent = answer.status in settings.success_statuses if settings.success_statuses else answer.ok
        if sent:
            return Delivered(None)
        return outcome_for_status(answer)


def fill(template: Any, values: dict[str, str]) -> Any:
    """Replace the four known placeholders in every string of the template, through dicts and lists."""
    if isinstance(template, str):
        return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)
    if isinstance(template, dict):
        return {key: fill(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(value, values) for value in template]
    return template


def flat(body: dict[str, Any]) -> dict[str, str]:
    """Form and query fields are strings: booleans as ``true``/``false``, as most gateways expect."""
    return {key: str(value).lower() if isinstance(value, bool) else str(value) for key, value in body.items()}
