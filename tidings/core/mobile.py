"""A message as a phone's push service takes it: the APNs request (headers and JSON payload) and the FCM HTTP v1
``message``. Pure, so what API.md promises of the mapping is tested without a network.

APNs: https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns
FCM: https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from tidings.core.push import MobileCall

APNS_MAX_PAYLOAD = 4096
"""Bytes Apple takes in a notification's payload (VoIP notifications may have 5 KB; tidings sends none)."""
FCM_MAX_MESSAGE = 4096
"""Bytes FCM takes in a message's payload."""
FCM_MAX_TTL = 28 * 86400
"""FCM keeps a message at most four weeks."""

_APNS_ID_NAMESPACE = uuid.UUID("0d5c1e9c-8b2b-4a51-9d3f-6f3f2b7f4a10")


def apns_id(delivery_id: str) -> str:
    """The ``apns-id`` of a delivery: a UUID, as Apple wants one, made from the delivery's id so that every retry
    of it carries the same."""
    return str(uuid.uuid5(_APNS_ID_NAMESPACE, delivery_id))


def apns_request(call: MobileCall, topic: str, now: float) -> tuple[dict[str, str], bytes]:
    """The headers (all but ``authorization``) and the payload of one notification.

    A message with a title or body is an ``alert``; one with neither is a silent ``background`` push, which Apple
    takes only at priority 5. ``data`` goes beside ``aps``, except a key named ``aps``, which is tidings' own.
    """
    alert = {key: value for key, value in (("title", call.title), ("body", call.body)) if value is not None}
    aps: dict[str, Any] = {"alert": alert} if alert else {"content-available": 1}
    if call.badge is not None:
        aps["badge"] = call.badge
    if call.sound is not None:
        aps["sound"] = call.sound
    payload = {key: value for key, value in (call.data or {}).items() if key != "aps"}
    payload["aps"] = aps
    high = call.priority == "high" and bool(alert)
    headers = {
        "apns-topic": topic,
        "apns-push-type": "alert" if alert else "background",
        "apns-priority": "10" if high else "5",
        "apns-expiration": str(int(now) + call.ttl) if call.ttl > 0 else "0",
        "apns-id": apns_id(call.id),
    }
    if call.collapse_key is not None:
        headers["apns-collapse-id"] = call.collapse_key
    return headers, _compact(payload)


def fcm_message(call: MobileCall) -> dict[str, Any]:
    """The ``message`` of an FCM HTTP v1 send. ``data`` values that are not strings go as JSON text, since FCM
    takes only strings there."""
    message: dict[str, Any] = {"token": call.token}
    notification = {key: value for key, value in (("title", call.title), ("body", call.body)) if value is not None}
    if notification:
        message["notification"] = notification
    if call.data:
        message["data"] = {
            key: value if isinstance(value, str) else _compact(value).decode() for key, value in call.data.items()
        }
    android: dict[str, Any] = {
        "priority": "HIGH" if call.priority == "high" else "NORMAL",
        "ttl": f"{min(call.ttl, FCM_MAX_TTL)}s",
    }
    if call.collapse_key is not None:
        android["collapse_key"] = call.collapse_key
    if call.sound is not None:
        android["notification"] = {"sound": call.sound}
    message["android"] = android
    return message


def _compact(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
