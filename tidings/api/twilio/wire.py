"""Twilio Verify v2's wire format: its sids, its dates and its two resources' JSON, made from tidings' verifications.

A sid is derived from the verification's id and back, so any tidings node can answer for any sid without a table:
``ver_<32 hex>`` is ``VE<the same 32 hex>``. Nothing here does I/O.
"""

from __future__ import annotations

import functools
import re
import time
from typing import Any

from tidings.core.types import Status, Verification

_SID = re.compile(r"VE[0-9a-fA-F]{32}")
GONE = frozenset({Status.APPROVED, Status.CANCELED, Status.EXPIRED})
"""What Twilio deletes, so that fetching or checking it is 404 there: approved, canceled and expired verifications."""


def sid(verification_id: str) -> str:
    return "VE" + verification_id.removeprefix("ver_")


def verification_id(sid: str) -> str | None:
    """The tidings id a ``VE`` sid stands for; None for a string of another shape (Twilio's hex is either case)."""
    return f"ver_{sid[2:].lower()}" if _SID.fullmatch(sid) else None


def attempt_sid(verification_id: str, number: int) -> str:
    """``VL`` and 32 hex digits, the same for the same send of the same verification every time it is shown: the
    id's hex with its last four digits (of 20 random ones) given to the send's number."""
    return f"VL{verification_id[4:32]}{number & 0xFFFF:04x}"


def date(timestamp: float) -> str:
    """Twilio's ISO 8601, to the second: ``2015-07-30T20:00:00Z``."""
    return _date(int(timestamp))


@functools.lru_cache(maxsize=1024)
def _date(second: int) -> str:
    """The answers of one burst of requests share their seconds: each is formatted once."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))


MAX_ATTEMPTS_SHOWN = 100
"""A test number is sent to without limit; the list shows its last sends only (no other has more: ``max_sends``)."""


def _send_code_attempts(v: Verification) -> list[dict[str, Any]]:
    """One entry per send. tidings keeps the first send's time and the last's, not those in between: theirs are
    null."""
    channel = v.channel.value.upper()  # as Twilio writes it here: "SMS", "EMAIL"
    attempts = []
    for number in range(max(1, v.send_count - MAX_ATTEMPTS_SHOWN + 1), v.send_count + 1):
        at = v.created_at if number == 1 else v.last_sent_at if number == v.send_count else None
        attempts.append(
            {"time": None if at is None else date(at), "channel": channel, "attempt_sid": attempt_sid(v.id, number)}
        )
    return attempts


def verification(v: Verification, account_sid: str, service_sid: str, base_url: str) -> dict[str, Any]:
    """The Verification resource, its fields in the order of Twilio's own example."""
    own_sid = sid(v.id)
    return {
        "sid": own_sid,
        "service_sid": service_sid,
        "account_sid": account_sid,
        "to": v.to,
        "channel": v.channel.value,
        "status": v.status.value,
        "valid": v.status is Status.APPROVED,
        "date_created": date(v.created_at),
        "date_updated": date(v.updated_at),
        "lookup": {},
        "amount": None,
        "payee": None,
        "send_code_attempts": _send_code_attempts(v),
        "sna": None,
        "url": f"{base_url}/v2/Services/{service_sid}/Verifications/{own_sid}",
    }


def verification_check(v: Verification, valid: bool, account_sid: str, service_sid: str) -> dict[str, Any]:
    """The VerificationCheck resource: the verification as the check left it."""
    return {
        "sid": sid(v.id),
        "service_sid": service_sid,
        "account_sid": account_sid,
        "to": v.to,
        "channel": v.channel.value,
        "status": v.status.value,
        "valid": valid,
        "amount": None,
        "payee": None,
        "sna_attempts_error_codes": [],
        "date_created": date(v.created_at),
        "date_updated": date(v.updated_at),
    }
