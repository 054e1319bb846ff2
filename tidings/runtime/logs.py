"""Logging: plain text for people, JSON for machines (``log_format = "json"``).

Nothing tidings logs holds a code or a key, and the access log masks query values (``api.access_log``). As a second
line of defence, a filter on the one handler masks whatever looks like a secret in every record that reaches it,
from tidings or any library (aiohttp, asyncio): its message, its traceback, its stack and its extra fields, which is
all that either format writes.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

MASK = "[redacted]"
_VALUE = r"[^\s\"'`&,;<>()\[\]{}|\\]+"
"""As much of what follows as can belong to one secret: up to a space, a quote, a separator or a bracket."""
_NAMES = ("token", "key", "secret", "password", "passwd", "code", "signature", "auth")
"""How the name of a value that is a secret ends: api_key, access_token, CustomCode, client_secret, ..."""
_SECRETS = [
    # an API key, a subscriber token or a webhook secret, whole, whatever is around it
    (re.compile(r"(?:stk_|tk_|whsec_)" + _VALUE), MASK),
    # an Authorization header's credentials, whatever their scheme, up to the end of the line (quotes included:
    # Digest and OAuth quote theirs)
    (re.compile(r"(?ai)(authorization[\"']?\s*[:=]\s*[\"']?)[^\r\n\\]+"), rf"\1{MASK}"),
    # credentials after their scheme, wherever they are written
    (re.compile(r"(?ai)\b((?:bearer|basic)\s+)" + _VALUE), rf"\1{MASK}"),
    # a value named as a secret: ?token=, api_key=, Code=, "password": ..., 'auth': ...
    (re.compile(rf"(?ai)((?:{'|'.join(_NAMES)})[\"']?\s*[:=]\s*[\"']?){_VALUE}"), rf"\1{MASK}"),
    # a password in a URL: redis://user:password@host
    (re.compile(r"(://)[^\s/@\"']+@"), rf"\1{MASK}@"),
]
_HINTS = ("tk_", "whsec_", "authorization", "bearer", "basic", *_NAMES, "://")
"""One of these is in any text that a pattern above matches: most log lines hold none and cost no more."""
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_TRACEBACKS = logging.Formatter()


def redact(text: str) -> str:
    folded = text.casefold()
    if not any(hint in folded for hint in _HINTS):
        return text
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class Redact(logging.Filter):
    """Rewrites a record in place, as it will be written: the formatters then have nothing left to mask."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: written all the same, rather than raised into the caller or dumped raw
            record.msg, record.args = redact(f"{record.msg} (arguments that do not fit: {record.args!r})"), None
        else:
            masked = redact(message)
            if masked != message:
                record.msg, record.args = masked, None
        if record.exc_info:  # the JSON formatter would format exc_info again: leave it only the masked text
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name in record.__dict__.keys() - _RECORD_FIELDS:
            record.__dict__[name] = MASK if _secret_name(name) else _redact_value(record.__dict__[name])
        return True


def _redact_value(value: Any) -> Any:
    """An extra field as the JSON formatter would write it, masked inside; whole under a name such as ``token``."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: MASK if _secret_name(key) else _redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    return value


def _secret_name(name: object) -> bool:
    return isinstance(name, str) and name.casefold().endswith(("authorization", *_NAMES))


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
    # httpx (the APNs client) logs every request's URL at INFO, and an APNs URL holds the device token.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
