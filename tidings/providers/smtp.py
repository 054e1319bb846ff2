"""Email codes over SMTP with ``aiosmtplib``: one connection per message (mail servers close idle ones quickly)."""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from typing import ClassVar

import aiosmtplib
from pydantic import Field, SecretStr

from tidings.core.types import Delivered, OutboundMessage, Permanent, SendOutcome, Transient
from tidings.providers.base import Provider, ProviderSettings, secret


class SmtpSettings(ProviderSettings):
    host: str = "127.0.0.1"
    port: int = 25
    username: str | None = None
    password: SecretStr | None = None
    use_tls: bool = False
    start_tls: bool | None = None
    """None upgrades when the server offers STARTTLS."""
    from_: str = Field("tidings <no-reply@localhost>", alias="from")
    timeout: float = 10.0


class Smtp(Provider):
    name = "smtp"
    channel = "email"
    Settings: ClassVar[type[ProviderSettings]] = SmtpSettings
    settings: SmtpSettings

    async def send(self, message: OutboundMessage) -> SendOutcome:
        settings = self.settings
        email = EmailMessage()
        email["From"] = settings.from_
        email["To"] = message.to
        email["Subject"] = message.subject or "Your verification code"
        email["X-Tidings-Id"] = message.idempotency_key
        email.set_content(message.text)
        try:
            await aiosmtplib.send(
                email,
                hostname=settings.host,
                port=settings.port,
                username=settings.username,
                password=secret(settings.password) or None,
                use_tls=settings.use_tls,
                start_tls=settings.start_tls,
                timeout=settings.timeout,
                tls_context=ssl.create_default_context() if settings.use_tls else None,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return _by_code(min(error.code for error in exc.recipients), "recipient refused")
        except aiosmtplib.SMTPResponseException as exc:
            return _by_code(exc.code, exc.message)
        except (aiosmtplib.SMTPException, OSError) as exc:
            return Transient("smtp_connection", type(exc).__name__)
        return Delivered(message.idempotency_key)


def _by_code(code: int, text: str) -> SendOutcome:
    """4xx replies are temporary by the SMTP standard, 5xx are final."""
    if 400 <= code < 500:
        return Transient(f"smtp_{code}", text)
    return Permanent(f"smtp_{code}", text)
