"""Identifiers: a type prefix and 128 random bits, time-ordered so that they sort and index well."""

from __future__ import annotations

import re

RANDOM_BYTES = 10


def new_id(prefix: str, now: float, random: bytes) -> str:
    """``ver_`` + 12 hex digits of the milliseconds of ``now`` + 20 hex digits of ``random`` (``RANDOM_BYTES`` from
    the caller's source: the operating system's, outside tests)."""
    return f"{prefix}_{int(now * 1000):012x}{random.hex()}"


_SHAPE = re.compile(r"[a-z]+_[0-9a-f]{32}")


def has_shape(value: str, prefix: str) -> bool:
    """Whether ``value`` could be an id that ``new_id(prefix)`` made."""
    return value.startswith(f"{prefix}_") and _SHAPE.fullmatch(value) is not None


def pattern(prefix: str) -> str:
    """The regular expression of ``new_id(prefix)``'s ids (for the OpenAPI document)."""
    return f"^{prefix}_[0-9a-f]{{32}}$"
