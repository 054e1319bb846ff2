"""A generic HTTP provider for SMS gateways that have no module of their own: a URL, a method, and a form or JSON
body whose values may name the message's fields.

    [providers.http]
    url = "https://sms.example.com/send"
    format = "json"
    body = { phone = "{to}", message = "{text}", ref = "{idempotency_key}" }
    headers = { Authorization = "Bearer ..." }
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr

from tidings.core.types import Delivered, OutboundMessage, SendOutcome, Transient
from tidings.providers.base import Provider, ProviderSettings, secret
from tidings.providers.client import outcome_for_status

_PLACEHOLDER = re.compile(r"\{(to|text|code|idempotency_key)\}")


class HttpSettings(ProviderSettings):
    url: str
    method: Literal["POST", "PUT", "GET"] = "POST"
    format: Literal["form", "json"] = "form"
    body: dict[str, Any] = Field(default_factory=lambda: {"to": "{to}", "text": "{text}"})
    headers: dict[str, SecretStr] = {}


class GenericHttp(Provider):
    name = "http"
    Settings: ClassVar[type[ProviderSettings]] = HttpSettings
    settings: HttpSettings

    async def send(self, message: OutboundMessage) -> SendOutcome:
        values = {
            "to": message.to,
            "text": message.text,
            "code": message.params.get("code", ""),
            "idempotency_key": message.idempotency_key,
        }
        body = fill(self.settings.body, values)
        headers = {name: secret(value) for name, value in self.settings.headers.items()}
        options: dict[str, Any] = {"headers": headers}
        if self.settings.method == "GET":
            options["params"] = {key: str(value) for key, value in body.items()}
        elif self.settings.format == "json":
            options["json_body"] = body
        else:
            options["data"] = {key: str(value) for key, value in body.items()}
        answer = await self.http.request(self.settings.method, self.settings.url, **options)
        if isinstance(answer, Transient):
            return answer
        if answer.ok:
            return Delivered(None)
        return outcome_for_status(answer)


def fill(template: Any, values: dict[str, str]) -> Any:
    """Replace ``{to}``, ``{text}``, ``{code}`` and ``{idempotency_key}`` in every string of the template; only
    these plain names, so a template can never reach anything else."""
    if isinstance(template, str):
        return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)
    if isinstance(template, dict):
        return {key: fill(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(value, values) for value in template]
    return template
