"""Logging: plain text for people, JSON for machines (``log_format = "json"``).

Nothing tidings logs holds a code or a key, and as a second line of defence a filter masks anything shaped like an
API key or a bearer token before a record is written.
"""

from __future__ import annotations

import logging
import re
import sys

from pythonjsonlogger.json import JsonFormatter

_SECRETS = re.compile(r"(tk_[A-Za-z0-9_-]{8,}|whsec_[A-Za-z0-9+/=]{8,}|(?i:bearer)\s+\S+)")


class Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _SECRETS.sub("[redacted]", message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def setup(level: str = "INFO", format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if format == "json":
        handler.setFormatter(
            JsonFormatter("{asctime}{levelname}{name}{message}", style="{", rename_fields={"levelname": "level"})
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(Redact())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
