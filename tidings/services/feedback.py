"""Reports to ``push.feedback_url`` of the channels a push service said are dead, so that the app can forget them
too: ``subscriber.channel_removed``, signed as a webhook is.

The report is queued in the same step that removes the channel from its subscriber (``core.outcomes.report_job``),
so it is neither lost in a crash nor made for a channel that was already gone.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tidings.core import webhook_secrets
from tidings.core.outcomes import Drop
from tidings.core.push import ChannelType, WebhookCall
from tidings.core.types import Job, rfc3339
from tidings.ports import PushStore
from tidings.services.messages import encode


def feedback_secret(configured: str | None, server_secret: str) -> str:
    """The configured secret, or one every node derives alike from the server secret."""
    if configured is not None:
        return configured
    key = hashlib.sha256(b"tidings/feedback\0" + server_secret.encode()).digest()[: webhook_secrets.KEY_BYTES]
    return webhook_secrets.encode(key)


class Feedback:
    """The ``feedback`` job kind: each job reports one removed channel (its ``ref`` is the delivery that found it)."""

    def __init__(self, store: PushStore, url: str | None, secret: str) -> None:
        self.store = store
        self.url = url
        self.secret = secret

    async def prepare(self, jobs: list[Job], now: float) -> list[object | Drop]:
        if self.url is None:  # reports are queued whatever the settings; without a receiver they go nowhere
            return [Drop("no_feedback_url", failed=False)] * len(jobs)
        context = await self.store.delivery_context([job.ref for job in jobs])
        prepared: list[object | Drop] = []
        for job in jobs:
            delivery = context.deliveries.get(job.ref)
            payload = job.payload
            if delivery is None or "reason" not in payload or "at" not in payload:
                prepared.append(Drop("gone", failed=False))
                continue
            event = {
                "type": "subscriber.channel_removed",
                "subscriber": delivery.subscriber_id,
                "channel": channel(delivery.channel, delivery.target),
                "reason": payload["reason"],
                "at": rfc3339(payload["at"]),
            }
            prepared.append(WebhookCall(job.id, self.url, self.secret, encode(event)))
        return prepared


def channel(kind: ChannelType, target: str) -> dict[str, Any]:
    """The removed channel as the subscriber's ``channels`` listed it."""
    key = "endpoint" if kind is ChannelType.WEBPUSH else "token"
    return {"type": kind.value, key: target}
