"""Request and response bodies of subscribers and their channels, tokens and keys (validation and ``/openapi.json``
alike)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from yarl import URL

from tidings.api.models import Body, Text, whole_numbers
from tidings.core.push import (
    NAME,
    ApnsToken,
    ChannelType,
    FcmToken,
    Subscriber,
    WebhookEndpoint,
    WebPushSubscription,
)
from tidings.core.types import rfc3339
from tidings.errors import InvalidInput

EDGES = " \t\r\n"
"""What an id may come with around it (one read from a file, say), and is dropped."""
Id = Annotated[
    str,
    StringConstraints(pattern=f"^[{EDGES}]*{NAME.pattern.strip('^$')}[{EDGES}]*$"),
    AfterValidator(lambda value: value.strip(EDGES)),
]
"""A subscriber id or a topic."""
Url = Annotated[str, Field(min_length=8, max_length=2048, json_schema_extra={"pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"})]
"""An http(s) URL; its host is checked when the subscriber is stored: a name DNS could hold, or an address."""


class WebhookChannelIn(Body):
    type: Literal["webhook"]
    url: Url
    secret: str | None = Field(
        None,
        max_length=200,
        json_schema_extra={"pattern": "^whsec_[A-Za-z0-9+/=]+$"},
        description="`whsec_<base64>`; made for you when absent.",
    )


class PushKeys(Body):
    """As the browser's ``PushSubscription.toJSON()`` gives them. They are read when a message is encrypted for
    them: keys that are not a P-256 point and a 16-byte secret fail that delivery for good
    (``invalid_subscription``), as a push service's refusal would."""

    p256dh: str = Field(min_length=1, max_length=200)
    auth: str = Field(min_length=1, max_length=100)


class WebPushChannelIn(Body):
    type: Literal["webpush"]
    endpoint: Url
    keys: PushKeys


class ApnsChannelIn(Body):
    """An iPhone app's device token, as ``didRegisterForRemoteNotificationsWithDeviceToken`` gives it (hex).
    A token Apple says is dead is removed, and ``push.feedback_url`` is told."""

    type: Literal["apns"]
    token: Annotated[
        str,
        StringConstraints(pattern=r"^[0-9A-Fa-f]{32,200}$"),
        AfterValidator(str.lower),
    ] = Field(description="Hex, as the app got it (64 digits today); kept in lower case.")
    environment: Literal["production", "sandbox"] = Field(
        "production", description="`sandbox` for a development build's token: it goes to Apple's sandbox host."
    )


class FcmChannelIn(Body):
    """An Android (or iOS, web) app's Firebase Cloud Messaging registration token. A token FCM says is not
    registered is removed, and ``push.feedback_url`` is told."""

    type: Literal["fcm"]
    token: str = Field(min_length=1, max_length=4096, pattern=r"^[A-Za-z0-9_:.-]+$")


class AddressChannelIn(Body):
    """``sms`` and ``email`` need not be listed: a message that names no channels reaches the subscriber's ``phone``
    and ``email`` anyway, email once an email provider is configured. Listed, ``email`` is reached even before."""

    type: Literal["sms", "email"]


ChannelIn = Annotated[
    WebhookChannelIn | WebPushChannelIn | ApnsChannelIn | FcmChannelIn | AddressChannelIn, Field(discriminator="type")
]


def _needs(channel: str, address: str) -> dict[str, Any]:
    """The JSON Schema of "a listed ``channel`` needs ``address``"."""
    listed = {"contains": {"required": ["type"], "properties": {"type": {"const": channel}}}}
    return {
        "if": {"required": ["channels"], "properties": {"channels": listed}},
        "then": {"required": [address], "properties": {address: {"not": {"type": "null"}}}},
    }


class SubscriberIn(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [_needs("sms", "phone"), _needs("email", "email")],
            "examples": [
                {"name": "Ada", "locale": "en", "phone": "+447700900123", "email": "ada@example.com",
                 "channels": [{"type": "sms"}], "topics": ["news"]}
            ],
        }
    )  # fmt: skip

    name: Text | None = Field(None, max_length=200)
    locale: str | None = Field(None, max_length=16, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
    phone: str | None = Field(None, min_length=1, max_length=32)
    email: str | None = Field(None, min_length=3, max_length=320)
    channels: list[ChannelIn] = Field([], max_length=20, json_schema_extra={"uniqueItems": True})
    """A place listed twice is refused; ``uniqueItems`` says so of all but URLs written in two ways."""
    topics: list[Id] = Field([], max_length=100)

    @model_validator(mode="after")
    def _channels_make_sense(self) -> SubscriberIn:
        """An address channel needs its address; a place is listed once (or every message would go there twice)."""
        seen: set[tuple[str, str]] = set()
        place: str
        for n, channel in enumerate(self.channels):
            if isinstance(channel, AddressChannelIn):
                address = self.phone if channel.type == "sms" else self.email
                if address is None:
                    field = "phone" if channel.type == "sms" else "email"
                    raise InvalidInput(f"the {channel.type} channel needs `{field}`", field=field)
                place, field = channel.type, f"channels[{n}]"
            elif isinstance(channel, WebhookChannelIn):
                place, field = _normalised(channel.url), f"channels[{n}].url"
            elif isinstance(channel, ApnsChannelIn | FcmChannelIn):
                place, field = channel.token, f"channels[{n}].token"
            else:
                place, field = _normalised(channel.endpoint), f"channels[{n}].endpoint"
            if (channel.type, place) in seen:
                raise InvalidInput(f"{field}: listed twice", field=field)
            seen.add((channel.type, place))
        return self


def _normalised(url: str) -> str:
    """The URL as it is requested: the host's case and needless percent-escapes do not make another place."""
    try:
        return str(URL(url))
    except ValueError:
        return url  # refused later, with the reason


class WebhookChannelOut(BaseModel):
    type: Literal["webhook"] = "webhook"
    url: str
    secret: str


class WebPushChannelOut(BaseModel):
    type: Literal["webpush"] = "webpush"
    endpoint: str
    keys: dict[str, str] = Field(description="`p256dh` only: the `auth` secret is not shown again.")


class ApnsChannelOut(BaseModel):
    type: Literal["apns"] = "apns"
    token: str
    environment: str


class FcmChannelOut(BaseModel):
    type: Literal["fcm"] = "fcm"
    token: str


class AddressChannelOut(BaseModel):
    type: Literal["sms", "email"]
    to: str


ChannelOut = WebhookChannelOut | WebPushChannelOut | ApnsChannelOut | FcmChannelOut | AddressChannelOut


class SubscriberOut(BaseModel):
    id: str
    name: str | None
    locale: str | None
    phone: str | None
    email: str | None
    channels: list[ChannelOut]
    topics: list[str]
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, s: Subscriber) -> SubscriberOut:
        addresses = {ChannelType.SMS: s.phone, ChannelType.EMAIL: s.email}
        channels: list[ChannelOut] = []
        for channel in s.channels():
            if isinstance(channel, WebhookEndpoint):
                channels.append(WebhookChannelOut(url=channel.url, secret=channel.secret))
            elif isinstance(channel, WebPushSubscription):
                channels.append(WebPushChannelOut(endpoint=channel.endpoint, keys={"p256dh": channel.p256dh}))
            elif isinstance(channel, ApnsToken):
                channels.append(ApnsChannelOut(token=channel.token, environment=channel.environment))
            elif isinstance(channel, FcmToken):
                channels.append(FcmChannelOut(token=channel.token))
            else:
                channels.append(AddressChannelOut(type=channel.value, to=addresses[channel] or ""))
        return cls(
            id=s.id,
            name=s.name,
            locale=s.locale,
            phone=s.phone,
            email=s.email,
            channels=channels,
            topics=list(s.topics),
            created_at=rfc3339(s.created_at),
            updated_at=rfc3339(s.updated_at),
        )


class NewToken(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"ttl": 3600}]})

    ttl: int | None = Field(
        None, ge=60, le=7 * 86400, strict=True, description="Seconds; `streams.token_ttl` by default."
    )

    _whole_numbers = whole_numbers("ttl")


class TokenOut(BaseModel):
    token: str
    subscriber_id: str
    expires_at: str


class FeedbackOut(BaseModel):
    url: str | None = Field(description="`push.feedback_url`; null when reports go nowhere.")
    secret: str = Field(description="The `whsec_` secret the reports are signed with, as webhooks are.")


class VapidKey(BaseModel):
    public_key: str = Field(description="Uncompressed P-256 point, base64url without padding.")
