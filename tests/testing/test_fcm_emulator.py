"""The FCM emulator, checked against Google's documented wire format and against google-auth, the library real apps
get their access tokens with."""

from __future__ import annotations

import asyncio
import functools
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import google.auth.transport.requests
import jwt
import pytest
import requests
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.oauth2 import service_account

from tidings.testing.emulator import EMULATOR
from tidings.testing.fcm import (
    BAD_REQUEST,
    FCM,
    FCM_ERROR,
    GOOGLE_TOKEN_URI,
    JWT_BEARER,
    MAX_MESSAGE,
    SCOPE,
    Fcm,
    create_app,
    make_service_account,
)

TOKEN = "dXk3:APA91bH" + "x" * 140
"""A registration token shaped as FCM's."""
SEND = "/v1/projects/tidings-test/messages:send"


@pytest.fixture(scope="module")
def account() -> dict[str, Any]:
    """One key for the module: making an RSA key takes a while."""
    return make_service_account("http://unused.invalid/token")


@functools.cache
def private_key(pem: str) -> rsa.RSAPrivateKey:
    """Loaded once: loading checks the key, which takes 30 ms."""
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@dataclass
class Served:
    app: web.Application
    base: str
    session: aiohttp.ClientSession

    @property
    def fcm(self) -> Fcm:
        return self.app[FCM]

    def assertion(self, key: rsa.RSAPrivateKey | None = None, kid: str | None = None, **claims: Any) -> str:
        """An assertion as a service account signs it; ``claims`` set to None are left out."""
        account = self.fcm.service_account
        now = int(time.time())
        payload = {"iss": account["client_email"], "aud": f"{self.base}/token", "scope": SCOPE, "iat": now}
        payload = {"exp": now + 3600, **payload, **claims}
        signing_key = key or private_key(account["private_key"])
        headers = {"kid": kid or account["private_key_id"]}
        return jwt.encode({k: v for k, v in payload.items() if v is not None}, signing_key, "RS256", headers)

    async def grant(self, assertion: str, grant_type: str = JWT_BEARER) -> tuple[int, Any]:
        form = {"grant_type": grant_type, "assertion": assertion}
        async with self.session.post("/token", data=form) as response:
            return response.status, await response.json()

    async def token(self) -> str:
        status, body = await self.grant(self.assertion())
        assert status == 200, body
        return str(body["access_token"])

    async def send(
        self, body: Any, token: str | None = None, path: str = SEND
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        async with self.session.post(path, data=data, headers=headers) as response:
            return response.status, await response.json(), dict(response.headers)


@pytest.fixture
async def serve(
    run_app: Callable[[web.Application], Awaitable[str]], account: dict[str, Any]
) -> AsyncIterator[Callable[..., Awaitable[Served]]]:
    sessions: list[aiohttp.ClientSession] = []

    async def start(**options: Any) -> Served:
        app = create_app(**{"service_account": account, **options})
        base = await run_app(app)
        sessions.append(aiohttp.ClientSession(base))
        return Served(app, base, sessions[-1])

    yield start
    for session in sessions:
        await session.close()


@pytest.fixture
async def served(serve: Callable[..., Awaitable[Served]]) -> Served:
    return await serve()


def fcm_code(body: dict[str, Any]) -> str | None:
    details = body.get("error", {}).get("details", [])
    return next((detail["errorCode"] for detail in details if detail["@type"] == FCM_ERROR), None)


def field_violation(body: dict[str, Any]) -> dict[str, str]:
    details = body["error"]["details"]
    return next(detail["fieldViolations"][0] for detail in details if detail["@type"] == BAD_REQUEST)


def refresh(info: dict[str, Any]) -> service_account.Credentials:
    """What an app does before it sends: google-auth's own grant, blocking, through requests."""
    credentials = service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
    with requests.Session() as session:
        session.trust_env = False  # no proxy between the test and loopback
        credentials.refresh(google.auth.transport.requests.Request(session))
    return credentials


async def test_google_auth_gets_a_token_that_sends(served: Served) -> None:
    credentials = await asyncio.to_thread(refresh, served.fcm.service_account_for(served.base))
    assert credentials.token.startswith("ya29.")
    assert credentials.expiry is not None
    assert served.fcm.tokens_issued == 1

    status, body, _ = await served.send({"message": {"token": TOKEN, "data": {"a": "1"}}}, credentials.token)
    assert status == 200, body
    assert re.fullmatch(r"projects/tidings-test/messages/0:\d{16}%[0-9a-f]{16}", body["name"])


async def test_a_fresh_service_account_is_made_and_served(serve: Callable[..., Awaitable[Served]]) -> None:
    served = await serve(service_account=None, project_id="other-project")
    async with served.session.get("/_emulator/service-account") as response:
        info = await response.json()
    assert info == served.fcm.service_account_for(served.base)
    assert info["token_uri"] == f"{served.base}/token"
    assert info["project_id"] == "other-project"
    assert set(info) == {
        "type",
        "project_id",
        "private_key_id",
        "private_key",
        "client_email",
        "client_id",
        "auth_uri",
        "token_uri",
        "auth_provider_x509_cert_url",
        "client_x509_cert_url",
        "universe_domain",
    }
    assert info["type"] == "service_account"
    assert info["private_key"].startswith("-----BEGIN PRIVATE KEY-----\n")
    assert info["client_email"].endswith("@other-project.iam.gserviceaccount.com")
    assert re.fullmatch(r"[0-9a-f]{40}", info["private_key_id"])
    assert re.fullmatch(r"\d{21}", info["client_id"])

    credentials = await asyncio.to_thread(refresh, info)
    status, body, _ = await served.send(
        {"message": {"topic": "news"}}, credentials.token, "/v1/projects/other-project/messages:send"
    )
    assert status == 200, body


async def test_a_token_answers_as_google_does(served: Served) -> None:
    status, body = await served.grant(served.assertion())
    assert status == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert set(body) == {"access_token", "expires_in", "token_type"}
    assert served.app[EMULATOR].requests == 0  # only sends wait and fail


@pytest.mark.parametrize("audience", [GOOGLE_TOKEN_URI, "http://unused.invalid/token"])
async def test_google_s_audience_and_the_configured_token_uri_are_accepted(served: Served, audience: str) -> None:
    status, _ = await served.grant(served.assertion(aud=audience))
    assert status == 200


@pytest.mark.parametrize("scope", [SCOPE, f"openid {SCOPE}", "https://www.googleapis.com/auth/cloud-platform"])
async def test_either_scope_for_fcm_is_enough(served: Served, scope: str) -> None:
    status, _ = await served.grant(served.assertion(scope=scope))
    assert status == 200


SIGNATURE = "Invalid JWT Signature."
TIMEFRAME = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
    "Check your iat and exp values in the JWT claim."
)


@pytest.mark.parametrize(
    ("claims", "error", "description"),
    [
        ({"kid": "0" * 40}, "invalid_grant", SIGNATURE),
        ({"iss": "someone@else.iam.gserviceaccount.com"}, "invalid_grant", "Invalid grant: account not found"),
        ({"aud": "https://example.com/token"}, "invalid_grant", "Invalid JWT: Failed audience check."),
        ({"scope": None}, "invalid_scope", "Invalid OAuth scope or ID token audience provided."),
        ({"scope": "https://www.googleapis.com/auth/userinfo.email"}, "invalid_scope", "Invalid OAuth scope"),
        # times as offsets from when the test runs (a whole suite's run can be minutes after its collection)
        ({"iat": -4000, "exp": -400}, "invalid_grant", TIMEFRAME),
        ({"iat": 600, "exp": 1200}, "invalid_grant", TIMEFRAME),
        ({"exp": 3700}, "invalid_grant", TIMEFRAME),
        ({"iat": None}, "invalid_grant", TIMEFRAME),
    ],
)
async def test_an_assertion_google_would_refuse_is_refused(
    served: Served, claims: dict[str, Any], error: str, description: str
) -> None:
    now = int(time.time())
    claims = {name: now + value if name in ("iat", "exp") and value else value for name, value in claims.items()}
    status, body = await served.grant(served.assertion(**claims))
    assert status == 400
    assert body["error"] == error
    assert body["error_description"].startswith(description)
    assert served.fcm.tokens_issued == 0


async def test_an_assertion_signed_by_another_key_is_refused(served: Served) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    status, body = await served.grant(served.assertion(key=other))
    assert (status, body) == (400, {"error": "invalid_grant", "error_description": SIGNATURE})
    status, body = await served.grant("not.a.jwt")
    assert (status, body["error_description"]) == (400, SIGNATURE)


async def test_other_grants_and_a_missing_assertion_are_refused(served: Served) -> None:
    status, body = await served.grant(served.assertion(), grant_type="client_credentials")
    assert (status, body["error"]) == (400, "unsupported_grant_type")
    status, body = await served.grant("")
    assert (status, body["error"]) == (400, "invalid_request")


UNAUTHENTICATED = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid "
    "authentication credential."
)


async def test_a_send_without_a_valid_access_token_is_unauthenticated(serve: Callable[..., Awaitable[Served]]) -> None:
    served = await serve(token_ttl=0)
    expired = await served.token()
    for token in (None, "ya29.never-issued", expired):
        status, body, headers = await served.send({"message": {"token": TOKEN}}, token)
        assert status == 401
        assert body == {"error": {"code": 401, "message": UNAUTHENTICATED, "status": "UNAUTHENTICATED"}}
        assert headers["WWW-Authenticate"].startswith("Bearer")


async def test_another_project_is_a_sender_id_mismatch(served: Served) -> None:
    path = "/v1/projects/someone-else/messages:send"
    status, body, _ = await served.send({"message": {"token": TOKEN}}, await served.token(), path)
    assert (status, body["error"]["status"], fcm_code(body)) == (403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH")
    assert body["error"]["message"] == "SenderId mismatch"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "message"),
        ([], "message"),
        ({}, "message"),
        ({"message": "hello"}, "message"),
        ({"message": {"token": TOKEN}, "dry_run": True}, "dry_run"),
        ({"message": {"token": TOKEN}, "validate_only": "yes"}, "validate_only"),
        ({"message": {}}, "message"),
        ({"message": {"token": TOKEN, "topic": "news"}}, "message"),
        ({"message": {"token": TOKEN, "to": TOKEN}}, "message.to"),
        ({"message": {"token": TOKEN, "data": {"count": 1}}}, "message.data[count]"),
        ({"message": {"token": TOKEN, "data": ["a"]}}, "message.data"),
        ({"message": {"token": TOKEN, "notification": {"title": 1}}}, "message.notification.title"),
        ({"message": {"token": TOKEN, "notification": {"sound": "default"}}}, "message.notification.sound"),
        ({"message": {"token": TOKEN, "android": {"priority": "URGENT"}}}, "message.android.priority"),
        ({"message": {"token": TOKEN, "android": {"ttl": "60"}}}, "message.android.ttl"),
        ({"message": {"token": TOKEN, "android": {"ttl": "1.0123456789s"}}}, "message.android.ttl"),
        ({"message": {"token": TOKEN, "android": {"collapse_key": 7}}}, "message.android.collapse_key"),
        (
            {"message": {"token": TOKEN, "android": {"notification": {"sound": True}}}},
            "message.android.notification.sound",
        ),
        ({"message": {"token": TOKEN, "android": {"data": {"a": None}}}}, "message.android.data[a]"),
        ({"message": {"token": TOKEN, "android": {"delay": "1s"}}}, "message.android.delay"),
        ({"message": {"token": TOKEN, "apns": {"payload": []}}}, "message.apns.payload"),
        ({"message": {"topic": "/topics/news"}}, "message.topic"),
    ],
)
async def test_an_invalid_request_names_the_field(served: Served, body: Any, field: str) -> None:
    status, answer, _ = await served.send(body, await served.token())
    assert (status, answer["error"]["status"], fcm_code(answer)) == (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT")
    violation = field_violation(answer)
    assert violation["field"] == field
    assert answer["error"]["message"] == violation["description"]
    assert served.fcm.messages == []


@pytest.mark.parametrize("token", ["", "x" * 4097, "abc def", "abc/def", "jeton-été"])
async def test_a_malformed_registration_token_is_refused(served: Served, token: str) -> None:
    status, body, _ = await served.send({"message": {"token": token}}, await served.token())
    assert (status, fcm_code(body)) == (400, "INVALID_ARGUMENT")
    assert body["error"]["message"] == "The registration token is not a valid FCM registration token"
    assert field_violation(body) == {"field": "message.token", "description": "Invalid registration token"}


async def test_a_dead_token_is_unregistered(serve: Callable[..., Awaitable[Served]]) -> None:
    served = await serve(dead=["dead-from-the-start"])
    access = await served.token()
    served.fcm.kill("killed-in-the-test")
    async with served.session.post("/_emulator/dead", json=["killed-from-outside"]) as response:
        assert response.status == 200
    async with served.session.post("/_emulator/dead", data=b"killed") as response:
        assert response.status == 400
    for token in ("dead-from-the-start", "killed-in-the-test", "killed-from-outside"):
        status, body, _ = await served.send({"message": {"token": token}}, access)
        assert (status, body["error"]["status"], fcm_code(body)) == (404, "NOT_FOUND", "UNREGISTERED")
        assert body["error"]["message"] == "Requested entity was not found."
    status, _, _ = await served.send({"message": {"token": "still-alive"}}, access)
    assert status == 200


async def test_a_third_party_auth_error_can_be_provoked(served: Served) -> None:
    status, body, _ = await served.send({"message": {"token": "apns-auth-error:abc"}}, await served.token())
    assert (status, body["error"]["status"], fcm_code(body)) == (401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR")


async def test_a_message_over_4_kb_is_too_big(served: Served) -> None:
    access = await served.token()
    message: dict[str, Any] = {"token": TOKEN, "data": {"blob": "x" * MAX_MESSAGE}}
    status, body, _ = await served.send({"message": message}, access)
    assert (status, body["error"]["message"], fcm_code(body)) == (400, "Message is too big", "INVALID_ARGUMENT")
    message["data"]["blob"] = ""
    message["data"]["blob"] = "x" * (MAX_MESSAGE - len(json.dumps(message, separators=(",", ":"))))
    status, body, _ = await served.send({"message": message}, access)
    assert status == 200, body


async def test_injected_failures_alternate_quota_and_unavailable(serve: Callable[..., Awaitable[Served]]) -> None:
    served = await serve(fail_first=3, retry_after=7)
    access = await served.token()
    answers = [await served.send({"message": {"token": TOKEN}}, access) for _ in range(4)]
    assert [(status, fcm_code(body)) for status, body, _ in answers] == [
        (429, "QUOTA_EXCEEDED"),
        (503, "UNAVAILABLE"),
        (429, "QUOTA_EXCEEDED"),
        (200, None),
    ]
    assert answers[0][1]["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert answers[0][2]["Retry-After"] == "7"
    assert answers[1][1]["error"]["status"] == "UNAVAILABLE"
    assert served.app[EMULATOR].requests == 4


async def test_an_outage_is_unavailable(served: Served) -> None:
    access = await served.token()
    served.app[EMULATOR].outage(60)
    for _ in range(2):
        status, body, headers = await served.send({"message": {"token": TOKEN}}, access)
        assert (status, body["error"]["status"], fcm_code(body)) == (503, "UNAVAILABLE", "UNAVAILABLE")
        assert "Retry-After" not in headers


async def test_an_accepted_message_is_recorded(served: Served) -> None:
    access = await served.token()
    message = {
        "token": TOKEN,
        "notification": {"title": "Hi", "body": "Your code is 123456"},
        "data": {"kind": "otp"},
        "android": {
            "priority": "HIGH",
            "ttl": "3.5s",
            "collapseKey": "otp",
            "notification": {"sound": "default", "channelId": "codes"},
        },
        "apns": {"headers": {"apns-priority": "10"}, "payload": {"aps": {"sound": "default"}}},
        "webpush": {"notification": {"icon": "/i.png"}, "fcm_options": {"link": "https://example.com"}},
        "fcmOptions": {"analyticsLabel": "otp"},
    }
    status, body, _ = await served.send({"message": message, "validate_only": False}, access)
    assert status == 200, body
    assert served.fcm.messages == [message]
    [received] = served.app[EMULATOR].received
    assert received.to == TOKEN
    assert json.loads(received.text) == message
    assert body["name"] == f"projects/tidings-test/messages/{received.id}"

    status, _, _ = await served.send({"message": {"topic": "news", "data": {"a": "b"}, "android": None}}, access)
    assert status == 200
    assert served.app[EMULATOR].received[-1].to == "/topics/news"


@pytest.mark.parametrize("flag", ["validate_only", "validateOnly"])
async def test_validate_only_checks_and_records_nothing(served: Served, flag: str) -> None:
    access = await served.token()
    status, body, _ = await served.send({"message": {"token": TOKEN}, flag: True}, access)
    assert (status, body) == (200, {"name": "projects/tidings-test/messages/fake_message_id"})
    status, _, _ = await served.send({"message": {"token": "bad token"}, flag: True}, access)
    assert status == 400
    assert served.fcm.messages == []
    assert served.app[EMULATOR].received == []
