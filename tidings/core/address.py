"""Turning what a caller typed into a canonical address: E.164 phone numbers and normalised email addresses."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import PhoneMetadata


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
    number = _already_e164(text)
    if number is None:
        try:
            number = phonenumbers.parse(text, None if text.startswith("+") else default_region)
        except phonenumbers.NumberParseException as exc:
            raise InvalidAddress(f"not a phone number: {exc._msg}") from None
    # "Possible" (the right length for its country) rather than "valid": number plans change faster than
    # metadata, and a provider refuses a number that does not exist anyway.
    if not phonenumbers.is_possible_number(number):
        raise InvalidAddress("not a possible phone number for its country (check the length)")
    assert number.country_code is not None  # set by parsing
    region = phonenumbers.region_code_for_number(number) or phonenumbers.region_code_for_country_code(
        number.country_code
    )
    return PhoneNumber(
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        region if region and region != phonenumbers.UNKNOWN_REGION and region != "001" else None,
    )


_E164 = re.compile(r"\+([1-9][0-9]{6,14})")


def _already_e164(text: str) -> phonenumbers.PhoneNumber | None:
    """The number that ``phonenumbers.parse`` would make of ``text``, when ``text`` is already in E.164 form, read
    without it; None when the text needs the full parser.

    Most callers send E.164, and ``parse`` spends most of its time (a tenth of a whole API request) on what such a
    number does not have: punctuation, extensions, letters, non-ASCII digits. The country code is read the way
    ``parse`` reads it (E.164 country codes are prefix-free); a national number that ``parse`` could change (by a
    leading zero or a national prefix of its country) is left to it, so the two never disagree (tested).
    """
    match = _E164.fullmatch(text)
    if match is None:
        return None
    digits = match.group(1)
    for length in (1, 2, 3):
        country_code = int(digits[:length])
        if country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[length:]
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(
        country_code, phonenumbers.region_code_for_country_code(country_code)
    )
    if national.startswith("0") or metadata is None:
        return None
    if metadata.national_prefix_for_parsing and re.match(metadata.national_prefix_for_parsing, national):
        return None
    return phonenumbers.PhoneNumber(country_code=country_code, national_number=int(national))


def parse_email(raw: str) -> str:
    """A syntactically valid address, normalised and in lower case; deliverability is the mail server's business.

    RFC 5321 lets a mail server tell ``Ada@`` from ``ada@``, but none in common use does, and an address kept as
    typed let one person hold two verifications, fail a check typed in another case, and go round the
    per-address limits by changing case."""
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from None


def number_range(e164: str, hidden_digits: int) -> str:
    """The number without its last digits: the unit SMS-pumping fraud works in (one premium range)."""
    return e164[: max(4, len(e164) - hidden_digits)]
