"""Verification messages per locale, with the app name, the code and its validity in minutes.

Templates are ``str.format`` strings restricted to a known set of plain fields, checked when they are loaded, so a
template from the configuration can never reach attributes of the values it is filled with.
"""

from __future__ import annotations

import math
from string import Formatter

FIELDS = frozenset({"app_name", "code", "minutes"})

DEFAULT_TEMPLATES: dict[str, dict[str, str]] = {
    "verification": {
        "en": "Your {app_name} verification code is {code}. It expires in {minutes} minutes.",
        "zh-CN": "【{app_name}】您的验证码是{code}，{minutes}分钟内有效，请勿泄露给他人。",
        "zh-TW": "【{app_name}】您的驗證碼是{code}，{minutes}分鐘內有效。",
        "es": "Tu código de verificación de {app_name} es {code}. Caduca en {minutes} minutos.",
        "fr": "Votre code de vérification {app_name} est {code}. Il expire dans {minutes} minutes.",
        "de": "Ihr {app_name}-Bestätigungscode lautet {code}. Er läuft in {minutes} Minuten ab.",
        "ja": "{app_name}の認証コードは{code}です。{minutes}分間有効です。",
    },
}
EMAIL_SUBJECTS = {"en": "Your {app_name} verification code", "zh-CN": "{app_name} 验证码"}


class TemplateError(ValueError):
    pass


def validate(template: str) -> str:
    """Return the template if it only uses the allowed plain fields; raise TemplateError otherwise."""
    try:
        parsed = list(Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(f"template is not a valid format string: {exc}") from None
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in FIELDS or spec or conversion:
            raise TemplateError(f"template field {{{field}}} is not one of {sorted(FIELDS)}")
    if not any(field == "code" for _, field, _, _ in parsed):
        raise TemplateError("template must contain {code}")
    return template


def pick_locale(requested: str | None, available: dict[str, str], default: str = "en") -> str:
    """Exact locale, then its language (``zh-HK`` -> ``zh-CN`` if that is all there is); then the default, found
    the same way; then English; then whatever there is."""
    for wanted in (requested, default, "en"):
        found = _closest(wanted, available)
        if found is not None:
            return found
    return next(iter(available))


def _closest(requested: str | None, available: dict[str, str]) -> str | None:
    if not requested:
        return None
    wanted = requested.replace("_", "-").lower()
    language = wanted.split("-")[0]
    exact = next((name for name in available if name.lower() == wanted), None)
    return exact or next((name for name in available if name.split("-")[0].lower() == language), None)


def render(template: str, *, app_name: str, code: str, ttl: float) -> str:
    return template.format(app_name=app_name, code=code, minutes=max(1, math.ceil(ttl / 60)))
