"""Email codes over SMTP with ``aiosmtplib``: one connection per message (mail servers close idle ones quickly).

SMTP says what a refusal means by its reply code: 4xx is temporary (greylisting, mailbox busy), 5xx is final
(no such user, relaying denied). Connection failures and timeouts are worth another try.
"""

from __future__ import annotations

import asyncio
import email.utils
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
    """TLS from the first byte (usually port 465)."""
    start_tls: bool | None = None
    """Upgrade with STARTTLS; None upgrades when the server offers it."""
    from_: str = Field("tidings <no-reply@localhost>", alias="from")
    timeout: float | None = Field(None, gt=0)
    """Seconds for the whole exchange; by default ``dispatch.request_timeout``, like every provider's request."""


class Smtp(Provider):
    name = "smtp"
    channels = frozenset({"email"})
    Settings: ClassVar[type[ProviderSettings]] = SmtpSettings
    settings: SmtpSettings

    async def send(self, message: OutboundMessage) -> SendOutcome:
        settings = self.settings
        try:
            mail = compose(message, settings.from_)
        except ValueError as exc:  # a header with a line break, an address that cannot be encoded
            return Permanent("smtp_invalid_message", str(exc)[:200])
        timeout = settings.timeout or self.http.timeout.total
        try:
            async with asyncio.timeout(timeout):  # aiosmtplib's timeout is per command; this one is for the send
                await aiosmtplib.send(
                    mail,
                    hostname=settings.host,
                    port=settings.port,
                    username=settings.username,
                    password=secret(settings.password) or None,
                    use_tls=settings.use_tls,
                    start_tls=settings.start_tls,
                    timeout=timeout,
                )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return _by_code(min(error.code for error in exc.recipients), "recipient refused")
        except (aiosmtplib.SMTPTimeoutError, TimeoutError):
            return Transient("timeout", f"no answer from {settings.host} in time")
        except aiosmtplib.SMTPResponseException as exc:
            return _by_code(exc.code, exc.message)
        except (aiosmtplib.SMTPException, OSError) as exc:
            return Transient("connection_error", f"{type(exc).__name__} talking to {settings.host}")
        return Delivered(mail["Message-ID"].strip("<>"))


def compose(message: OutboundMessage, sender: str) -> EmailMessage:
    """The email, with a ``Message-ID`` made from the idempotency key so a retried send is recognisably the same
    message, and the key itself in ``X-Tidings-Id``."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = message.to
    mail["Subject"] = message.subject or "Your verification code"
    mail["Date"] = email.utils.formatdate(localtime=False)
    domain = email.utils.parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    mail["Message-ID"] = f"<{message.idempotency_key}@{domain}>"
    mail["X-Tidings-Id"] = message.idempotency_key
    mail.set_content(message.text)
    return mail


def _by_code(code: int, text: str) -> SendOutcome:
    """4xx replies are temporary by the SMTP standard, 5xx are final."""
    if 400 <= code < 500:
        return Transient(f"smtp_{code}", text)
    return Permanent(f"smtp_{code}", text)
