"""Turning what a caller typed into a canonical address: E.164 phone numbers and normalised email addresses."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import phonenumbers
from email_validator import EmailNotValidError, validate_email


class InvalidAddress(ValueError):
    """The address cannot be understood; the message says why in words a caller can act on."""


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    e164: str
    region: str | None
    """ISO 3166 alpha-2 of the number's country, e.g. ``CN``."""


@functools.lru_cache(maxsize=16384)
def parse_phone(raw: str, default_region: str | None = None) -> PhoneNumber:
    """Parse and validate a phone number; one without ``+`` is read against ``default_region``."""
    text = raw.strip()
    if not text:
        raise InvalidAddress("a phone number is required")
    if not text.startswith("+") and not default_region:
        raise InvalidAddress("the number must be in E.164 form (+ and country code), e.g. +14155550100")
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidAddress(f"not a phone number: {exc._msg}") from None
    # "Possible" (the right length for its country) rather than "valid": number plans change faster than
    # metadata, and a provider refuses a number that does not exist anyway.
    if not phonenumbers.is_possible_number(number):
        raise InvalidAddress("not a possible phone number for its country (check the length)")
    region = phonenumbers.region_code_for_number(number) or phonenumbers.region_code_for_country_code(
        number.country_code
    )
    return PhoneNumber(
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        region if region and region != phonenumbers.UNKNOWN_REGION and region != "001" else None,
    )


def parse_email(raw: str) -> str:
    """A syntactically valid address with its domain normalised; deliverability is the mail server's business."""
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from None


def number_range(e164: str, hidden_digits: int) -> str:
    """The number without its last digits: the unit SMS-pumping fraud works in (one premium range)."""
    return e164[: max(4, len(e164) - hidden_digits)]
