"""What every provider is: a name, the channels it serves, its settings, and one ``send`` that returns a typed outcome.

A provider builds one HTTP request (or SMTP message) and reads the answer into ``Delivered``, ``Transient`` or
``Permanent`` with the provider's own error code; the shared ``HttpClient`` owns the pooled session, the timeouts and
the mapping of network errors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic import ConfigDict, Field, SecretStr, field_validator

from tidings.core.settings import NumbersAreNotTruths, http_url
from tidings.core.types import OutboundMessage, SendOutcome
from tidings.outbound.client import HttpClient


class ProviderSettings(NumbersAreNotTruths):
    """Settings every provider has; subclasses add their own. Secrets are ``SecretStr`` so they never print."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)

    base_url: str = ""
    concurrency: int | None = Field(None, ge=1)
    """Concurrent sends to this provider; defaults to ``dispatch.concurrency``."""
    rate: float | None = Field(None, ge=0)
    """Sends per second to this provider; defaults to ``dispatch.rate`` (0 is unlimited)."""

    @field_validator("base_url")  # also where a provider gives base_url a default of its own
    @classmethod
    def _web_address(cls, value: str) -> str:
        return http_url(value)


class Provider(ABC):
    name: ClassVar[str]
    channels: ClassVar[frozenset[str]] = frozenset({"sms"})
    """What ``verify.sms_providers`` and ``verify.email_providers`` may name it for."""
    Settings: ClassVar[type[ProviderSettings]] = ProviderSettings
    sends_for_real: ClassVar[bool] = True

    def __init__(self, settings: ProviderSettings, http: HttpClient) -> None:
        self.settings = settings
        self.http = http

    @abstractmethod
    async def send(self, message: OutboundMessage) -> SendOutcome:
        """Send one message; never raises for a provider's refusal or a network failure, returns the outcome."""

    async def close(self) -> None:  # noqa: B027 - most providers hold nothing of their own
        """Release what the provider holds beyond the shared HTTP client."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.settings!r}>"


def secret(value: SecretStr | str | None) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value or ""
