"""Request and response bodies. These models both validate requests and describe them in ``/openapi.json``."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from tidings.core.otp import MAX_CODE_LENGTH, MIN_CODE_LENGTH
from tidings.core.types import Channel, Status, Verification, rfc3339
from tidings.errors import InvalidInput
from tidings.ports import ApiKey, Node


class Body(BaseModel):
    """A request body. A rule across fields raises ``InvalidInput`` naming the field, which pydantic lets through
    (it wraps only ``ValueError``, whose error has no field). A field it does not know is refused: a misspelt
    option would otherwise ship the wrong behaviour with a 2xx. Limits hold for text as it was sent, as the OpenAPI
    document says; edge whitespace is dropped after, and only where it is noise (ids, codes; addresses as parsed)."""

    model_config = ConfigDict(extra="forbid")


RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})")
"""JSON Schema's ``date-time``: a time with its time zone."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _printable(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not hold control characters (U+0000-U+001F, U+007F) such as a line break or a tab")
    return value


Text = Annotated[str, AfterValidator(_printable), Field(json_schema_extra={"pattern": "^[^\\x00-\\x1f\\x7f]*$"})]
"""Text that reaches a person (an SMS, an email, a notification) or a log line: a line break there could make a
message say what its sender did not write (``"Your Bank\\nCall +44... now"``) or forge a log line."""


def _whole(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def whole_numbers(*fields: str) -> Any:
    """Takes ``6.0`` for ``6`` in these strict integer fields (which refuse ``"6"`` and ``true``): JSON does not
    tell the two apart, nor does JSON Schema's ``integer``."""
    return field_validator(*fields, mode="before")(_whole)


def or_null(schema: dict[str, Any]) -> None:
    """The schema of a field that reads ``null`` as its default: its own, or ``null``."""
    own = {key: schema.pop(key) for key in list(schema) if key not in ("default", "description", "title")}
    schema["anyOf"] = [own, {"type": "null"}]


def one_of(*fields: str) -> dict[str, Any]:
    """The JSON Schema of "exactly one of these fields, not null": what a model's own check refuses otherwise."""
    return {"oneOf": [{"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in fields]}


class StartVerification(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"to": "+8613800138000", "channel": "sms", "locale": "zh-CN", "code_length": 6}]
        }
    )

    to: str = Field(min_length=1, max_length=320, description="E.164 phone number, or an email address.")
    channel: Channel = Field(Channel.SMS, json_schema_extra=or_null)
    """``null`` means the default too."""
    locale: str | None = Field(None, max_length=16, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
    code_length: int | None = Field(None, ge=MIN_CODE_LENGTH, le=MAX_CODE_LENGTH, strict=True)
    template: Text | None = Field(None, max_length=64)
    app_name: Text | None = Field(None, min_length=1, max_length=64)

    _whole_numbers = whole_numbers("code_length")

    @field_validator("channel", mode="before")
    @classmethod
    def _default_channel(cls, value: object) -> object:
        return Channel.SMS if value is None else value


class CheckVerification(Body):
    model_config = ConfigDict(
        json_schema_extra={**one_of("id", "to"), "examples": [{"to": "+8613800138000", "code": "123456"}]}
    )

    id: str | None = Field(None, max_length=64)
    to: str | None = Field(None, min_length=1, max_length=320)
    code: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(str.strip)] = Field(
        description="What the user typed (pasted, with spaces around it, say); anything but the code is wrong."
    )

    @model_validator(mode="after")
    def _one_lookup(self) -> CheckVerification:
        if (self.id is None) == (self.to is None):
            raise InvalidInput("give exactly one of `id` or `to`", field="to" if self.id is None else "id")
        return self


class VerificationOut(BaseModel):
    id: str
    to: str
    channel: Channel
    status: Status
    expires_at: str
    send_count: int
    created_at: str
    updated_at: str
    attempts_left: int = Field(description="Checks left before the verification locks.")
    test: bool = Field(False, description="A configured test number: nothing is sent.")
    delivered: int = Field(
        0, description="Sends a provider accepted; fewer than `send_count`: see `GET /v1/verifications/{id}/failures`."
    )

    @classmethod
    def of(cls, v: Verification) -> VerificationOut:
        return cls(
            id=v.id,
            to=v.to,
            channel=v.channel,
            status=v.status,
            expires_at=rfc3339(v.expires_at),
            send_count=v.send_count,
            created_at=rfc3339(v.created_at),
            updated_at=rfc3339(v.updated_at),
            attempts_left=max(0, v.max_checks - v.check_count),
            test=v.is_test,
            delivered=v.delivered_count,
        )


class FailedSend(BaseModel):
    job: str = Field(description="The send: `snd_...`, the same through its retries.")
    provider: str
    outcome: Literal["transient", "permanent"] = Field(
        description="`transient`: tried again later (or on the next provider); `permanent`: that provider refused."
    )
    error: str | None = Field(description="The provider's own error code, or tidings' (`timeout`, `http_503`...).")
    at: str


class Failures(BaseModel):
    id: str
    failures: list[FailedSend] = Field(description="The last 50 failed tries, oldest first.")


class CheckOut(BaseModel):
    id: str
    status: Status
    valid: bool
    attempts_left: int


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    retry_after: int | None = None


class ErrorOut(BaseModel):
    error: ErrorDetail


class NewKey(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "backend", "scopes": ["send"]}]})

    name: Text = Field(min_length=1, max_length=100)
    scopes: list[Literal["send", "read", "admin"]] = Field(min_length=1)


class KeyOut(BaseModel):
    id: str
    name: str
    scopes: list[str]
    created_at: str
    key: str | None = Field(None, description="The key itself: shown once, when it is created.")

    @classmethod
    def of(cls, key: ApiKey, secret: str | None = None) -> KeyOut:
        return cls(
            id=key.id,
            name=key.name,
            scopes=sorted(key.scopes),
            created_at=rfc3339(key.created_at),
            key=secret,
        )


class KeyList(BaseModel):
    keys: list[KeyOut]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = {}


class NodeOut(BaseModel):
    id: str = Field(description="The process's name; on Redis also its consumer name in the queue's group.")
    role: Literal["all", "api", "worker"]
    host: str
    pid: int
    version: str
    started_at: str
    seen_at: str = Field(description="Its last heartbeat; a node silent for 15 s is left out.")
    streams: int = Field(description="Live connections it holds.")
    in_flight: int = Field(description="Sends it has under way.")
    circuits: dict[str, Literal["open", "half_open"]] = Field(
        description="Its providers whose circuit breaker is not closed: their sends wait, or go to the next one."
    )

    @classmethod
    def of(cls, node: Node) -> NodeOut:
        return cls(
            id=node.id, role=node.role, host=node.host, pid=node.pid, version=node.version,
            started_at=rfc3339(node.started_at), seen_at=rfc3339(node.seen_at), streams=node.streams,
            in_flight=node.in_flight, circuits=node.circuits,
        )  # fmt: skip


class Cluster(BaseModel):
    backend: Literal["sqlite", "redis"]
    nodes: list[NodeOut]
    queues: dict[str, int] = Field(description="Jobs waiting or in flight, by lane (provider or push channel).")
    queued: int = Field(description="All of them.")
