"""What FCM's HTTP v1 API accepts in a ``message`` (and the request around it), as its reference documents: the
fields of each object and the type or values of each, taken in lowerCamelCase or snake_case, and exactly one
recipient among a registration token, a topic and a condition. A refusal is the first field at fault with why, as a
``google.rpc.BadRequest`` field violation says it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeAlias

MAX_TOKEN = 4096
_REGISTRATION_TOKEN = re.compile(rf"[A-Za-z0-9_:-]{{1,{MAX_TOKEN}}}")
_TOPIC = re.compile(r"[A-Za-z0-9_.~%-]{1,900}")
_DURATION = re.compile(r"\d+(\.\d{1,9})?s")
_UPPER = re.compile(r"[A-Z]")

Violation: TypeAlias = tuple[str, str]
"""The field at fault and why, as a ``google.rpc.BadRequest`` field violation says it."""
Check: TypeAlias = Callable[[Any, str], Violation | None]
Schema: TypeAlias = "dict[str, Check | Schema]"
"""The fields a JSON object may hold, by their proto (snake_case) name, each with its check or nested schema."""


def invalid(path: str, kind: str, value: Any) -> Violation:
    return path, f"Invalid value at '{path}' ({kind}), {json.dumps(value)}"


def of(kind: str, test: Callable[[Any], bool]) -> Check:
    def check(value: Any, path: str) -> Violation | None:
        return None if test(value) else invalid(path, kind, value)

    return check


def enum(name: str, *values: str) -> Check:
    return of(f"type.googleapis.com/google.firebase.fcm.v1.{name}", lambda value: value in values)


def string_map(value: Any, path: str) -> Violation | None:
    if not isinstance(value, dict):
        return invalid(path, "map<string, string>", value)
    wrong = (invalid(f"{path}[{key}]", "TYPE_STRING", item) for key, item in value.items() if not isinstance(item, str))
    return next(wrong, None)


STRING = of("TYPE_STRING", lambda value: isinstance(value, str))
STRINGS = of("TYPE_STRING", lambda value: isinstance(value, list) and all(isinstance(item, str) for item in value))
BOOL = of("TYPE_BOOL", lambda value: isinstance(value, bool))
INT = of("TYPE_INT32", lambda value: isinstance(value, int) and not isinstance(value, bool))
STRUCT = of("type.googleapis.com/google.protobuf.Struct", lambda value: isinstance(value, dict))
DURATION = of(
    "type.googleapis.com/google.protobuf.Duration",
    lambda value: isinstance(value, str) and _DURATION.fullmatch(value) is not None,
)
DURATIONS = of(
    "type.googleapis.com/google.protobuf.Duration",
    lambda value: (
        isinstance(value, list) and all(isinstance(item, str) and _DURATION.fullmatch(item) for item in value)
    ),
)

ANDROID_NOTIFICATION: Schema = {
    **dict.fromkeys(
        ("title", "body", "icon", "color", "sound", "tag", "click_action", "body_loc_key", "title_loc_key"), STRING
    ),
    **dict.fromkeys(("channel_id", "ticker", "event_time", "image"), STRING),
    **dict.fromkeys(("body_loc_args", "title_loc_args"), STRINGS),
    **dict.fromkeys(
        ("sticky", "local_only", "default_sound", "default_vibrate_timings", "default_light_settings"), BOOL
    ),
    "bypass_proxy_notification": BOOL,
    "notification_priority": enum(
        "NotificationPriority",
        "PRIORITY_UNSPECIFIED",
        "PRIORITY_MIN",
        "PRIORITY_LOW",
        "PRIORITY_DEFAULT",
        "PRIORITY_HIGH",
        "PRIORITY_MAX",
    ),
    "visibility": enum("Visibility", "VISIBILITY_UNSPECIFIED", "PRIVATE", "PUBLIC", "SECRET"),
    "proxy": enum("Proxy", "PROXY_UNSPECIFIED", "ALLOW", "DENY", "IF_PRIORITY_LOWERED"),
    "notification_count": INT,
    "vibrate_timings": DURATIONS,
    "light_settings": STRUCT,
}
MESSAGE: Schema = {
    "name": STRING,
    "token": STRING,
    "topic": STRING,
    "condition": STRING,
    "data": string_map,
    "notification": {"title": STRING, "body": STRING, "image": STRING},
    "android": {
        "collapse_key": STRING,
        "priority": enum("AndroidMessagePriority", "NORMAL", "HIGH"),
        "ttl": DURATION,
        "restricted_package_name": STRING,
        "data": string_map,
        "notification": ANDROID_NOTIFICATION,
        "fcm_options": {"analytics_label": STRING},
        **dict.fromkeys(("direct_boot_ok", "bandwidth_constrained_ok", "restricted_satellite_ok"), BOOL),
    },
    "webpush": {
        "headers": string_map,
        "data": string_map,
        "notification": STRUCT,
        "fcm_options": {"link": STRING, "analytics_label": STRING},
    },
    "apns": {
        "headers": string_map,
        "payload": STRUCT,
        "fcm_options": {"analytics_label": STRING, "image": STRING},
        "live_activity_token": STRING,
    },
    "fcm_options": {"analytics_label": STRING},
}
REQUEST: Schema = {"message": MESSAGE, "validate_only": BOOL}


def violation(value: Any, schema: Schema, path: str) -> Violation | None:
    """The first field of ``value`` the schema refuses, or None. Names are taken in lowerCamelCase or snake_case and
    null stands for an unset field, as Google's JSON parser does."""
    if not isinstance(value, dict):
        return invalid(path, "TYPE_MESSAGE", value)
    for key, item in value.items():
        spec = schema.get(_UPPER.sub(lambda upper: f"_{upper.group().lower()}", key))
        where = f"{path}.{key}" if path else key
        if spec is None:
            at = f" at '{path}'" if path else ""
            return where, f'Invalid JSON payload received. Unknown name "{key}"{at}: Cannot find field.'
        if item is None:
            continue
        found = violation(item, spec, where) if isinstance(spec, dict) else spec(item, where)
        if found:
            return found
    return None


def recipient(message: dict[str, Any]) -> str | Violation:
    """Where the message goes (its token, ``/topics/<topic>`` or its condition), or what is wrong with that."""
    given = [name for name in ("token", "topic", "condition") if message.get(name) is not None]
    if not given:
        return "message", "Recipient of the message is not set."
    if len(given) > 1:
        return "message", "Exactly one of token, topic or condition may be set."
    token, topic = message.get("token"), message.get("topic")
    if token is not None:
        return token if _REGISTRATION_TOKEN.fullmatch(token) else ("message.token", "Invalid registration token")
    if topic is not None:
        return f"/topics/{topic}" if _TOPIC.fullmatch(topic) else ("message.topic", "Invalid topic name")
    return str(message["condition"])
