"""Every setting tidings reads, with its default. ``tidings.config`` fills these from TOML and the environment.

A section here is a ``[section]`` in the TOML file and ``TIDINGS_<SECTION>_<KEY>`` in the environment.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import string
from types import UnionType
from typing import Annotated, Union, get_args, get_origin

import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tidings.core import templates, webhook_secrets
from tidings.core.address import InvalidAddress, parse_phone
from tidings.core.otp import MAX_CODE_LENGTH, MIN_CODE_LENGTH


def _country(code: str) -> str:
    if code.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{code!r} is not a country with phone numbers (ISO 3166 alpha-2, e.g. CN)")
    return code.upper()


Country = Annotated[str, AfterValidator(_country)]
"""An ISO 3166 alpha-2 code, as ``phonenumbers`` names regions (``CN``, ``US``); any case, kept upper."""


def http_url(value: str) -> str:
    """An http(s) URL to send to: a typo would otherwise show only as sends failing with ``connection_error``."""
    if value and not value.lower().startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value


class NumbersAreNotTruths(BaseModel):
    """``ttl = true`` is a mistake, not one second, which is what pydantic would make of it."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_truth_for_numbers(cls, value: object, info: ValidationInfo) -> object:
        if info.field_name and _wants_number(cls.model_fields[info.field_name].annotation):
            values = value.values() if isinstance(value, dict) else [value]  # tables of numbers too
            if any(isinstance(item, bool) for item in values):
                raise ValueError("must be a number, not true or false")
        return value


def _wants_number(annotation: object) -> bool:
    """``int`` or ``float``, optional or not, or a table of them (``dict[Country, int]``)."""
    origin = get_origin(annotation)
    if origin is dict:
        return _wants_number(get_args(annotation)[1])
    if origin is Annotated:
        return _wants_number(get_args(annotation)[0])
    if origin in (Union, UnionType):
        return any(_wants_number(option) for option in get_args(annotation) if option is not type(None))
    return annotation in (int, float)


class Section(NumbersAreNotTruths):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


class TestNumber(Section):
    code: str = Field(pattern=r"^[0-9]{4,10}$")
    until: dt.date | None = None
    """The last day the number is honoured, so test numbers cannot linger in production."""


class VerifySettings(Section):
    code_length: int = Field(6, ge=MIN_CODE_LENGTH, le=MAX_CODE_LENGTH)
    ttl: float = Field(600, gt=0, le=86400)
    max_checks: int = Field(5, ge=1, le=100)
    max_sends: int = Field(5, ge=1, le=100)
    resend_cooldown: float = Field(30, ge=0)
    allowed_countries: list[Country] = []
    test_numbers: dict[str, TestNumber] = {}
    sms_providers: list[str] = ["console"]
    email_providers: list[str] = ["smtp"]
    default_region: Country | None = None
    default_locale: str = "en"
    app_name: str = "tidings"
    templates: dict[str, dict[str, str]] = {}
    """Extra or replacement templates: ``{name: {locale: text}}``; ``verification`` is the default one."""

    @field_validator("test_numbers")
    @classmethod
    def _possible_numbers(cls, value: dict[str, TestNumber]) -> dict[str, TestNumber]:
        for number in value:
            if "@" in number:  # an email address, for email verifications
                continue
            if not number.startswith("+"):
                raise ValueError(f"{number!r}: write a test number in E.164, with its + and country code")
            try:
                parse_phone(number)
            except InvalidAddress as exc:
                raise ValueError(f"{number!r}: {exc}") from None
        return value

    @field_validator("templates")
    @classmethod
    def _valid_templates(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for per_locale in value.values():
            for text in per_locale.values():
                templates.validate(text)
        return value

    def all_templates(self) -> dict[str, dict[str, str]]:
        merged = {name: dict(texts) for name, texts in templates.DEFAULT_TEMPLATES.items()}
        for name, texts in self.templates.items():
            merged.setdefault(name, {}).update(texts)
        return merged


class LimitsSettings(Section):
    """Anti-abuse limits on sending codes; 0 turns a limit off."""

    per_number_hour: int = Field(10, ge=0)
    per_number_day: int = Field(20, ge=0)
    per_ip_hour: int = Field(0, ge=0)
    """Off by default: the peer of a gateway is usually the app's own backend (see docs/configuration.md)."""
    range_digits: int = Field(3, ge=1, le=8)
    """How many trailing digits are dropped to form a number range."""
    per_range_hour: int = Field(0, ge=0)
    """Off by default: one app's traffic is unlike another's (see docs/configuration.md)."""
    per_country_hour: dict[Country, NonNegativeInt] = {}
    daily_budget: int = Field(0, ge=0)
    """Sends per day across all countries."""
    country_daily_budget: dict[Country, NonNegativeInt] = {}


class DispatchSettings(Section):
    batch_size: int = Field(256, ge=1, le=10000)
    lease: float = Field(60, ge=1)
    """Seconds a leased job is held before another worker may take it; longer than any provider timeout."""
    request_timeout: float = Field(10, gt=0)
    concurrency: int = Field(1000, ge=1)
    """Default concurrent sends per provider; a provider section may set its own ``concurrency``."""
    rate: float = Field(0, ge=0)
    """Default sends per second per provider; 0 is unlimited. A provider section may set its own ``rate``."""
    attempts_per_provider: int = Field(3, ge=1)
    retry_base_delay: float = Field(1.0, gt=0)
    retry_max_delay: float = Field(300, gt=0)
    breaker_threshold: int = Field(16, ge=1, le=20)
    """Failed requests among a provider's last 20 that open its circuit: its sends then wait, or go to the next
    provider, while one probe at a time finds out whether it is back. 16 (80%) opens on a provider that is down and
    not on one that fails a request now and then."""
    breaker_cooldown: float = Field(2, gt=0, le=600)
    """Seconds before an open provider circuit lets a probe through, doubling while the provider stays down, up to
    five times this: short, because a code waits for the provider's return."""
    shutdown_grace: float = Field(10, ge=0)
    max_queue: int = Field(1_000_000, ge=1)
    """Queued jobs beyond which the API answers 503 instead of accepting more."""

    @model_validator(mode="after")
    def _delays_in_order(self) -> DispatchSettings:
        if self.retry_base_delay > self.retry_max_delay:
            raise ValueError(
                f"retry_base_delay ({self.retry_base_delay:g} s) must not exceed retry_max_delay"
                f" ({self.retry_max_delay:g} s)"
            )
        return self


class PushSettings(Section):
    """Messages pushed to subscribers."""

    default_ttl: float = Field(86400, gt=0, le=30 * 86400)
    """Seconds a message stays worth delivering when it names no ``ttl``."""
    max_attempts: int = Field(10, ge=1, le=100)
    """Tries of one delivery before it fails (deferrals by a circuit breaker or a busy host do not count)."""
    give_up_after: float = Field(86400, gt=0)
    """Seconds after which an undelivered delivery fails, however few tries it had."""
    fanout_after: int = Field(10_000, ge=0)
    """Subscribers of a topic beyond which a message is answered before its deliveries are written; they are written
    at once after the answer, by the dispatcher (``GET /v1/messages/{id}`` says ``queued`` meanwhile)."""
    feedback_url: str | None = None
    """Where tidings POSTs ``subscriber.channel_removed`` when a push service says a token or subscription is dead."""
    feedback_secret: str | None = None
    """The ``whsec_`` secret those reports are signed with; derived from ``secret_key`` when not given (read it at
    ``GET /v1/push/feedback``)."""

    @field_validator("feedback_url")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    @field_validator("feedback_secret")
    @classmethod
    def _whsec(cls, value: str | None) -> str | None:
        if value is not None and not webhook_secrets.valid(value):
            raise ValueError("a webhook secret is `whsec_` followed by base64 (as `GET /v1/push/feedback` shows)")
        return value


class StatsSettings(Section):
    """The counts behind ``GET /v1/stats``."""

    flush_every: float = Field(5, gt=0, le=60)
    """Seconds between writes of a process's counts to the store: what a crash can lose of them, and how late the
    last minute shows."""


class WebhooksSettings(Section):
    allow_private_networks: bool = False
    """Deliver to loopback, private, link-local and multicast addresses (refused by default: SSRF)."""
    timeout: float = Field(10, gt=0)
    concurrency: int = Field(1000, ge=1)
    """Concurrent webhook requests in all."""
    per_host_concurrency: int = Field(32, ge=1)
    per_host_rate: float = Field(0, ge=0)
    """Requests per second to one host; 0 is unlimited."""
    breaker_threshold: int = Field(5, ge=1)
    """Consecutive failures that open a host's circuit: its deliveries wait instead of taking up concurrency."""
    breaker_cooldown: float = Field(30, gt=0)
    """Seconds before an open circuit lets one probe through (doubling while the host stays down)."""


class WebPushSettings(Section):
    vapid_subject: str = Field("mailto:admin@localhost", pattern=r"^(mailto:|https://)")
    """The contact push services see in the VAPID ``sub`` claim. The VAPID key derives from ``secret_key``."""
    concurrency: int = Field(1000, ge=1)


class StreamsSettings(Section):
    """Live streams (SSE and WebSocket)."""

    cache_size: int = Field(100, ge=0, le=100_000)
    """Messages per subscriber kept for replay to a client that reconnects."""
    cache_age: float = Field(12 * 3600, ge=0)
    """Seconds a message is kept for replay."""
    heartbeat: float = Field(15, gt=0)
    buffer: int = Field(256 * 1024, ge=1024)
    """Bytes written to one connection and not yet taken by the client; one further behind is disconnected."""
    max_connections: int = Field(0, ge=0)
    """Streams one process holds at most (then 503); 0 is the open-file limit less a reserve for the API."""
    token_ttl: float = Field(3600, gt=0, le=7 * 86400)
    """Default lifetime of a subscriber token."""
    max_per_subscriber: int = Field(20, ge=0)
    """Streams one subscriber holds at once on one process (then 429); 0 is no cap."""
    max_per_token: int = Field(10, ge=0)
    """Streams opened with one subscriber token held at once on one process (then 429); 0 is no cap. A token is
    given to a browser, whose tabs each open one."""


class TwilioCompatSettings(Section):
    """The Twilio Verify v2 routes (docs/twilio.md): off until both sids are set."""

    account_sid: str | None = Field(None, pattern=r"^AC[0-9a-fA-F]{32}$")
    """The Basic-auth username callers send (their password is a tidings key with the ``send`` scope)."""
    service_sid: str | None = Field(None, pattern=r"^VA[0-9a-fA-F]{32}$")
    """The one Verify service answered for; any other is 404, as an unknown service is at Twilio."""
    allow_custom_code: bool = False
    """Take ``CustomCode``: the caller then chooses the code, which tidings' own codes never let it do."""
    public_url: str | None = Field(None, pattern=r"^https?://[^\s?#]+$")
    """Where callers reach tidings (``https://verify.example.com``), for the answers' ``url``; the request's own
    scheme and host when not set."""

    @model_validator(mode="after")
    def _both_sids(self) -> TwilioCompatSettings:
        if (self.account_sid is None) != (self.service_sid is None):
            raise ValueError("set both account_sid and service_sid, or neither")
        return self


ROOT_KEY_BITS = 128
MAKE_A_KEY = """python3 -c 'import secrets; print("tk_" + secrets.token_urlsafe(32))'"""
_ALPHABETS = tuple(
    (frozenset(alphabet), math.log2(len(set(alphabet))))
    for alphabet in (
        string.digits,
        string.hexdigits.lower(),
        string.hexdigits.upper(),
        string.ascii_lowercase,
        string.ascii_lowercase + string.digits,
        string.ascii_letters + string.digits + "-_",  # base64url, as secrets.token_urlsafe writes
        string.ascii_letters + string.digits + "+/=",  # base64, as openssl rand -base64 writes
        string.printable.strip() + " ",
    )
)


def key_strength(key: str) -> float:
    """Bits a guesser must cover, estimated from the key's length and the smallest usual alphabet that holds it:
    exact for a random key (32 hex digits: 128; 22 characters of base64url: 132), generous to a chosen one, which
    is why a key that repeats a few characters is given none."""
    key = key.removeprefix("tk_")
    if len(set(key)) < 8:
        return 0.0
    characters = set(key)
    per_character = next((bits for alphabet, bits in _ALPHABETS if characters <= alphabet), 8.0)
    return len(key) * per_character


def _strong_root_key(key: str | None) -> str | None:
    if key is not None and key_strength(key) < ROOT_KEY_BITS:
        raise ValueError(
            f"the root key is too easy to guess (about {key_strength(key):.0f} bits, at least {ROOT_KEY_BITS} needed):"
            f" make one with {MAKE_A_KEY}"
        )
    return key


class Settings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    database: str = "sqlite:///./tidings.db"
    role: str = Field("all", pattern="^(all|api|worker)$")
    """What this process does: ``api`` answers requests and holds live streams, ``worker`` sends, ``all`` both.
    Separate roles share a queue, so they need Redis."""
    api_key: Annotated[str | None, AfterValidator(_strong_root_key)] = None
    """The root key (admin scope); at least 128 bits, as a random key has and a chosen word has not."""
    secret_key: str | None = None
    """Seals codes at rest. Without one, a random secret is kept in a file beside the database."""
    log_level: str = Field("INFO", pattern="(?i)^(debug|info|warning|error|critical)$")
    log_format: str = Field("text", pattern="^(text|json)$")
    access_log: bool = False
    """One log line per request; off by default because it costs a noticeable share of a request."""
    max_body_size: int = Field(2 * 1024 * 1024, ge=1024)
    """Room for a message to 10,000 recipients with ids of 128 characters (1.3 MB)."""
    body_timeout: float = Field(30, gt=0, le=3600)
    """Seconds a request's body may take to arrive, whole: a client trickling one holds a connection no longer.
    (Request heads have no such timeout in tidings: see docs/proxy.md.)"""
    trusted_proxies: list[str] = []
    """Peers (addresses or CIDR networks) whose ``X-Forwarded-For`` is believed."""
    default_region: Country | None = None

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR network") from None
        return value

    verify: VerifySettings = VerifySettings()
    limits: LimitsSettings = LimitsSettings()
    dispatch: DispatchSettings = DispatchSettings()
    push: PushSettings = PushSettings()
    stats: StatsSettings = StatsSettings()
    webhooks: WebhooksSettings = WebhooksSettings()
    webpush: WebPushSettings = WebPushSettings()
    streams: StreamsSettings = StreamsSettings()
    twilio_compat: TwilioCompatSettings = TwilioCompatSettings()
    providers: dict[str, dict[str, object]] = {}

    @property
    def region(self) -> str | None:
        return self.verify.default_region or self.default_region

    @model_validator(mode="after")
    def _roles_share_a_queue(self) -> Settings:
        if self.role != "all" and self.database.startswith("sqlite"):
            raise ValueError(f"role {self.role!r} needs a shared database: set database to a redis:// URL")
        return self

    @model_validator(mode="after")
    def _lease_outlasts_every_send(self) -> Settings:
        # A lease that ran out during a slow send would let another worker take the job and send it a second time.
        lease = self.dispatch.lease
        for name, timeout in (
            ("dispatch.request_timeout", self.dispatch.request_timeout),  # providers
            ("webhooks.timeout", self.webhooks.timeout),  # webhooks and Web Push
        ):
            if lease <= timeout:
                raise ValueError(f"dispatch.lease ({lease:g} s) must be longer than {name} ({timeout:g} s)")
        return self
