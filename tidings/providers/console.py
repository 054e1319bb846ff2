"""Development only: logs what would have been sent, code included, and sends nothing."""

from __future__ import annotations

import logging

from tidings.core.types import Delivered, OutboundMessage, SendOutcome
from tidings.providers.base import Provider

log = logging.getLogger("tidings.console")


class Console(Provider):
    name = "console"
    channels = frozenset({"sms", "email"})  # shows any code in development
    sends_for_real = False

    async def send(self, message: OutboundMessage) -> SendOutcome:
        # The one deliberate exception to "never log a code": this provider exists so a developer can read it.
        log.warning("console provider (not sending) to=%s text=%s", message.to, message.text)
        return Delivered(f"console-{message.idempotency_key}")
