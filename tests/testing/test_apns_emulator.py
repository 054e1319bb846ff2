"""The APNs emulator driven over real HTTP/2 (prior knowledge, no TLS): Apple's checks and answers, multiplexed
streams, flow control, and clients that go away mid-request."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import DataReceived, Event, ResponseReceived, StreamEnded
from h2.settings import SettingCodes, Settings

from tests.conftest import free_port
from tidings.testing.apns import Apns, load_public_key, serve_forever

KEY = ec.generate_private_key(ec.SECP256R1())
TEAM, KEY_ID, TOPIC = "TEAM123456", "KEY1234567", "com.example.app"
DEVICE = "ab" * 32
PAYLOAD = {"aps": {"alert": {"title": "Hello", "body": "Your code is 123456"}}}

Start = Callable[..., Awaitable[Apns]]


def provider_token(
    issued_at: Any = None, key: Any = KEY, kid: str = KEY_ID, iss: str | None = TEAM, algorithm: str = "ES256"
) -> str:
    claims = {"iat": int(time.time()) if issued_at is None else issued_at}
    if iss is not None:
        claims["iss"] = iss
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


def request_headers(**changes: str | bytes | None) -> dict[str, str | bytes]:
    """What a provider sends with an alert; a change to None leaves that header out."""
    headers: dict[str, str | bytes | None] = {
        "authorization": f"bearer {provider_token()}",
        "apns-topic": TOPIC,
        "apns-push-type": "alert",
        **{name.replace("_", "-"): value for name, value in changes.items()},
    }
    return {name: value for name, value in headers.items() if value is not None}


async def push(
    client: httpx.AsyncClient, token: str = DEVICE, body: bytes | None = None, **changes: str | bytes | None
) -> httpx.Response:
    content = json.dumps(PAYLOAD).encode() if body is None else body
    return await client.post(f"/3/device/{token}", content=content, headers=request_headers(**changes))


def h2_client(apns: Apns, **options: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(http1=False, http2=True, base_url=apns.base_url, **options)


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    started: list[Apns] = []

    async def start(**options: Any) -> Apns:
        options.setdefault("min_token_interval", 0.0)
        apns = Apns(team_id=TEAM, key_id=KEY_ID, public_key=KEY.public_key(), topic=TOPIC, **options)
        started.append(apns)
        await apns.start()
        return apns

    yield start
    for apns in started:
        await apns.close()


@pytest.fixture
async def apns(start: Start) -> Apns:
    return await start()


@pytest.fixture
async def client(apns: Apns) -> AsyncIterator[httpx.AsyncClient]:
    async with h2_client(apns) as client:
        yield client


class RawClient:
    """A bare HTTP/2 client, for what httpx does not let a test do: keep its receive window shut, reset a stream,
    drop the connection mid-request."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, window: int) -> None:
        self.reader, self.writer = reader, writer
        self.h2 = H2Connection(H2Configuration(client_side=True, header_encoding="utf-8"))
        self.h2.local_settings = Settings(client=True, initial_values={SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.h2.initiate_connection()
        self.flush()

    @classmethod
    async def connect(cls, apns: Apns, window: int = 65535) -> RawClient:
        host, port = apns.base_url.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)), window)

    def flush(self) -> None:
        self.writer.write(self.h2.data_to_send())

    def send(self, method: str, path: str, headers: dict[str, str | bytes] | None = None, body: bytes = b"") -> int:
        stream_id = self.h2.get_next_available_stream_id()
        pseudo = [(":method", method), (":scheme", "http"), (":authority", "emulator"), (":path", path)]
        fields = [
            (name.encode(), value if isinstance(value, bytes) else value.encode())
            for name, value in [*pseudo, *(headers or {}).items()]
        ]
        self.h2.send_headers(stream_id, fields, end_stream=not body)
        if body:
            self.h2.send_data(stream_id, body, end_stream=True)
        self.flush()
        return stream_id

    async def events(self, timeout: float = 1.0) -> list[Event]:
        data = await asyncio.wait_for(self.reader.read(65536), timeout)
        assert data, "the server closed the connection"
        events = self.h2.receive_data(data)
        self.flush()
        return events

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def other_tasks() -> set[asyncio.Task[Any]]:
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


async def test_accepts_a_notification(apns: Apns, client: httpx.AsyncClient) -> None:
    apns_id = str(uuid.uuid4())
    response = await push(client, apns_id=apns_id, apns_priority="10", apns_expiration="0", apns_collapse_id="c1")
    assert response.http_version == "HTTP/2"
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["apns-id"] == apns_id and "apns-unique-id" not in response.headers
    [received] = apns.received
    assert (received.to, json.loads(received.text), received.id) == (DEVICE, PAYLOAD, apns_id)
    [notification] = apns.notifications
    assert (notification.token, notification.payload) == (DEVICE, PAYLOAD)
    assert notification.headers == {
        "apns-topic": TOPIC,
        "apns-push-type": "alert",
        "apns-id": apns_id,
        "apns-priority": "10",
        "apns-expiration": "0",
        "apns-collapse-id": "c1",
    }


async def test_sandbox_answers_a_unique_id_and_makes_up_a_missing_apns_id(start: Start) -> None:
    apns = await start(environment="sandbox")
    async with h2_client(apns) as client:
        response = await push(client, apns_push_type=None)
    assert response.status_code == 200
    assert uuid.UUID(response.headers["apns-id"]) and uuid.UUID(response.headers["apns-unique-id"])
    assert apns.received[0].id == response.headers["apns-id"]
    assert "apns-push-type" not in apns.notifications[0].headers


@pytest.mark.parametrize(
    ("changes", "body"),
    [
        ({"apns_push_type": "voip", "apns_topic": f"{TOPIC}.voip"}, json.dumps({"aps": {}, "x": "y" * 5000}).encode()),
        ({"apns_push_type": "liveactivity", "apns_topic": f"{TOPIC}.push-type.liveactivity"}, None),
        ({"apns_push_type": None, "apns_topic": f"{TOPIC}.complication"}, None),
        ({"apns_push_type": "background", "apns_priority": "5"}, b'{"aps":{"content-available":1}}'),
        ({"apns_id": str(uuid.uuid4()).upper()}, None),
    ],
)
async def test_accepts_what_apple_accepts(apns: Apns, client: httpx.AsyncClient, changes: dict, body: bytes) -> None:
    response = await push(client, body=body, **changes)
    assert response.status_code == 200, response.text
    assert len(apns.received) == 1


@pytest.mark.parametrize(
    ("path", "changes", "body", "status", "reason"),
    [
        ("/3/devices/" + DEVICE, {}, None, 404, "BadPath"),
        (f"/3/device/{DEVICE}/x", {}, None, 404, "BadPath"),
        ("/3/device/", {}, None, 400, "MissingDeviceToken"),
        (None, {"authorization": None}, None, 403, "MissingProviderToken"),
        (None, {"authorization": "bearer"}, None, 403, "MissingProviderToken"),
        (None, {"authorization": f"basic {provider_token()}"}, None, 403, "InvalidProviderToken"),
        (None, {"authorization": "bearer not.a.jwt"}, None, 403, "InvalidProviderToken"),
        (
            None,
            {"authorization": f"bearer {provider_token(key=ec.generate_private_key(ec.SECP256R1()))}"},
            None,
            403,
            "InvalidProviderToken",
        ),
        (
            None,
            {"authorization": f"bearer {provider_token(key='k' * 64, algorithm='HS256')}"},
            None,
            403,
            "InvalidProviderToken",
        ),
        (None, {"authorization": f"bearer {provider_token(kid='OTHERKEY12')}"}, None, 403, "InvalidProviderToken"),
        (None, {"authorization": f"bearer {provider_token(iss='OTHERTEAM1')}"}, None, 403, "InvalidProviderToken"),
        (None, {"authorization": f"bearer {provider_token(iss=None)}"}, None, 403, "InvalidProviderToken"),
        (None, {"authorization": f"bearer {provider_token(issued_at='today')}"}, None, 403, "InvalidProviderToken"),
        (None, {"authorization": f"bearer {provider_token(time.time() - 3601)}"}, None, 403, "ExpiredProviderToken"),
        (None, {"apns_topic": None}, None, 400, "MissingTopic"),
        (None, {"apns_topic": "com.example.other"}, None, 400, "BadTopic"),
        (None, {"apns_topic": f"{TOPIC}.voip"}, None, 400, "BadTopic"),
        (None, {"apns_push_type": "voip"}, None, 400, "BadTopic"),
        (None, {"apns_push_type": "banner"}, None, 400, "InvalidPushType"),
        (None, {"apns_priority": "3"}, None, 400, "BadPriority"),
        (None, {"apns_push_type": "background", "apns_priority": "10"}, None, 400, "BadPriority"),
        (None, {"apns_expiration": "tomorrow"}, None, 400, "BadExpirationDate"),
        (None, {"apns_expiration": "-1"}, None, 400, "BadExpirationDate"),
        (None, {"apns_collapse_id": "é".encode() * 33}, None, 400, "BadCollapseId"),
        (None, {"apns_id": "42"}, None, 400, "BadMessageId"),
        ("/3/device/xyz", {}, None, 400, "BadDeviceToken"),
        ("/3/device/" + "a" * 63, {}, None, 400, "BadDeviceToken"),
        ("/3/device/" + "ab" * 8, {}, None, 400, "BadDeviceToken"),
        (None, {}, b"", 400, "PayloadEmpty"),
        (None, {}, b"[]", 400, "PayloadEmpty"),
        (None, {}, b'{"alert": "no aps"}', 400, "PayloadEmpty"),
        (None, {}, b"not json", 400, "PayloadEmpty"),
        (None, {}, b'{"aps":{"alert":"\xff"}}', 400, "PayloadEmpty"),
        (None, {}, json.dumps({"aps": {"alert": "x" * 4096}}).encode(), 413, "PayloadTooLarge"),
    ],
)
async def test_refuses_as_apple_does(
    apns: Apns, client: httpx.AsyncClient, path: str | None, changes: dict, body: bytes | None, status: int, reason: str
) -> None:
    content = json.dumps(PAYLOAD).encode() if body is None else body
    url = path or f"/3/device/{DEVICE}"
    response = await client.post(url, content=content, headers=request_headers(**changes))
    assert (response.status_code, response.json()) == (status, {"reason": reason})
    assert uuid.UUID(response.headers["apns-id"])
    assert apns.received == [] and apns.notifications == []


async def test_a_header_that_is_not_utf8_is_only_refused(apns: Apns) -> None:
    raw = await RawClient.connect(apns)
    raw.send("POST", f"/3/device/{DEVICE}", request_headers(apns_topic=b"\xffcom.example.app"), b"{}")
    events: list[Event] = []
    while not any(isinstance(event, StreamEnded) for event in events):
        events += await raw.events()
    await raw.close()
    [response] = [event for event in events if isinstance(event, ResponseReceived)]
    assert dict(response.headers)[":status"] == "400"
    assert b'{"reason":"BadTopic"}' in b"".join(event.data for event in events if isinstance(event, DataReceived))


async def test_only_post_is_allowed(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/3/device/{DEVICE}", headers=request_headers())
    assert (response.status_code, response.json()) == (405, {"reason": "MethodNotAllowed"})


async def test_a_dead_token_is_unregistered(start: Start) -> None:
    apns = await start(dead=["cd" * 32])
    apns.kill(DEVICE)
    async with h2_client(apns) as client:
        for token in (DEVICE, "cd" * 32):
            response = await push(client, token)
            assert response.status_code == 410
            assert response.json()["reason"] == "Unregistered"
            assert abs(response.json()["timestamp"] - time.time() * 1000) < 5000
        assert (await push(client, "ef" * 32)).status_code == 200


async def test_a_new_provider_token_within_the_interval_is_refused(start: Start) -> None:
    apns = await start(min_token_interval=60.0)
    first, second = provider_token(time.time() - 10), provider_token(time.time() - 5)
    async with h2_client(apns) as client:
        assert (await push(client, authorization=f"bearer {first}")).status_code == 200
        refused = await push(client, authorization=f"bearer {second}")
        assert (refused.status_code, refused.json()) == (429, {"reason": "TooManyProviderTokenUpdates"})
        assert (await push(client, authorization=f"bearer {first}")).status_code == 200


async def test_accepts_the_key_in_every_form() -> None:
    private_pem = KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expected = KEY.public_key().public_numbers()
    for key in (KEY, KEY.public_key(), private_pem, private_pem.decode(), public_pem, public_pem.decode()):
        assert load_public_key(key).public_numbers() == expected
    with pytest.raises(ValueError, match="P-256"):
        load_public_key(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(ValueError, match="environment"):
        Apns(team_id=TEAM, key_id=KEY_ID, public_key=KEY, topic=TOPIC, environment="staging")


async def test_streams_of_one_connection_are_answered_together(start: Start) -> None:
    apns = await start(latency=0.3)
    async with h2_client(apns, limits=httpx.Limits(max_connections=1)) as client:
        began = time.monotonic()
        responses = await asyncio.gather(*(push(client) for _ in range(100)))
        elapsed = time.monotonic() - began
    assert {response.status_code for response in responses} == {200}
    assert 0.3 <= elapsed < 0.3 * 2.5
    assert len(apns.received) == 100


async def test_injected_failures_and_outages(start: Start) -> None:
    apns = await start(fail_first=2)
    async with h2_client(apns) as client:
        answers = [await push(client) for _ in range(3)]
        assert [
            (answer.status_code, answer.json().get("reason") if answer.content else None) for answer in answers
        ] == [
            (429, "TooManyRequests"),
            (429, "TooManyRequests"),
            (200, None),
        ]
        apns.outage(60)
        response = await push(client)
        assert (response.status_code, response.json()) == (503, {"reason": "ServiceUnavailable"})
    assert len(apns.received) == 1 and apns.requests == 4


async def test_control_routes(apns: Apns, client: httpx.AsyncClient) -> None:
    await push(client, apns_id=(apns_id := str(uuid.uuid4())))
    [received] = (await client.get("/_emulator/received")).json()
    assert (received["to"], received["id"], json.loads(received["text"])) == (DEVICE, apns_id, PAYLOAD)

    assert (await client.post("/_emulator/dead", json=["cd" * 32])).json() == {"ok": True, "dead": 1}
    assert (await push(client, "cd" * 32)).status_code == 410
    assert (await client.post("/_emulator/dead", content=b'"cd"')).status_code == 400

    assert (await client.post("/_emulator/outage?seconds=60")).json() == {"ok": True, "seconds": 60.0}
    assert (await push(client)).status_code == 503
    assert (await client.post("/_emulator/outage")).status_code == 400
    assert (await client.post("/_emulator/outage?seconds=0")).status_code == 200

    assert (await client.post("/_emulator/reset")).json() == {"ok": True}
    assert (await client.get("/_emulator/received")).json() == []
    assert apns.requests == 0 and apns.notifications == []
    assert (await client.get("/_emulator/reset")).status_code == 404
    assert (await push(client)).status_code == 200


async def test_a_body_waits_for_the_clients_window(apns: Apns, client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await push(client)
    raw = await RawClient.connect(apns, window=16)
    stream_id = raw.send("GET", "/_emulator/received")
    body = b""
    while len(body) < 16:
        for event in await raw.events():
            assert not isinstance(event, StreamEnded)
            if isinstance(event, DataReceived):
                body += event.data
    assert len(body) == 16
    with pytest.raises(asyncio.TimeoutError):
        await raw.events(timeout=0.1)

    raw.h2.increment_flow_control_window(1 << 20, stream_id=stream_id)
    raw.flush()
    ended = False
    while not ended:
        for event in await raw.events():
            body += event.data if isinstance(event, DataReceived) else b""
            ended = ended or isinstance(event, StreamEnded)
    assert len(json.loads(body)) == 3

    raw.send("GET", "/_emulator/received")  # left waiting for a window when the client goes away
    await asyncio.sleep(0.05)
    await raw.close()
    await asyncio.sleep(0.01)
    assert other_tasks() == set()


async def test_a_client_may_go_away_mid_request(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    apns = await start(latency=0.2)
    raw = await RawClient.connect(apns)
    body = json.dumps(PAYLOAD).encode()
    for _ in range(10):
        raw.send("POST", f"/3/device/{DEVICE}", request_headers(), body)
    await asyncio.sleep(0.05)
    await raw.close()
    await asyncio.sleep(0.01)
    assert other_tasks() == set()
    await asyncio.sleep(0.3)
    assert apns.received == [] and apns.requests == 10
    assert [record for record in caplog.records if record.levelno >= logging.WARNING] == []


async def test_a_reset_stream_holds_no_other(start: Start) -> None:
    apns = await start(latency=0.1)
    raw = await RawClient.connect(apns)
    body = json.dumps(PAYLOAD).encode()
    dropped = raw.send("POST", f"/3/device/{DEVICE}", request_headers(apns_id=str(uuid.uuid4())), body)
    raw.h2.reset_stream(dropped)
    kept = raw.send("POST", f"/3/device/{DEVICE}", request_headers(apns_id=(apns_id := str(uuid.uuid4()))), body)
    statuses: dict[int, str] = {}
    while kept not in statuses:
        for event in await raw.events():
            if isinstance(event, ResponseReceived):
                statuses[event.stream_id] = dict(event.headers)[":status"]
    await raw.close()
    assert statuses == {kept: "200"}
    assert [received.id for received in apns.received] == [apns_id]


async def test_close_ends_requests_in_hand(start: Start) -> None:
    apns = await start(latency=10)
    async with h2_client(apns) as client:
        pending = asyncio.ensure_future(push(client))
        await asyncio.sleep(0.05)
        began = time.monotonic()
        await apns.close()
        assert time.monotonic() - began < 1
        with pytest.raises(httpx.HTTPError):
            await pending


async def test_serve_forever() -> None:
    port = free_port()
    server = asyncio.ensure_future(
        serve_forever("127.0.0.1", port, team_id=TEAM, key_id=KEY_ID, public_key=KEY, topic=TOPIC)
    )
    async with httpx.AsyncClient(http1=False, http2=True, base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(50):
            try:
                response = await client.get("/_emulator/received")
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.01)
        assert response.json() == []
    server.cancel()
    with pytest.raises(asyncio.CancelledError):
        await server
