"""A message as APNs and FCM take it, as API.md's "Mobile push" maps it."""

from __future__ import annotations

import json
import uuid

from tidings.core.mobile import apns_id, apns_request, fcm_message
from tidings.core.push import MobileCall

NOW = 1_800_000_000.0


def call(**fields) -> MobileCall:
    defaults = {"title": "Hi", "body": "There", "data": None, "priority": "normal", "ttl": 600}
    return MobileCall(id="dlv_x.0", token="ab" * 32, environment="production", **{**defaults, **fields})


def test_an_alert_carries_title_body_badge_sound_and_data_beside_aps():
    headers, payload = apns_request(
        call(data={"k": "v", "aps": "not ours"}, badge=3, sound="ping.caf", collapse_key="c"), "com.example", NOW
    )
    assert json.loads(payload) == {
        "k": "v",
        "aps": {"alert": {"title": "Hi", "body": "There"}, "badge": 3, "sound": "ping.caf"},
    }
    assert headers == {
        "apns-topic": "com.example",
        "apns-push-type": "alert",
        "apns-priority": "5",
        "apns-expiration": str(int(NOW) + 600),
        "apns-id": apns_id("dlv_x.0"),
        "apns-collapse-id": "c",
    }


def test_priorities_map_to_ten_and_five_and_a_silent_push_is_background_at_five():
    assert apns_request(call(priority="high"), "t", NOW)[0]["apns-priority"] == "10"
    assert apns_request(call(priority="low"), "t", NOW)[0]["apns-priority"] == "5"
    headers, payload = apns_request(call(title=None, body=None, data={"sync": 1}, priority="high"), "t", NOW)
    assert (headers["apns-push-type"], headers["apns-priority"]) == ("background", "5")
    assert json.loads(payload) == {"sync": 1, "aps": {"content-available": 1}}


def test_the_apns_id_is_a_uuid_stable_per_delivery():
    assert apns_id("dlv_x.0") == apns_id("dlv_x.0") != apns_id("dlv_x.1")
    assert str(uuid.UUID(apns_id("dlv_x.0"))) == apns_id("dlv_x.0")


def test_no_time_left_is_expiration_zero():
    assert apns_request(call(ttl=0), "t", NOW)[0]["apns-expiration"] == "0"


def test_fcm_takes_strings_in_data_and_its_own_ttl_limit():
    message = fcm_message(call(data={"n": 1, "s": "x", "l": [1, "é"]}, ttl=90 * 86400, priority="high"))
    assert message["data"] == {"n": "1", "s": "x", "l": '[1,"é"]'}
    assert message["android"] == {"priority": "HIGH", "ttl": f"{28 * 86400}s"}
    assert message["notification"] == {"title": "Hi", "body": "There"}


def test_an_fcm_data_message_has_no_notification():
    message = fcm_message(call(title=None, body=None, data={"k": "v"}, priority="low"))
    assert "notification" not in message and message["android"]["priority"] == "NORMAL"
