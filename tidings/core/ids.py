"""Identifiers: a type prefix and 128 random bits, time-ordered so that they sort and index well."""

from __future__ import annotations

import os
import re
import time


def new_id(prefix: str) -> str:
    """``ver_`` + 12 hex digits of milliseconds + 20 random hex digits."""
    return f"{prefix}_{int(time.time() * 1000):012x}{os.urandom(10).hex()}"


_SHAPE = re.compile(r"[a-z]+_[0-9a-f]{32}")


def has_shape(value: str, prefix: str) -> bool:
    """Whether ``value`` could be an id that ``new_id(prefix)`` made."""
    return value.startswith(f"{prefix}_") and _SHAPE.fullmatch(value) is not None


def pattern(prefix: str) -> str:
    """The regular expression of ``new_id(prefix)``'s ids (for the OpenAPI document)."""
    return f"^{prefix}_[0-9a-f]{{32}}$"
