"""Firebase Cloud Messaging, HTTP v1: notifications to Android apps (and any app registered with FCM).

Each send carries an OAuth 2.0 access token, got from the service account's ``token_uri`` with Google's JWT-bearer
grant (an RS256 assertion signed with the account's key). google-auth does the same, but through a blocking
``requests`` call; the grant is one signed JWT and one form POST, so it is written here on the shared aiohttp client.
The token is kept until a minute before it expires, and fetched once however many sends wait for it.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import Field, SecretStr, field_validator, model_validator

from tidings.core.mobile import FCM_MAX_MESSAGE, fcm_message
from tidings.core.push import MobileCall
from tidings.core.settings import NumbersAreNotTruths, http_url
from tidings.core.types import Delivered, Permanent, SendOutcome, Transient
from tidings.outbound.client import HttpClient, Response, outcome_for_status, retry_after

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600
"""Google takes an assertion that expires at most an hour after it was made."""
EARLY = 60.0
"""Seconds before its expiry an access token is replaced, so that none expires on its way."""

FINAL = {
    "UNREGISTERED": "the app was uninstalled, or its token expired or was replaced",
    "INVALID_ARGUMENT": "FCM says this is not a valid registration token",
    "SENDER_ID_MISMATCH": "the token belongs to another Firebase project than the service account's: check"
    " providers.fcm.service_account",
    "THIRD_PARTY_AUTH_ERROR": "FCM could not reach Apple or the browser's push service with the project's"
    " credentials: check the APNs key or certificate (or the Web Push keys) uploaded to the Firebase project",
    "invalid_grant": "Google refuses the service account's key: it may have been deleted or disabled; download a"
    " new one from the Firebase console",
}
RETRIED = frozenset({"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"})


class FcmSettings(NumbersAreNotTruths):
    """``[providers.fcm]``."""

    base_url: str = "https://fcm.googleapis.com"
    service_account_file: str | None = None
    service_account: SecretStr | None = None
    """The service account's JSON itself, for an environment variable."""
    concurrency: int = Field(1000, ge=1)
    """Sends in flight in all."""

    model_config = {"extra": "forbid"}

    @field_validator("base_url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        return http_url(value).rstrip("/")

    @model_validator(mode="after")
    def _one_account(self) -> FcmSettings:
        if (self.service_account_file is None) == (self.service_account is None):
            raise ValueError("give service_account_file (the JSON file) or service_account (its text), not both")
        ServiceAccount.of(self)  # a file that cannot be read is a start-up error, not every send's failure
        return self


class ServiceAccount:
    """What the grant needs of the service account's JSON."""

    def __init__(self, info: dict[str, Any]) -> None:
        missing = [name for name in ("project_id", "client_email", "private_key", "token_uri") if not info.get(name)]
        if missing:
            raise ValueError(f"the service account JSON lacks {', '.join(missing)}")
        self.project_id: str = info["project_id"]
        self.client_email: str = info["client_email"]
        self.token_uri: str = info["token_uri"]
        self.key_id: str | None = info.get("private_key_id")
        try:
            key = load_pem_private_key(info["private_key"].encode(), password=None)
        except (ValueError, TypeError, AttributeError):
            raise ValueError("the service account's private_key is not a PEM private key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the service account's private_key must be an RSA key")
        self.key = key

    @classmethod
    def of(cls, settings: FcmSettings) -> ServiceAccount:
        if settings.service_account_file is not None:
            try:
                text = Path(settings.service_account_file).read_text("utf-8")
            except OSError as exc:
                raise ValueError(
                    f"cannot read service_account_file {settings.service_account_file!r}: {exc.strerror}"
                ) from None
        else:
            assert settings.service_account is not None
            text = settings.service_account.get_secret_value()
        try:
            info = json.loads(text)
        except ValueError:
            raise ValueError("the service account is not JSON (the file the Firebase console gives)") from None
        if not isinstance(info, dict):
            raise ValueError("the service account is not a JSON object")
        return cls(info)

    def assertion(self, now: float) -> str:
        claims = {"iss": self.client_email, "scope": SCOPE, "aud": self.token_uri, "iat": int(now),
                  "exp": int(now) + ASSERTION_LIFETIME}  # fmt: skip
        headers = {"kid": self.key_id} if self.key_id else None
        return jwt.encode(claims, self.key, algorithm="RS256", headers=headers)


class AccessTokens:
    """The current access token, fetched once for all the sends that wait for it."""

    def __init__(self, account: ServiceAccount, http: HttpClient) -> None:
        self.account = account
        self.http = http
        self._current: tuple[float, str] | None = None
        self._fetching: asyncio.Future[str | Transient | Permanent] | None = None
        self.fetched = 0

    async def get(self) -> str | Transient | Permanent:
        if self._current is not None and time.time() < self._current[0]:
            return self._current[1]
        if self._fetching is None:
            self._fetching = asyncio.ensure_future(self._fetch())
            self._fetching.add_done_callback(self._fetched)
        return await asyncio.shield(self._fetching)

    def _fetched(self, _: object) -> None:
        self._fetching = None

    def expired(self, token: str) -> None:
        """FCM refused ``token``: the next send fetches another (unless one was fetched meanwhile)."""
        if self._current is not None and self._current[1] == token:
            self._current = None

    async def _fetch(self) -> str | Transient | Permanent:
        now = time.time()
        answer = await self.http.request(
            "POST", self.account.token_uri, data={"grant_type": GRANT, "assertion": self.account.assertion(now)}
        )
        if not isinstance(answer, Response):
            return answer
        body = answer.json()
        if not answer.ok or not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            error = body.get("error") if isinstance(body, dict) else None
            if error == "invalid_grant":
                return Permanent("invalid_grant", FINAL["invalid_grant"])
            detail = body.get("error_description", "") if isinstance(body, dict) else answer.text[:200]
            return outcome_for_status(answer, str(error or f"token_http_{answer.status}"), f"token endpoint: {detail}")
        self.fetched += 1
        lifetime = float(body.get("expires_in", 3600))
        self._current = (now + max(0.0, lifetime - EARLY), body["access_token"])
        return body["access_token"]


class Fcm:
    name = "fcm"

    def __init__(self, settings: FcmSettings, http: HttpClient) -> None:
        self.account = ServiceAccount.of(settings)
        self.http = http
        self.url = f"{settings.base_url}/v1/projects/{self.account.project_id}/messages:send"
        self.tokens = AccessTokens(self.account, http)

    async def send(self, call: MobileCall) -> SendOutcome:
        body = json.dumps({"message": fcm_message(call)}, ensure_ascii=False, separators=(",", ":")).encode()
        if len(body) > FCM_MAX_MESSAGE:
            return Permanent("payload_too_large", f"the message is over {FCM_MAX_MESSAGE} bytes")
        for _ in range(2):  # a second time only with a new access token
            token = await self.tokens.get()
            if not isinstance(token, str):
                return token
            answer = await self.http.request(
                "POST",
                self.url,
                data=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=UTF-8"},
            )
            if not isinstance(answer, Response):
                return answer
            if answer.ok:
                name = answer.json()
                return Delivered(name.get("name") if isinstance(name, dict) else None)
            code, message = fcm_error(answer)
            if answer.status != 401 or code != "UNAUTHENTICATED":
                return _outcome(answer, code, message)
            self.tokens.expired(token)
        return Transient("UNAUTHENTICATED", "FCM refused a new access token")

    async def close(self) -> None:
        """The shared HTTP client is closed by its owner."""


def fcm_error(answer: Response) -> tuple[str, str]:
    """The FCM error code (``error.details[].errorCode``, else the canonical ``error.status``) and its message.
    An ``INVALID_ARGUMENT`` that is not about the token is called ``invalid_message``: only a refused token is
    dead (``core.push.DEAD_TOKENS``)."""
    body = answer.json()
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return f"http_{answer.status}", answer.text[:200]
    message = str(error.get("message", ""))[:200]
    details = [detail for detail in error.get("details", []) if isinstance(detail, dict)]
    code = next((d["errorCode"] for d in details if isinstance(d.get("errorCode"), str)), None)
    code = code or str(error.get("status") or f"http_{answer.status}")
    if code == "INVALID_ARGUMENT":
        fields = [
            violation.get("field")
            for detail in details
            for violation in detail.get("fieldViolations", [])
            if isinstance(violation, dict)
        ]
        if "message.token" not in fields and "registration token" not in message.lower():
            return "invalid_message", message
    return code, message


def _outcome(answer: Response, code: str, message: str) -> Transient | Permanent:
    if code in RETRIED or answer.status == 429 or answer.status >= 500:
        return Transient(code, message, retry_after(answer.headers))
    return Permanent(code, FINAL.get(code, message))
