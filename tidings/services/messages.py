"""Messages as a service: a message fans out into one delivery per recipient and channel, written with their jobs
in one transaction; the dispatcher later asks here what each job is to send.

Every channel but the live stream gets one job per delivery, so each is retried on its own. The live stream gets
one job per message: putting a message into thousands of stream caches and connections is one step, not thousands.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, replace
from typing import Any

from tidings.core import push
from tidings.core.ids import RANDOM_BYTES, has_shape, new_id
from tidings.core.outcomes import Drop
from tidings.core.push import (
    ApnsToken,
    ChannelType,
    Counts,
    Delivery,
    Message,
    MessageStatus,
    MobileCall,
    PushCall,
    StreamCall,
    Subscriber,
    WebhookCall,
)
from tidings.core.settings import Settings
from tidings.core.types import Delivered, DeliveryPayload, Job, OutboundMessage, SendOutcome
from tidings.errors import Conflict, InvalidInput, NotFound, Unprocessable
from tidings.ports import Position, PushStore
from tidings.services.subscribers import Subscribers

MAX_PUSH_PAYLOAD = 3993
"""Bytes of plaintext that still fit the 4096-byte Web Push record after aes128gcm's overhead (RFC 8291)."""


@dataclass(frozen=True, slots=True)
class MessageInput:
    to: list[str] | None
    topic: str | None
    title: str | None
    body: str | None
    data: dict[str, Any] | None
    channels: list[ChannelType] | None
    priority: str = "normal"
    send_at: float | None = None
    ttl: float | None = None
    collapse_key: str | None = None
    badge: int | None = None
    sound: str | None = None


class Messages:
    def __init__(self, settings: Settings, store: PushStore, subscribers: Subscribers) -> None:
        self.settings = settings
        self.store = store
        self.subscribers = subscribers
        self.lanes = {
            ChannelType.WEBHOOK: ["webhook"],
            ChannelType.WEBPUSH: ["webpush"],
            ChannelType.SMS: settings.verify.sms_providers,
            ChannelType.EMAIL: settings.verify.email_providers,
            ChannelType.APNS: ["apns"],
            ChannelType.FCM: ["fcm"],
        }
        unconfigured = {channel for channel in push.MOBILE_CHANNELS if channel.value not in settings.providers}
        if not any(name in settings.providers for name in settings.verify.email_providers):
            unconfigured.add(ChannelType.EMAIL)
        self.by_default = push.EVERY_CHANNEL - unconfigured
        """What a message that names no channels reaches. Email only once an email provider is configured: the
        default SMTP server (this host, port 25) is seldom there, and every push would retry an email for a day.
        APNs and FCM only once configured: there is nothing to send them with before."""
        self.unsendable = unconfigured & push.MOBILE_CHANNELS

    async def send(self, given: MessageInput) -> tuple[Message, list[str]]:
        """Accept a message; returns it and the ids in ``to`` that name no subscriber (they are skipped)."""
        now = time.time()
        if given.send_at is not None and given.send_at > now + 365 * 86400:
            raise InvalidInput("send_at: at most a year ahead", field="send_at")
        starts = max(now, given.send_at or now)
        missing = sorted(self.unsendable.intersection(given.channels or ()))
        if missing:
            raise Unprocessable(
                f"channels: {', '.join(missing)} not configured (see [providers.{missing[0]}])",
                code="channel_not_configured",
                field="channels",
            )
        message = Message(
            id=new_id("msg", now, os.urandom(RANDOM_BYTES)),
            title=given.title,
            body=given.body,
            data=given.data,
            priority=given.priority,
            created_at=now,
            expires_at=starts + (given.ttl or self.settings.push.default_ttl),
            send_at=given.send_at,
            topic=given.topic,
            channels=None if given.channels is None else tuple(dict.fromkeys(given.channels)),
            collapse_key=given.collapse_key,
            badge=given.badge,
            sound=given.sound,
        )
        if given.topic is not None:
            recipients = await self.store.count_topic(given.topic)
            if recipients > self.settings.push.fanout_after:
                return await self._later(replace(message, recipients=recipients, expanding=True), now), []
        return await self.store.create_message(message, given.to, lambda m, s: self._plan(m, s, starts, now))

    async def _later(self, message: Message, now: float) -> Message:
        """Accept a message to a large topic without writing its deliveries: reading every subscriber and writing a
        delivery and a job for each takes seconds for 100,000 of them. A ``fanout`` job, written with the message,
        writes them at once afterwards (``expand``); the job outlives a crash, so they are written all the same."""
        job = Job(
            id=f"fan_{message.id.removeprefix('msg_')}",
            kind="fanout",
            ref=message.id,
            lane=FANOUT,
            priority=push.PRIORITIES[message.priority],
            run_at=now,
            expires_at=message.expires_at,
            payload=DeliveryPayload(give_up_at=message.expires_at, max_attempts=self.settings.push.max_attempts),
        )
        accepted, _ = await self.store.create_message(message, [], lambda m, s: (m, [], [job]))
        return accepted

    async def expand(self, id: str) -> None:
        """Write the deliveries and jobs of a message accepted before them, for the subscribers its topic has now;
        nothing if they are written already (the job ran before, and a crash kept it from being settled)."""
        found = await self.store.get_message(id)
        if found is None or not found[0].expanding:
            return
        message, _ = found
        now = time.time()
        starts = max(message.created_at, message.send_at or message.created_at)
        done = replace(message, expanding=False)
        await self.store.create_message(done, None, lambda m, s: self._plan(m, s, starts, now))

    def _plan(
        self, message: Message, subscribers: list[Subscriber], starts: float, now: float
    ) -> tuple[Message, list[Delivery], list[Job]]:
        """Runs inside the store's transaction, on the recipients it just read."""
        message = replace(message, recipients=len(subscribers))
        deliveries = push.fan_out(message, subscribers, _delivery_id, now, self.by_default)
        jobs = self.jobs_for([d for d in deliveries if d.channel is not ChannelType.STREAM], message, starts)
        if any(d.channel is ChannelType.STREAM for d in deliveries):
            jobs.append(self._job(f"stm_{message.id[4:]}", "stream", message, "stream", starts, []))
        return message, deliveries, jobs

    def jobs_for(self, deliveries: list[Delivery], message: Message, starts: float) -> list[Job]:
        jobs = []
        for delivery in deliveries:
            chain = self.lanes[delivery.channel]
            jobs.append(self._job(delivery.id, "delivery", message, chain[0], starts, chain))
        return jobs

    def _job(self, id: str, kind: str, message: Message, lane: str, starts: float, chain: list[str]) -> Job:
        """``chain``: the providers to fail over to, when there is more than one."""
        payload = DeliveryPayload(
            give_up_at=starts + self.settings.push.give_up_after, max_attempts=self.settings.push.max_attempts
        )
        if len(chain) > 1:
            payload["chain"] = chain
        return Job(
            id=id,
            kind=kind,
            ref=message.id,
            lane=lane,
            priority=push.PRIORITIES[message.priority],
            run_at=starts,
            expires_at=message.expires_at,
            payload=payload,
        )

    async def get(self, id: str) -> tuple[Message, Counts]:
        # An id of another shape names no message; the stores need not be asked (Redis keys hold the ids).
        found = await self.store.get_message(id) if has_shape(id, "msg") else None
        if found is None:
            raise NotFound(f"no message {id[:64]!r}", code="message_not_found")
        return found

    async def page(
        self, status: MessageStatus | None, after: Position | None, limit: int
    ) -> list[tuple[Message, Counts]]:
        """Newest first, each with its counts, in ``status`` (as ``Counts.status`` derives it) if given."""
        return await self.store.list_messages(status, after, limit)

    async def retry(self, id: str) -> int:
        """Queue again what failed, with new tries and a new give-up time, before the message expires."""
        message, _ = await self.get(id)
        now = time.time()
        if message.expires_at <= now:
            raise Conflict("the message has expired; send a new one", code="message_expired")
        return await self.store.retry_failed(id, lambda failed: self.jobs_for(failed, message, now), now)

    # The dispatcher's side: what each leased job sends.

    async def prepare(self, jobs: list[Job], now: float) -> list[object | Drop]:
        """Delivery jobs: the call for each channel's sender, read in one round trip."""
        context = await self.store.delivery_context([job.id for job in jobs])
        prepared: list[object | Drop] = []
        for job in jobs:
            delivery = context.deliveries.get(job.id)
            message = context.messages.get(job.ref)
            subscriber = context.subscribers.get(delivery.subscriber_id) if delivery else None
            if delivery is None or message is None:
                prepared.append(Drop("gone", failed=False))
            elif message.expires_at <= now:
                prepared.append(Drop("expired", failed=False))
            elif subscriber is None:
                prepared.append(Drop("unsubscribed"))
            else:
                prepared.append(self._call(delivery, message, self.subscribers.unsealed(subscriber), now))
        return prepared

    def _call(self, delivery: Delivery, message: Message, subscriber: Subscriber, now: float) -> object | Drop:
        event = {**message.event(), "subscriber_id": subscriber.id}
        match delivery.channel:
            case ChannelType.WEBHOOK:
                hook = subscriber.webhook(delivery.target)
                if hook is None:
                    return Drop("unsubscribed")
                return WebhookCall(delivery.id, hook.url, hook.secret, encode(event))
            case ChannelType.WEBPUSH:
                subscription = subscriber.push_subscription(delivery.target)
                payload = encode(event)
                if subscription is None:
                    return Drop("unsubscribed")
                if len(payload) > MAX_PUSH_PAYLOAD:
                    return Drop("payload_too_large")
                urgency = {"high": "high", "low": "low"}.get(message.priority, "normal")
                ttl = max(0, int(message.expires_at - now))
                return PushCall(delivery.id, subscription.endpoint, subscription.p256dh, subscription.auth,
                                payload, ttl, urgency)  # fmt: skip
            case ChannelType.APNS | ChannelType.FCM:
                device = subscriber.device(delivery.channel, delivery.target)
                if device is None:
                    return Drop("unsubscribed")
                return MobileCall(
                    id=delivery.id,
                    token=device.token,
                    environment=device.environment if isinstance(device, ApnsToken) else "production",
                    title=message.title,
                    body=message.body,
                    data=message.data,
                    priority=message.priority,
                    ttl=max(0, int(message.expires_at - now)),
                    collapse_key=message.collapse_key,
                    badge=message.badge,
                    sound=message.sound,
                )
            case ChannelType.SMS | ChannelType.EMAIL:
                text = "\n".join(part for part in (message.title, message.body) if part)
                return OutboundMessage(
                    to=delivery.target,
                    text=text if delivery.channel is ChannelType.EMAIL else text.replace("\n", ": ", 1),
                    idempotency_key=delivery.id,
                    subject=message.title or self.settings.verify.app_name,
                    params={"app_name": self.settings.verify.app_name},
                    locale=subscriber.locale or "en",
                )
        raise AssertionError(delivery.channel)


FANOUT = "fanout"


class Fanouts:
    """The ``fanout`` job kind and the lane that runs it: each job writes one message's deliveries (``expand``)."""

    name = FANOUT

    def __init__(self, messages: Messages) -> None:
        self.messages = messages

    async def prepare(self, jobs: list[Job], now: float) -> list[object | Drop]:
        return [job.ref for job in jobs]

    async def send(self, message_id: str) -> SendOutcome:
        await self.messages.expand(message_id)
        return Delivered(None)


class StreamJobs:
    """Stream jobs: one per message, for every recipient whose stream has not had it yet."""

    def __init__(self, store: PushStore) -> None:
        self.store = store

    async def prepare(self, jobs: list[Job], now: float) -> list[object | Drop]:
        messages, recipients = await self.store.stream_context([job.ref for job in jobs])
        prepared: list[object | Drop] = []
        for job in jobs:
            message = messages.get(job.ref)
            if message is None:
                prepared.append(Drop("gone", failed=False))
            elif message.expires_at <= now:
                prepared.append(Drop("expired", failed=False))
            else:
                prepared.append(StreamCall(message.id, encode(message.event()), tuple(recipients[job.ref])))
        return prepared


def _delivery_id(message_id: str, n: int) -> str:
    return f"dlv_{message_id.removeprefix('msg_')}.{n}"


def encode(value: Any) -> bytes:
    """Compact UTF-8 JSON, as every channel sends a message."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
