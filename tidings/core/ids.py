"""Identifiers: a type prefix and 128 random bits, time-ordered so that they sort and index well."""

from __future__ import annotations

import os
import time


def new_id(prefix: str) -> str:
    """``ver_`` + 12 hex digits of milliseconds + 20 random hex digits."""
    return f"{prefix}_{int(time.time() * 1000):012x}{os.urandom(10).hex()}"
