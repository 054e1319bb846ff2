"""The pieces without a server: the sid scheme, Twilio's dates, the attempts list, and the settings."""

from __future__ import annotations

import pytest

from tests.helpers import verification
from tidings.api.twilio import wire
from tidings.config import ConfigError, load
from tidings.core.types import Status

ID = "ver_0190a1b2c3d4e5f60718293a4b5c6d7e"


def test_a_sid_is_the_id_and_back():
    assert wire.sid(ID) == "VE0190a1b2c3d4e5f60718293a4b5c6d7e"
    assert wire.verification_id(wire.sid(ID)) == ID
    assert wire.verification_id("VE0190A1B2C3D4E5F60718293A4B5C6D7E") == ID
    for other in ["VE123", "VA0190a1b2c3d4e5f60718293a4b5c6d7e", "ve0190a1b2c3d4e5f60718293a4b5c6d7e", "VE" + "g" * 32,
                  wire.sid(ID) + "0", ""]:  # fmt: skip
        assert wire.verification_id(other) is None


def test_attempt_sids_are_stable_and_distinct():
    sids = {wire.attempt_sid(ID, number) for number in range(1, 101)}
    assert len(sids) == 100 and all(len(sid) == 34 and sid.startswith("VL") for sid in sids)
    assert wire.attempt_sid(ID, 3) == wire.attempt_sid(ID, 3) != wire.attempt_sid(ID.replace("0190", "0191"), 3)


def test_dates_are_twilios():
    assert wire.date(1438286400.999) == "2015-07-30T20:00:00Z"
    assert wire.date(0) == "1970-01-01T00:00:00Z"


def test_send_code_attempts_know_the_first_and_last_times():
    v = verification(ID, now=1438286400.0)
    v.send_count, v.last_sent_at = 3, 1438286460.0
    attempts = wire.verification(v, "AC" + "0" * 32, "VA" + "0" * 32, "https://x")["send_code_attempts"]
    assert [a["time"] for a in attempts] == ["2015-07-30T20:00:00Z", None, "2015-07-30T20:01:00Z"]
    assert {a["channel"] for a in attempts} == {"SMS"}
    v.send_count = 250  # a test number
    attempts = wire.verification(v, "AC" + "0" * 32, "VA" + "0" * 32, "https://x")["send_code_attempts"]
    assert len(attempts) == wire.MAX_ATTEMPTS_SHOWN and attempts[-1]["time"] == "2015-07-30T20:01:00Z"


def test_valid_is_approved():
    v = verification(ID)
    body = wire.verification(v, "AC" + "0" * 32, "VA" + "0" * 32, "https://x")
    assert body["valid"] is False and body["url"] == f"https://x/v2/Services/VA{'0' * 32}/Verifications/{wire.sid(ID)}"
    v.status = Status.APPROVED
    assert wire.verification(v, "AC" + "0" * 32, "VA" + "0" * 32, "https://x")["valid"] is True


def test_settings():
    environ = {
        "TIDINGS_TWILIO_COMPAT_ACCOUNT_SID": "AC" + "1" * 32,
        "TIDINGS_TWILIO_COMPAT_SERVICE_SID": "VA" + "2" * 32,
        "TIDINGS_TWILIO_COMPAT_ALLOW_CUSTOM_CODE": "true",
        "TIDINGS_TWILIO_COMPAT_PUBLIC_URL": "https://verify.example.com",
    }
    compat = load(None, environ=environ).twilio_compat
    assert (compat.account_sid, compat.service_sid) == ("AC" + "1" * 32, "VA" + "2" * 32)
    assert compat.allow_custom_code is True and compat.public_url == "https://verify.example.com"
    off = load(None, environ={}).twilio_compat
    assert (off.account_sid, off.service_sid, off.allow_custom_code) == (None, None, False)


@pytest.mark.parametrize(
    "environ",
    [
        {"TIDINGS_TWILIO_COMPAT_ACCOUNT_SID": "AC" + "1" * 32},
        {"TIDINGS_TWILIO_COMPAT_SERVICE_SID": "VA" + "2" * 32},
        {"TIDINGS_TWILIO_COMPAT_ACCOUNT_SID": "AC123", "TIDINGS_TWILIO_COMPAT_SERVICE_SID": "VA" + "2" * 32},
        {"TIDINGS_TWILIO_COMPAT_ACCOUNT_SID": "VA" + "1" * 32, "TIDINGS_TWILIO_COMPAT_SERVICE_SID": "VA" + "2" * 32},
        {"TIDINGS_TWILIO_COMPAT_PUBLIC_URL": "verify.example.com"},
    ],
)
def test_wrong_settings_stop_the_server(environ):
    with pytest.raises(ConfigError, match="twilio_compat"):
        load(None, environ=environ)
