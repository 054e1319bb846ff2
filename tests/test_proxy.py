"""tidings behind real nginx, run with docs/nginx/tidings.conf as users copy it (only its addresses, paths and
header timeout changed): the proxy cuts off a trickled request head, caps connections and requests per address,
passes the client's address on, and passes live streams on unbuffered."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import io
import ipaddress
import json
import os
import pwd
import re
import shutil
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from yarl import URL

from tests.conftest import ROOT_KEY, Api, free_port

DOCS = Path(__file__).resolve().parents[1] / "docs"
CONFIG = DOCS / "nginx" / "tidings.conf"
HEADER_TIMEOUT = 2
"""Seconds, in place of the file's 10, to keep the test short."""
AUTH = {"Authorization": f"Bearer {ROOT_KEY}"}
STREAMS_PER_ADDRESS = 10
"""The file's ``limit_conn tidings_streams``."""
REQUEST_BURST = 100
"""The file's ``limit_req ... burst``."""


@dataclass
class Proxy:
    url: str
    port: int
    tls: ssl.SSLContext
    """Trusts the proxy's certificate."""
    access_log: Path

    def session(self, address: str = "127.0.0.1") -> aiohttp.ClientSession:
        """A client whose connections come from ``address`` (any of 127.0.0.0/8 reaches the proxy)."""
        return aiohttp.ClientSession(self.url, connector=aiohttp.TCPConnector(ssl=self.tls, local_addr=(address, 0)))

    async def raw(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port, ssl=self.tls)


@pytest.fixture
def nginx() -> str:
    """The nginx binary. Without one the proxy tests skip, except in CI, where they must run."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if found is None:
        message = "nginx is not installed (apt-get install nginx); the reverse proxy tests need it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def certificate(folder: Path) -> bytes:
    """A self-signed certificate for 127.0.0.1, written where the file expects one; returns it as PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "fullchain.pem").write_bytes(pem)
    (folder / "privkey.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return pem


def replace_once(text: str, old: str, new: str) -> str:
    """Fails when the file no longer says ``old`` exactly once, so the test never runs a config other than it."""
    assert text.count(old) == 1, f"{CONFIG.name} should say {old!r} once"
    return text.replace(old, new)


def write_config(prefix: Path, upstream_port: int, port: int) -> Path:
    """The file with this test's addresses, paths and header timeout, and a main config that includes it."""
    site = CONFIG.read_text()
    site = replace_once(site, "server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};")
    site = replace_once(site, "listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    site = replace_once(site, "client_header_timeout 10s;", f"client_header_timeout {HEADER_TIMEOUT}s;")
    site = replace_once(site, "/var/log/nginx/", f"{prefix}/")
    site = site.replace("/etc/ssl/tidings/", f"{prefix}/")
    (prefix / "tidings.conf").write_text(site)
    main = prefix / "nginx.conf"
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp = "\n".join(f"    {kind}_temp_path {prefix}/{kind};" for kind in kinds)
    # Workers run as this user: nginx started as root would hand them to "nobody", who cannot reach the tmp folder.
    main.write_text(
        f"user {pwd.getpwuid(os.geteuid()).pw_name};\n"
        "worker_processes 1;\n"
        "events {}\n"
        f"http {{\n{temp}\n    include {prefix}/tidings.conf;\n}}\n"
    )
    return main


@pytest.fixture
async def proxied(nginx: str, serve: Callable[..., Awaitable[Api]], tmp_path: Path) -> AsyncIterator[tuple[Api, Proxy]]:
    """tidings (believing the proxy's X-Forwarded-For, one code per client address an hour) with nginx before it."""
    api = await serve({"trusted_proxies": ["127.0.0.1"], "limits": {"per_ip_hour": 1}})
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    pem = certificate(prefix)
    port = free_port()
    main = write_config(prefix, URL(api.base_url).port or 0, port)
    process = await asyncio.create_subprocess_exec(
        nginx,
        "-p", f"{prefix}/",
        "-c", str(main),
        "-g", f"daemon off; pid {prefix}/nginx.pid; error_log {prefix}/error.log;",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await listening(port, process, prefix / "error.log")
        tls = ssl.create_default_context(cadata=pem.decode())
        yield api, Proxy(f"https://127.0.0.1:{port}", port, tls, prefix / "tidings.log")
    finally:
        if process.returncode is None:
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def listening(port: int, process: asyncio.subprocess.Process, error_log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process.returncode is None:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    assert process.stderr is not None
    stderr = (await process.stderr.read()).decode() if process.returncode is not None else ""
    logged = "\n".join(lines_of(error_log))
    raise AssertionError(f"nginx did not start (exit status {process.returncode}):\n{stderr}{logged}")


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_doc_quotes_the_tested_file():
    quoted = re.search(r"```nginx\n(.*?)```", (DOCS / "proxy.md").read_text(), re.DOTALL)
    assert quoted is not None and quoted.group(1) == CONFIG.read_text()


async def test_a_trickled_request_head_is_cut_off(proxied):
    _, proxy = proxied
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: one byte at a time, for as long as it may\r\n\r\n"
    started = time.monotonic()
    reader, writer = await proxy.raw()

    async def trickle() -> None:
        for byte in head:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.1)

    sender = asyncio.create_task(trickle())
    try:
        answer = await asyncio.wait_for(reader.read(), HEADER_TIMEOUT + 5)
    except (ConnectionError, ssl.SSLError):
        answer = b""
    held = time.monotonic() - started
    sender.cancel()
    with contextlib.suppress(asyncio.CancelledError, ConnectionError, ssl.SSLError):
        await sender
    writer.close()
    # The head would take 9 s to trickle in; each byte came well within any timeout between two reads.
    assert len(head) * 0.1 > HEADER_TIMEOUT + 5
    assert answer == b""
    assert HEADER_TIMEOUT - 0.2 < held < HEADER_TIMEOUT + 1.5, held


async def test_streams_per_address_are_capped(proxied):
    api, proxy = proxied
    for n in range(STREAMS_PER_ADDRESS + 1):
        assert (await api.call("PUT", f"/v1/subscribers/s{n}", {})).status in (200, 201)
    async with proxy.session() as session, contextlib.AsyncExitStack() as streams:
        held = [
            await streams.enter_async_context(session.get(f"/v1/subscribers/s{n}/stream", headers=AUTH))
            for n in range(STREAMS_PER_ADDRESS)
        ]
        assert [response.status for response in held] == [200] * STREAMS_PER_ADDRESS
        extra = f"/v1/subscribers/s{STREAMS_PER_ADDRESS}/stream"
        async with session.get(extra, headers=AUTH) as refused:
            assert refused.status == 429
            assert refused.headers["Retry-After"] == "1" and "X-Request-Id" in refused.headers
            assert (await refused.json())["error"]["code"] == "rate_limited"
        async with proxy.session("127.0.0.2") as neighbour, neighbour.get(extra, headers=AUTH) as other_address:
            assert other_address.status == 200
        async with session.get("/healthz") as health:  # the API is counted apart from the streams
            assert health.status == 200
        hang_up(held[0])
        deadline = time.monotonic() + 2
        while True:  # the place comes free once nginx has seen the connection close
            async with session.get(extra, headers=AUTH) as again:
                if again.status == 200 or time.monotonic() > deadline:
                    assert again.status == 200
                    break
            await asyncio.sleep(0.05)


def hang_up(response: aiohttp.ClientResponse) -> None:
    """Close a stream's connection at once, as a browser closing its tab does. (aiohttp would send TLS's
    close_notify and wait for nginx's, which comes no sooner than the stream's next heartbeat.)"""
    assert response.connection is not None and response.connection.transport is not None
    response.connection.transport.abort()


async def test_requests_per_address_are_rate_limited(proxied):
    _, proxy = proxied
    statuses = []
    started = time.monotonic()
    async with proxy.session() as session:
        for _ in range(REQUEST_BURST + 50):
            async with session.get("/healthz") as response:
                statuses.append(response.status)
    took = time.monotonic() - started
    passed = statuses.count(200)
    assert statuses[:REQUEST_BURST] == [200] * REQUEST_BURST
    assert statuses.count(429) == len(statuses) - passed > 0
    assert passed <= REQUEST_BURST + 20 * took + 1, (passed, took)  # the rate, 20 a second, refills the burst


async def test_tidings_sees_the_client_address_not_what_the_client_claims(proxied):
    _, proxy = proxied

    async def start(address: str, number: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
        async with (
            proxy.session(address) as session,
            session.post("/v1/verifications", json={"to": number}, headers={**AUTH, **(headers or {})}) as response,
        ):
            return response.status, await response.json()

    def limited_by_tidings(answer: tuple[int, dict]) -> bool:
        """tidings' per_ip_hour refused it (nginx's refusals say to retry after a second)."""
        status, body = answer
        return status == 429 and body["error"]["code"] == "rate_limited" and body["error"]["retry_after"] > 60

    # nginx is tidings' only peer: only X-Forwarded-For tells 127.0.0.3 from 127.0.0.4.
    assert (await start("127.0.0.3", "+447700900001"))[0] == 201
    assert limited_by_tidings(await start("127.0.0.3", "+447700900002"))
    assert limited_by_tidings(await start("127.0.0.3", "+447700900003", {"X-Forwarded-For": "198.51.100.7"}))
    assert (await start("127.0.0.4", "+447700900004"))[0] == 201


async def test_bodies_up_to_tidings_limit_pass_and_larger_ones_are_refused_at_the_proxy(proxied):
    _, proxy = proxied
    limit = 2 * 1024 * 1024
    async with proxy.session() as session:
        body = io.BytesIO(b" " * limit)
        async with session.post("/v1/messages", data=body, headers={**AUTH, "Content-Type": "application/json"}) as ok:
            assert ok.status == 400 and "X-Request-Id" in ok.headers  # tidings read it, and found no JSON in it
    reader, writer = await proxy.raw()
    writer.write(f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {limit + 1}\r\n\r\n".encode())
    status_line = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 413 "), status_line


async def sse_message(response: aiohttp.ClientResponse) -> dict:
    async for line in response.content:
        if line.startswith(b"data: "):
            return json.loads(line[len(b"data: ") :])
    raise AssertionError("the stream ended")


async def test_streams_pass_each_message_at_once(proxied):
    api, proxy = proxied
    assert (await api.call("PUT", "/v1/subscribers/ada", {})).status in (200, 201)
    token = (await api.post("/v1/subscribers/ada/tokens")).body["token"]
    async with (
        proxy.session() as session,
        session.get(f"/v1/subscribers/ada/stream?token={token}") as sse,
        session.ws_connect(f"/v1/subscribers/ada/ws?token={token}") as ws,
    ):
        assert sse.status == 200
        for body in ("one", "two"):
            pushed = time.monotonic()
            sent = await api.post("/v1/messages", {"to": ["ada"], "body": body, "channels": ["stream"]})
            event = await asyncio.wait_for(sse_message(sse), 2)
            assert event["body"] == body and event["id"] == sent.body["id"]
            assert time.monotonic() - pushed < 1
            assert json.loads((await asyncio.wait_for(ws.receive(), 2)).data)["body"] == body
        hang_up(sse)
    logged = await logged_lines(proxy.access_log, 2)
    assert len(logged) == 2 and all("/v1/subscribers/ada/" in line and token not in line for line in logged), logged


async def logged_lines(path: Path, count: int) -> list[str]:
    """The access log's lines once it has ``count``: nginx writes a line when a request ends."""
    deadline = time.monotonic() + 5
    while True:
        lines = lines_of(path)
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        await asyncio.sleep(0.05)
