"""An Apple Push Notification service emulator: ``POST /3/device/{token}`` with the checks and answers Apple
documents for its provider API (token-based authentication, the ``apns-*`` headers, a JSON ``{"reason": ...}`` on
refusal, ``apns-id`` on every answer), for tests and benchmarks.

APNs speaks only HTTP/2, and aiohttp, which serves the other emulators, does not; so this one is an
``asyncio.Protocol`` on ``h2``, after h2's asyncio server example, over plain TCP with prior knowledge (h2c: no TLS,
no Upgrade) so that ``httpx.AsyncClient(http1=False, http2=True)`` or ``curl --http2-prior-knowledge`` reach it.
Each request runs in its own task, so one slow answer holds no other stream, and ``SETTINGS_MAX_CONCURRENT_STREAMS``
is 1000. The same server answers the control routes of the other emulators (``/_emulator/received``, ``reset``,
``outage``) and ``POST /_emulator/dead`` with a JSON list of device tokens to unregister.

Injected failures answer 429 TooManyRequests; during an outage every request is answered 503 ServiceUnavailable.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes, Settings

from tidings.testing.emulator import Emulator

MAX_CONCURRENT_STREAMS = 1000
MAX_PAYLOAD = 4096
MAX_VOIP_PAYLOAD = 5120
"""Apple allows VoIP notifications 5 KB, every other kind 4 KB."""
MAX_COLLAPSE_ID = 64
TOPIC_SUFFIXES = {
    "alert": "",
    "background": "",
    "mdm": "",
    "location": ".location-query",
    "voip": ".voip",
    "complication": ".complication",
    "fileprovider": ".pushkit.fileprovider",
    "liveactivity": ".push-type.liveactivity",
    "pushtotalk": ".voip-ptt",
}
"""The push types Apple accepts, each with what it requires after the bundle id in ``apns-topic``."""
PRIORITIES = frozenset({"10", "5", "1"})
SANDBOX = frozenset({"sandbox", "development"})
"""Names of the development server, the only one that answers ``apns-unique-id``."""
DEVICE_PATH = "/3/device/"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DEVICE_TOKEN = re.compile(r"(?:[0-9a-fA-F]{2}){16,100}")
_INTEGER = re.compile(r"[0-9]+")
KeyLike = ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey | bytes | str
"""A signing key's public half, its private half, or the PEM of either."""
_LENIENT = ("utf-8", "surrogateescape")
"""Header bytes that are not UTF-8 survive decoding, and come back as they were on encoding."""
_BODY_LIMIT = MAX_VOIP_PAYLOAD + 1
"""Bytes of a request body kept: enough to tell that it is too large."""


@dataclass(frozen=True, slots=True)
class Notification:
    """One accepted notification, as Apple got it."""

    token: str
    headers: dict[str, str]
    """The ``apns-*`` headers of the request."""
    payload: dict[str, Any]
    at: float


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


def json_answer(status: int, body: Any, *headers: tuple[str, str]) -> Answer:
    text = json.dumps(body, separators=(",", ":")).encode()
    return Answer(status, [*headers, ("content-type", "application/json"), ("content-length", str(len(text)))], text)


def load_public_key(key: KeyLike) -> ec.EllipticCurvePublicKey:
    """The P-256 public key that provider tokens must verify against, from a key or the PEM of either half (Apple
    hands out the private half as ``AuthKey_<key id>.p8``)."""
    if isinstance(key, str):
        key = key.encode()
    if isinstance(key, bytes):
        key = cast(
            ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey,
            load_pem_private_key(key, None) if b"PRIVATE KEY" in key else load_pem_public_key(key),
        )
    if isinstance(key, ec.EllipticCurvePrivateKey):
        key = key.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("APNs signing keys are P-256 EC keys")
    return key


class Apns(Emulator):
    """One APNs server accepting one team's key for one app; ``received``, ``latency``, ``outage`` and the rest are
    the ``Emulator``'s."""

    def __init__(
        self,
        *,
        team_id: str,
        key_id: str,
        public_key: KeyLike,
        topic: str,
        environment: str = "production",
        max_token_age: float = 3600.0,
        min_token_interval: float = 1200.0,
        dead: Iterable[str] = (),
        latency: float = 0.0,
        failure_rate: float = 0.0,
        fail_first: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(latency=latency, failure_rate=failure_rate, fail_first=fail_first, seed=seed)
        if environment not in SANDBOX | {"production"}:
            raise ValueError(f"environment is production or sandbox, not {environment!r}")
        self.team_id, self.key_id, self.topic, self.environment = team_id, key_id, topic, environment
        self.key = load_public_key(public_key)
        self.max_token_age = max_token_age
        """Apple refuses a provider token whose ``iat`` is older than an hour."""
        self.min_token_interval = min_token_interval
        """Apple refuses a new provider token sooner than 20 minutes after the previous new one."""
        self.notifications: list[Notification] = []
        self.dead: dict[str, int] = {}
        """Unregistered device tokens, each with when it was, in milliseconds since the epoch."""
        for token in dead:
            self.kill(token)
        self._verdicts: dict[str, float | None] = {}
        """Each provider token seen: its ``iat`` when it verifies, None when not; a signature is checked once."""
        self._tokens: set[str] = set()
        self._last_new_token = float("-inf")
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._base_url = ""

    @property
    def base_url(self) -> str:
        if not self._base_url:
            raise RuntimeError("the emulator is not started")
        return self._base_url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0: any free port) and answer ``http://host:port``."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port, backlog=8192)
        port = self._server.sockets[0].getsockname()[1]
        self._base_url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        return self._base_url

    async def close(self) -> None:
        """Stop listening, say GOAWAY to every client, and wait for the requests in hand to be cancelled."""
        if self._server is None:
            return
        self._server.close()
        tasks = [task for connection in self._connections for task in connection.tasks.values()]
        for connection in list(self._connections):
            connection.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    def kill(self, token: str) -> None:
        """From now on the device token answers 410 Unregistered, as after the app was removed."""
        self.dead.setdefault(token, int(time.time() * 1000))

    def reset(self) -> None:
        """Forget what was accepted and the provider tokens seen, so a new run may start with a new token."""
        super().reset()
        self.notifications.clear()
        self._verdicts.clear()
        self._tokens.clear()
        self._last_new_token = float("-inf")

    async def answer(self, headers: dict[str, str], body: bytes) -> Answer:
        path = headers.get(":path", "")
        if path.startswith("/_emulator/"):
            return self._control(headers.get(":method", ""), path, body)
        return await self._notify(headers, path, body)

    async def _notify(self, headers: dict[str, str], path: str, body: bytes) -> Answer:
        apns_id = headers.get("apns-id", "")
        echo = apns_id if _UUID.fullmatch(apns_id) else str(uuid.uuid4())

        def refuse(status: int, reason: str, **extra: Any) -> Answer:
            return json_answer(status, {"reason": reason, **extra}, ("apns-id", echo))

        down = time.monotonic() < self.down_until
        failing = await self.arrive()
        if down:
            return refuse(503, "ServiceUnavailable")
        if not path.startswith(DEVICE_PATH) or "/" in path[len(DEVICE_PATH) :]:
            return refuse(404, "BadPath")
        if headers.get(":method") != "POST":
            return refuse(405, "MethodNotAllowed")
        token = path[len(DEVICE_PATH) :]
        problem = self._provider_problem(headers.get("authorization", ""))
        if problem is not None:
            return refuse(*problem)
        topic, push_type = headers.get("apns-topic"), headers.get("apns-push-type")
        if not topic:
            return refuse(400, "MissingTopic")
        if push_type is not None and push_type not in TOPIC_SUFFIXES:
            return refuse(400, "InvalidPushType")
        suffixes = TOPIC_SUFFIXES.values() if push_type is None else (TOPIC_SUFFIXES[push_type],)
        if not topic.startswith(self.topic) or topic[len(self.topic) :] not in suffixes:
            return refuse(400, "BadTopic")
        priority = headers.get("apns-priority")
        if priority is not None and (priority not in PRIORITIES or (priority == "10" and push_type == "background")):
            return refuse(400, "BadPriority")
        if not _INTEGER.fullmatch(headers.get("apns-expiration", "0")):
            return refuse(400, "BadExpirationDate")
        if len(headers.get("apns-collapse-id", "").encode(*_LENIENT)) > MAX_COLLAPSE_ID:
            return refuse(400, "BadCollapseId")
        if apns_id and apns_id != echo:
            return refuse(400, "BadMessageId")
        if not token:
            return refuse(400, "MissingDeviceToken")
        if not _DEVICE_TOKEN.fullmatch(token):
            return refuse(400, "BadDeviceToken")
        if token in self.dead:
            return refuse(410, "Unregistered", timestamp=self.dead[token])
        if not body:
            return refuse(400, "PayloadEmpty")
        if len(body) > (MAX_VOIP_PAYLOAD if push_type == "voip" else MAX_PAYLOAD):
            return refuse(413, "PayloadTooLarge")
        try:
            text = body.decode()
            payload = json.loads(text)
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("aps"), dict):
            return refuse(400, "PayloadEmpty")  # the nearest reason Apple documents for a payload without aps
        if failing:
            return refuse(429, "TooManyRequests")
        self.accept(token, text, echo)
        apns = {name: value for name, value in headers.items() if name.startswith("apns-")}
        self.notifications.append(Notification(token, apns, payload, time.time()))
        answer = [("apns-id", echo)]
        if self.environment in SANDBOX:
            answer.append(("apns-unique-id", str(uuid.uuid4())))
        return Answer(200, answer)

    def _provider_problem(self, authorization: str) -> tuple[int, str] | None:
        """Why Apple would refuse this ``authorization`` header, as (status, reason), or None."""
        if not authorization:
            return 403, "MissingProviderToken"
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return 403, "InvalidProviderToken"
        token = token.strip()
        if not token:
            return 403, "MissingProviderToken"
        if token not in self._verdicts:
            self._verdicts[token] = self._issued_at(token)
        issued_at = self._verdicts[token]
        if issued_at is None:
            return 403, "InvalidProviderToken"
        if time.time() - issued_at > self.max_token_age:
            return 403, "ExpiredProviderToken"
        if token not in self._tokens:
            now = time.monotonic()
            if now - self._last_new_token < self.min_token_interval:
                return 429, "TooManyProviderTokenUpdates"
            self._tokens.add(token)
            self._last_new_token = now
        return None

    def _issued_at(self, token: str) -> float | None:
        """The ``iat`` of a provider token signed with ES256 by our key for our team, else None."""
        try:
            # Only the signature, so that the verdict holds for good; the age of iat is checked on every request.
            options: jwt.types.Options = {"verify_exp": False, "verify_nbf": False, "verify_iat": False}
            decoded = jwt.decode_complete(token, self.key, algorithms=["ES256"], options=options)
        except jwt.PyJWTError:
            return None
        issued_at = decoded["payload"].get("iat")
        if (
            decoded["header"].get("kid") != self.key_id
            or decoded["payload"].get("iss") != self.team_id
            or not isinstance(issued_at, int | float)
            or isinstance(issued_at, bool)
        ):
            return None
        return float(issued_at)

    def _control(self, method: str, path: str, body: bytes) -> Answer:
        url = urlsplit(path)
        route = (method, url.path)
        if route == ("GET", "/_emulator/received"):
            return json_answer(200, [asdict(message) for message in self.received])
        if route == ("POST", "/_emulator/reset"):
            self.reset()
            return json_answer(200, {"ok": True})
        if route == ("POST", "/_emulator/outage"):
            try:
                seconds = float(parse_qs(url.query)["seconds"][0])
            except (KeyError, ValueError):
                return json_answer(400, {"error": "?seconds=<number> says how long"})
            self.outage(seconds)
            return json_answer(200, {"ok": True, "seconds": seconds})
        if route == ("POST", "/_emulator/dead"):
            try:
                tokens = json.loads(body)
            except ValueError:
                tokens = None
            if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
                return json_answer(400, {"error": "the body is a JSON list of device tokens"})
            for token in tokens:
                self.kill(token)
            return json_answer(200, {"ok": True, "dead": len(self.dead)})
        return json_answer(404, {"error": f"no route {method} {url.path}"})


@dataclass
class _Request:
    headers: dict[str, str]
    body: bytearray = field(default_factory=bytearray)


class _Connection(asyncio.Protocol):
    """One client's HTTP/2 connection: frames in, a task per complete request, frames out within the client's
    flow-control windows."""

    def __init__(self, apns: Apns) -> None:
        self.apns = apns
        self.h2 = H2Connection(H2Configuration(client_side=False))
        # Replaced before initiate_connection, the limit holds from the first stream rather than from the client's ACK.
        self.h2.local_settings = Settings(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: MAX_CONCURRENT_STREAMS,
                SettingCodes.MAX_HEADER_LIST_SIZE: H2Connection.DEFAULT_MAX_HEADER_LIST_SIZE,
            },
        )
        self.transport: asyncio.Transport | None = None
        self.requests: dict[int, _Request] = {}
        """Streams whose request is still arriving."""
        self.tasks: dict[int, asyncio.Task[None]] = {}
        """Streams being answered."""
        self.windows: dict[int, asyncio.Future[None]] = {}
        """Streams waiting for the client to open its flow-control window."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.apns._connections.add(self)
        self.h2.initiate_connection()
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.apns._connections.discard(self)
        for task in self.tasks.values():
            task.cancel()
        self.requests.clear()

    def close(self) -> None:
        self.h2.close_connection()
        self.flush()
        for task in self.tasks.values():
            task.cancel()
        if self.transport is not None:
            self.transport.close()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except ProtocolError:
            self.flush()
            if self.transport is not None:
                self.transport.close()
            return
        for event in events:
            if isinstance(event, RequestReceived):
                # Decoded here rather than by h2, which fails the whole connection on a header that is not UTF-8.
                headers = cast(list[tuple[bytes, bytes]], event.headers)
                self.requests[event.stream_id] = _Request(
                    {name.decode(*_LENIENT): value.decode(*_LENIENT) for name, value in headers}
                )
            elif isinstance(event, DataReceived):
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                request = self.requests.get(event.stream_id)
                if request is not None and len(request.body) < _BODY_LIMIT:
                    request.body += event.data[: _BODY_LIMIT - len(request.body)]
            elif isinstance(event, StreamEnded):
                request = self.requests.pop(event.stream_id, None)
                if request is not None:
                    self.respond(event.stream_id, request)
            elif isinstance(event, StreamReset):
                self.requests.pop(event.stream_id, None)
                task = self.tasks.get(event.stream_id)
                if task is not None:
                    task.cancel()
            elif isinstance(event, WindowUpdated):
                self.window_opened(event.stream_id)
            elif isinstance(event, RemoteSettingsChanged):
                if SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
                    self.window_opened(0)
            elif isinstance(event, ConnectionTerminated) and self.transport is not None:
                self.transport.close()
        self.flush()

    def respond(self, stream_id: int, request: _Request) -> None:
        task = asyncio.get_running_loop().create_task(self.answer(stream_id, request))
        self.tasks[stream_id] = task
        task.add_done_callback(lambda _: self.tasks.pop(stream_id, None))

    async def answer(self, stream_id: int, request: _Request) -> None:
        answer = await self.apns.answer(request.headers, bytes(request.body))
        try:
            self.h2.send_headers(
                stream_id, [(":status", str(answer.status)), *answer.headers], end_stream=not answer.body
            )
            self.flush()
            await self.send_body(stream_id, answer.body)
        except ProtocolError:  # StreamClosedError among them
            pass  # the client reset the stream or said GOAWAY meanwhile

    async def send_body(self, stream_id: int, body: bytes) -> None:
        sent = 0
        while sent < len(body):
            window = self.h2.local_flow_control_window(stream_id)
            if window < 1:
                self.windows[stream_id] = asyncio.get_running_loop().create_future()
                try:
                    await self.windows[stream_id]
                finally:
                    del self.windows[stream_id]
                continue
            size = min(window, len(body) - sent, self.h2.max_outbound_frame_size)
            self.h2.send_data(stream_id, body[sent : sent + size], end_stream=sent + size == len(body))
            sent += size
            self.flush()

    def window_opened(self, stream_id: int) -> None:
        """Wake the stream waiting for this window, or all of them when it is the connection's."""
        for waiting, future in self.windows.items():
            if stream_id in (0, waiting) and not future.done():
                future.set_result(None)


async def serve_forever(host: str = "127.0.0.1", port: int = 9010, **options: Any) -> None:
    """Run one ``Apns(**options)`` on ``host:port`` until cancelled, as ``python -m tidings.testing apns`` does."""
    apns = Apns(**options)
    await apns.start(host, port)
    try:
        await asyncio.Event().wait()
    finally:
        await apns.close()
