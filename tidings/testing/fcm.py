"""A Firebase Cloud Messaging emulator: Google's OAuth 2.0 token endpoint (``POST /token``, the JWT-bearer grant a
service account signs) and FCM's HTTP v1 ``POST /v1/projects/{project_id}/messages:send``, checked and answered as
Google documents them, so the credentials code real apps run (google-auth's service-account grant) works against it.

The emulator trusts one service account; ``app[FCM].service_account_for(base_url)`` gives its JSON with ``token_uri``
pointing here, and from another process ``GET /_emulator/service-account`` does the same. Errors come as Google's
``{"error": {"code", "message", "status", "details"}}`` with an ``FcmError`` detail naming FCM's error code.
``app[FCM].kill(token)`` (or ``POST /_emulator/dead`` with a JSON list) makes a registration token answer 404
``UNREGISTERED``, as after the app was uninstalled; a token starting with ``apns-auth-error:`` answers 401
``THIRD_PARTY_AUTH_ERROR``, as when the project's APNs or Web Push credentials are refused. Injected failures answer
429 ``QUOTA_EXCEEDED`` (with ``Retry-After``) and 503 ``UNAVAILABLE`` in turn; an outage answers 503. What a
``message`` may hold is checked by ``tidings.testing.fcm_messages``.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tidings.testing.emulator import Emulator, application
from tidings.testing.fcm_messages import REQUEST, recipient, violation

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
SCOPES = frozenset({SCOPE, "https://www.googleapis.com/auth/cloud-platform"})
"""Either scope lets a token send with FCM, as at Google."""
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
"""google-auth signs every assertion for this audience whatever the ``token_uri`` it posts to, so it is accepted
besides the emulator's own ``/token``."""
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOCK_SKEW = 300
MAX_ASSERTION_LIFETIME = 3600
MAX_MESSAGE = 4096
"""FCM's limit for a notification message, in bytes of its JSON."""
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
THIRD_PARTY_AUTH_ERROR = "apns-auth-error:"
"""Registration tokens starting with this answer 401 THIRD_PARTY_AUTH_ERROR."""


def make_service_account(token_uri: str, project_id: str = "tidings-test") -> dict[str, Any]:
    """A fresh service account's JSON key file, shaped as the one Firebase's console downloads."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    client_email = f"firebase-adminsdk-{secrets.token_hex(3)[:5]}@{project_id}.iam.gserviceaccount.com"
    return {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": client_email,
        "client_id": str(secrets.randbelow(9 * 10**20) + 10**20),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{quote(client_email)}",
        "universe_domain": "googleapis.com",
    }


class Fcm:
    """What the FCM emulator holds besides the shared ``Emulator``; read it in a test as ``app[FCM]``."""

    def __init__(self, service_account: dict[str, Any], project_id: str, token_ttl: int, dead: Iterable[str]) -> None:
        key = serialization.load_pem_private_key(  # the emulator's own key: checking it would cost 30 ms an app
            service_account["private_key"].encode(), password=None, unsafe_skip_rsa_key_validation=True
        )
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the service account's private_key must be an RSA key")
        self.service_account = service_account
        self.public_key = key.public_key()
        self.client_email: str = service_account["client_email"]
        self.key_id: str | None = service_account.get("private_key_id")
        self.project_id = project_id
        self.token_ttl = token_ttl
        self.access_tokens: dict[str, float] = {}
        """Every access token issued, with the ``time.monotonic()`` it expires at."""
        self.tokens_issued = 0
        self.dead: set[str] = set(dead)
        self.messages: list[dict[str, Any]] = []
        """Every ``message`` object accepted, as sent."""
        self.failures = itertools.count()
        """Counts injected failures, to alternate between 429 and 503."""

    def service_account_for(self, base_url: str) -> dict[str, Any]:
        """The trusted service account's JSON, its ``token_uri`` pointing at the emulator served at ``base_url``."""
        return {**self.service_account, "token_uri": f"{base_url.rstrip('/')}/token"}

    def kill(self, token: str) -> None:
        """From now on ``token`` answers 404 UNREGISTERED, as after the app was uninstalled."""
        self.dead.add(token)

    def issue(self) -> str:
        token = f"ya29.{secrets.token_urlsafe(96)}"
        self.access_tokens[token] = time.monotonic() + self.token_ttl
        self.tokens_issued += 1
        return token

    def authorized(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        return scheme.lower() == "bearer" and self.access_tokens.get(token.strip(), 0.0) > time.monotonic()

    def grant_problem(self, assertion: str, token_url: str) -> tuple[str, str] | None:
        """Why the token endpoint at ``token_url`` would refuse this assertion, as Google's
        ``(error, error_description)``, or None."""
        try:
            kid = jwt.get_unverified_header(assertion).get("kid")
            claims = jwt.decode(
                assertion,
                self.public_key,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False},
            )
        except jwt.InvalidTokenError:
            return "invalid_grant", "Invalid JWT Signature."
        if kid is not None and kid != self.key_id:
            return "invalid_grant", "Invalid JWT Signature."
        if claims.get("iss") != self.client_email:
            return "invalid_grant", "Invalid grant: account not found"
        if claims.get("aud") not in {token_url, self.service_account["token_uri"], GOOGLE_TOKEN_URI}:
            return "invalid_grant", f"Invalid JWT: Failed audience check. The right audience is {token_url}"
        iat, exp, now = claims.get("iat"), claims.get("exp"), time.time()
        if not (
            isinstance(iat, int | float)
            and isinstance(exp, int | float)
            and iat <= now + CLOCK_SKEW
            and now < exp
            and exp - iat <= MAX_ASSERTION_LIFETIME
        ):
            return "invalid_grant", (
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
                "Check your iat and exp values in the JWT claim."
            )
        scope = claims.get("scope")
        if not isinstance(scope, str) or not SCOPES.intersection(scope.split()):
            return "invalid_scope", "Invalid OAuth scope or ID token audience provided."
        return None


FCM = web.AppKey("fcm", Fcm)


def oauth_error(error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=400)


def google_error(
    status: int, canonical: str, message: str, *details: dict[str, Any], headers: dict[str, str] | None = None
) -> web.Response:
    error: dict[str, Any] = {"code": status, "message": message, "status": canonical}
    if details:
        error["details"] = list(details)
    return web.json_response({"error": error}, status=status, headers=headers)


def fcm_error(code: str) -> dict[str, Any]:
    return {"@type": FCM_ERROR, "errorCode": code}


def invalid_argument(field: str, description: str, message: str | None = None) -> web.Response:
    violations = {"@type": BAD_REQUEST, "fieldViolations": [{"field": field, "description": description}]}
    return google_error(400, "INVALID_ARGUMENT", message or description, fcm_error("INVALID_ARGUMENT"), violations)


def create_app(
    service_account: dict[str, Any] | None = None,
    project_id: str = "tidings-test",
    token_ttl: int = 3600,
    dead: Iterable[str] = (),
    retry_after: int = 1,
    **options: Any,
) -> web.Application:
    """An FCM emulator for ``project_id`` trusting ``service_account`` (a fresh one when None, see
    ``Fcm.service_account_for``). ``token_ttl``: seconds an access token lasts; ``dead``: registration tokens that
    answer UNREGISTERED; ``retry_after``: seconds in the ``Retry-After`` of injected 429s; ``options`` go to
    ``Emulator`` (latency, failure_rate, fail_first, seed)."""
    emulator = Emulator(**options)
    fcm = Fcm(service_account or make_service_account(GOOGLE_TOKEN_URI, project_id), project_id, token_ttl, dead)
    app = application(emulator)
    app[FCM] = fcm

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        grant_type, assertion = str(form.get("grant_type", "")), str(form.get("assertion", ""))
        if grant_type != JWT_BEARER:
            return oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        if not assertion:
            return oauth_error("invalid_request", "Missing required parameter: assertion")
        problem = fcm.grant_problem(assertion, f"{request.url.origin()}/token")
        if problem:
            return oauth_error(*problem)
        return web.json_response({"access_token": fcm.issue(), "expires_in": fcm.token_ttl, "token_type": "Bearer"})

    async def send(request: web.Request) -> web.Response:
        raw = await request.read()
        down = time.monotonic() < emulator.down_until
        failing = await emulator.arrive()
        if not fcm.authorized(request.headers.get("Authorization", "")):
            return google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
                "other valid authentication credential.",
                headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )
        if request.match_info["project_id"] != fcm.project_id:
            return google_error(403, "PERMISSION_DENIED", "SenderId mismatch", fcm_error("SENDER_ID_MISMATCH"))
        try:
            body = json.loads(raw)
        except ValueError:
            return invalid_argument("message", "Invalid JSON payload received. Unexpected token.")
        if not isinstance(body, dict):
            return invalid_argument("message", "Invalid JSON payload received. Expected an object.")
        problem = violation(body, REQUEST, "")
        if problem:
            return invalid_argument(*problem)
        message = body.get("message")
        if message is None:
            return invalid_argument("message", "Message is not set.")
        to = recipient(message)
        if isinstance(to, tuple):
            not_a_token = to[0] == "message.token"
            return invalid_argument(
                *to, "The registration token is not a valid FCM registration token" if not_a_token else None
            )
        if to.startswith(THIRD_PARTY_AUTH_ERROR):
            return google_error(
                401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service", fcm_error("THIRD_PARTY_AUTH_ERROR")
            )
        if to in fcm.dead:
            return google_error(404, "NOT_FOUND", "Requested entity was not found.", fcm_error("UNREGISTERED"))
        text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        if len(text.encode()) > MAX_MESSAGE:
            return google_error(400, "INVALID_ARGUMENT", "Message is too big", fcm_error("INVALID_ARGUMENT"))
        if failing:
            if not down and next(fcm.failures) % 2 == 0:
                return google_error(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "Quota exceeded for sending messages.",
                    fcm_error("QUOTA_EXCEEDED"),
                    headers={"Retry-After": str(retry_after)},
                )
            return google_error(503, "UNAVAILABLE", "The service is currently unavailable.", fcm_error("UNAVAILABLE"))
        if body.get("validate_only", body.get("validateOnly")):
            return web.json_response({"name": f"projects/{fcm.project_id}/messages/fake_message_id"})
        message_id = f"0:{time.time_ns() // 1000}%{secrets.token_hex(8)}"
        fcm.messages.append(message)
        emulator.accept(to, text, message_id)
        return web.json_response({"name": f"projects/{fcm.project_id}/messages/{message_id}"})

    async def kill(request: web.Request) -> web.Response:
        try:
            tokens = json.loads(await request.read())
        except ValueError:
            tokens = None
        if not isinstance(tokens, list) or not all(isinstance(item, str) for item in tokens):
            return web.json_response({"error": "a JSON list of registration tokens is expected"}, status=400)
        for item in tokens:
            fcm.kill(item)
        return web.json_response({"ok": True, "dead": len(fcm.dead)})

    async def credentials(request: web.Request) -> web.Response:
        """The trusted service account with its private key: anyone who can reach the emulator can send with it,
        which is fine for an emulator and never for anything else."""
        return web.json_response(fcm.service_account_for(str(request.url.origin())))

    app.router.add_post("/token", token)
    app.router.add_post("/v1/projects/{project_id}/messages:send", send)
    app.router.add_post("/_emulator/dead", kill)
    app.router.add_get("/_emulator/service-account", credentials)
    return app
