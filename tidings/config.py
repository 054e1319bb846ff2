"""Settings from a TOML file, overridden by ``TIDINGS_<SECTION>_<KEY>`` (top level: ``TIDINGS_<KEY>``).

Environment names are derived from the settings models themselves, so every setting has exactly one name and a
misspelt key in the file is an error rather than silently ignored.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr, ValidationError

from tidings.backends import REDIS_SCHEMES, sqlite_path
from tidings.backends.redis.client import check_url
from tidings.channels.apns import ApnsSettings
from tidings.channels.fcm import FcmSettings
from tidings.core.settings import Settings
from tidings.errors import BackendError
from tidings.providers.registry import PROVIDERS

PREFIX = "TIDINGS"
PUSH_SERVICES: dict[str, type[BaseModel]] = {"apns": ApnsSettings, "fcm": FcmSettings}
"""Push services that are configured as ``[providers.<name>]`` too, though they are channels of subscribers."""
_SECTIONS: dict[str, type[BaseModel]] = {name: cls.Settings for name, cls in PROVIDERS.items()} | PUSH_SERVICES


class ConfigError(Exception):
    """The configuration cannot be used; the message says which setting and why."""


def load(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """The file, then the environment over it, then ``overrides`` (the command line's) over both."""
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_toml(path)
    _environment_over(data, environ)
    data.update(overrides or {})
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc)) from None
    validate_providers(settings)
    try:
        if settings.database.startswith(REDIS_SCHEMES):
            check_url(settings.database)
        else:
            sqlite_path(settings.database)
    except (ValueError, BackendError) as exc:
        raise ConfigError(f"invalid configuration: database: {exc}") from None
    return settings


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """``TIDINGS_*`` variables that name no setting: most likely misspelt, and otherwise silently ignored."""
    consulted = _Consulted(environ)
    _environment_over({}, consulted)
    return sorted(name for name in environ if name.startswith(PREFIX + "_") and name not in consulted.asked)


class _Consulted(dict[str, str]):
    """The environment, remembering every name looked up in it."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        super().__init__(environ)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


def _environment_over(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Write the environment's settings over the file's ``data``, every provider's section included."""
    _overlay(data, Settings, (PREFIX,), environ)
    providers = data.setdefault("providers", {})
    if not isinstance(providers, dict):
        raise ConfigError("providers must be a table ([providers.<name>] sections)")
    for name, model in _SECTIONS.items():
        section = providers.get(name, {})
        if not isinstance(section, dict):
            raise ConfigError(f"providers.{name} must be a table ([providers.{name}] section)")
        section = dict(section)
        _overlay(section, model, (PREFIX, "PROVIDERS", name.upper()), environ)
        if section:
            providers[name] = section


def _read_toml(path: str | Path) -> dict[str, Any]:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")  # an editor's byte-order mark is not worth refusing the file for
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}); TOML files are UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def validate_providers(settings: Settings) -> None:
    """Every provider named or configured must exist, have valid settings, and serve the channel it is named for."""
    for name, model in PUSH_SERVICES.items():
        if name in settings.providers:
            try:
                model.model_validate(settings.providers[name])
            except ValidationError as exc:
                raise ConfigError(_explain(exc, f"providers.{name}.")) from None
    named = {*settings.verify.sms_providers, *settings.verify.email_providers, *settings.providers} - set(PUSH_SERVICES)
    for name in sorted(named):
        if name not in PROVIDERS:
            known = ", ".join(sorted([*PROVIDERS, *PUSH_SERVICES]))
            raise ConfigError(f"unknown provider {name!r}; known: {known}")
    for channel, names in (("sms", settings.verify.sms_providers), ("email", settings.verify.email_providers)):
        for name in names:
            if channel not in PROVIDERS[name].channels:
                serving = sorted(known for known, cls in PROVIDERS.items() if channel in cls.channels)
                raise ConfigError(
                    f"verify.{channel}_providers: {name!r} does not send {channel}; {channel} providers:"
                    f" {', '.join(serving)}"
                )
    for name in sorted(named):
        try:
            provider_settings = PROVIDERS[name].Settings.model_validate(settings.providers.get(name, {}))
        except ValidationError as exc:
            raise ConfigError(_explain(exc, f"providers.{name}.")) from None
        timeout = getattr(provider_settings, "timeout", None)  # a provider with a timeout of its own (SMTP)
        if timeout is not None and settings.dispatch.lease <= timeout:
            raise ConfigError(
                f"dispatch.lease ({settings.dispatch.lease:g} s) must be longer than providers.{name}.timeout"
                f" ({timeout:g} s)"
            )
    if not settings.verify.sms_providers:
        raise ConfigError("verify.sms_providers must name at least one provider")


def env_name(*parts: str) -> str:
    return "_".join(part.upper().replace("-", "_") for part in parts)


def _overlay(data: dict[str, Any], model: type[BaseModel], prefix: tuple[str, ...], environ: Mapping[str, str]) -> None:
    """Write environment values over ``data`` for every field of ``model``, recursing into sections."""
    for name, field in model.model_fields.items():
        key = field.alias or name
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            section = data.get(key, {})
            if not isinstance(section, dict):
                continue  # not a table: validation refuses it, naming the key
            section = dict(section)
            _overlay(section, annotation, (*prefix, key), environ)
            if section:
                data[key] = section
            continue
        raw = environ.get(env_name(*prefix, key))
        if raw is not None:
            data[key] = _parse(raw, annotation)


def _parse(raw: str, annotation: Any) -> Any:
    """Text settings (names, keys, secrets) stay as written, even when they look like numbers; anything else may be
    given as JSON (lists, tables, numbers, booleans); a list of texts also as ``a,b,c``."""
    if _is_text(annotation):
        return raw
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if get_origin(annotation) is list and _is_text(get_args(annotation)[0]) and not isinstance(value, list):
        return [item.strip() for item in raw.split(",") if item.strip()]
    return value


def _is_text(annotation: Any) -> bool:
    """``str``, ``SecretStr`` or a choice of texts (``Literal``), optional or not, with or without a validator of
    its own (``Annotated``)."""
    if get_origin(annotation) is Annotated:
        return _is_text(get_args(annotation)[0])
    if get_origin(annotation) is Literal:
        return all(isinstance(choice, str) for choice in get_args(annotation))
    if get_origin(annotation) in (Union, UnionType):
        options = [option for option in get_args(annotation) if option is not type(None)]
        return len(options) == 1 and _is_text(options[0])
    return annotation in (str, SecretStr)


def _explain(exc: ValidationError, prefix: str = "") -> str:
    lines = []
    for error in exc.errors(include_url=False):
        where = (prefix + ".".join(str(part) for part in error["loc"])).rstrip(".")
        message = error["msg"].removeprefix("Value error, ")  # the message alone: the input may hold secrets
        lines.append(f"{where}: {message}" if where else message)
    return "invalid configuration: " + "; ".join(lines)
