"""Email codes through a real local SMTP server (aiosmtpd), directly and through the whole API."""

from __future__ import annotations

import asyncio
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.conftest import CODE, free_port
from tidings.core.types import Delivered, OutboundMessage, Permanent, Transient
from tidings.providers.smtp import Smtp

USER, PASSWORD = "mailer", "p4ss"


class Inbox:
    """An aiosmtpd handler that keeps what it accepts, or refuses at RCPT or DATA with a given reply code."""

    def __init__(self, refuse_rcpt: int | None = None, refuse_data: int | None = None) -> None:
        self.messages: list = []
        self.refuse_rcpt, self.refuse_data = refuse_rcpt, refuse_data

    async def handle_RCPT(self, server, session, envelope, address, options):
        if self.refuse_rcpt is not None:
            return f"{self.refuse_rcpt} mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.refuse_data is not None:
            return f"{self.refuse_data} message refused"
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted"


def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    given = tuple(part.decode() if isinstance(part, bytes) else part for part in (auth_data.login, auth_data.password))
    return AuthResult(success=given == (USER, PASSWORD), handled=False)


@pytest.fixture
def smtp_server():
    started = []

    def start(*, auth: bool = False, **refusals: int) -> tuple[int, Inbox]:
        inbox = Inbox(**refusals)
        options = {"authenticator": authenticate, "auth_require_tls": False} if auth else {}
        controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), **options)
        controller.start()
        started.append(controller)
        return controller.port, inbox

    yield start
    for controller in started:
        controller.stop()


def smtp(port: int, **settings) -> Smtp:
    configured = {"host": "127.0.0.1", "port": port, "from": "Acme <codes@acme.test>", "timeout": 1.0, **settings}
    return Smtp(Smtp.Settings.model_validate(configured), None)


def email(to: str = "ada@example.com") -> OutboundMessage:
    return OutboundMessage(to=to, text="Your code is 123456", idempotency_key="snd_1.1", subject="Your code")


async def test_delivered(smtp_server):
    port, inbox = smtp_server()
    outcome = await smtp(port).send(email())
    assert outcome == Delivered("snd_1.1@acme.test")
    [received] = inbox.messages
    assert received["To"] == "ada@example.com" and received["Subject"] == "Your code"
    assert received["From"] == "Acme <codes@acme.test>"
    assert received["X-Tidings-Id"] == "snd_1.1" and received["Message-ID"] == "<snd_1.1@acme.test>"
    assert "123456" in received.get_payload()


@pytest.mark.parametrize(
    ("refusal", "kind", "error"),
    [
        ({"refuse_rcpt": 550}, Permanent, "smtp_550"),
        ({"refuse_rcpt": 553}, Permanent, "smtp_553"),
        ({"refuse_rcpt": 451}, Transient, "smtp_451"),
        ({"refuse_rcpt": 452}, Transient, "smtp_452"),
        ({"refuse_data": 554}, Permanent, "smtp_554"),
        ({"refuse_data": 421}, Transient, "smtp_421"),
    ],
)
async def test_refusals_by_reply_code(smtp_server, refusal, kind, error):
    port, inbox = smtp_server(**refusal)
    outcome = await smtp(port).send(email())
    assert isinstance(outcome, kind) and outcome.error == error
    assert inbox.messages == []


@pytest.mark.parametrize(("password", "expected"), [(PASSWORD, Delivered), ("wrong", Permanent)])
async def test_login(smtp_server, password, expected):
    port, inbox = smtp_server(auth=True)
    outcome = await smtp(port, username=USER, password=password).send(email())
    assert isinstance(outcome, expected)
    assert len(inbox.messages) == (1 if expected is Delivered else 0)
    if expected is Permanent:
        assert outcome.error == "smtp_535"


async def test_no_server_is_transient():
    outcome = await smtp(free_port()).send(email())
    assert isinstance(outcome, Transient) and outcome.error == "connection_error"


async def test_a_server_that_never_greets_is_a_timeout():
    writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        outcome = await smtp(server.sockets[0].getsockname()[1], timeout=0.3).send(email())
        assert isinstance(outcome, Transient) and outcome.error == "timeout"
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_an_address_that_would_inject_headers_is_refused(smtp_server):
    port, inbox = smtp_server()
    outcome = await smtp(port).send(email("ada@example.com\r\nBcc: eve@example.com"))
    assert isinstance(outcome, Permanent) and outcome.error == "smtp_invalid_message"
    assert inbox.messages == []


def test_the_password_does_not_print():
    assert PASSWORD not in repr(smtp(25, username=USER, password=PASSWORD))


async def test_email_verification_end_to_end(serve, smtp_server):
    port, inbox = smtp_server()
    api = await serve({"verify": {"email_providers": ["smtp"]}, "providers": {"smtp": {"port": port}}})
    started = await api.post("/v1/verifications", {"to": "Ada@Example.com", "channel": "email", "app_name": "Acme"})
    assert started.status == 201 and started.body["to"] == "ada@example.com"
    for _ in range(200):
        if inbox.messages:
            break
        await asyncio.sleep(0.02)
    [received] = inbox.messages
    assert received["Subject"] == "Your Acme verification code"
    code = CODE.search(received.get_payload()).group(1)
    checked = await api.post("/v1/verifications/check", {"to": "ADA@example.com", "code": code})  # as typed
    assert checked.body["valid"] is True


async def test_a_pushed_message_goes_out_by_email(serve, smtp_server):
    port, inbox = smtp_server()
    api = await serve({"providers": {"smtp": {"port": port}}})
    assert (await api.call("PUT", "/v1/subscribers/ada", {"email": "ada@example.com"})).status == 201
    sent = await api.post("/v1/messages", {"to": ["ada"], "title": "Invoice", "body": "Paid.", "channels": ["email"]})
    for _ in range(200):
        if inbox.messages:
            break
        await asyncio.sleep(0.02)
    [received] = inbox.messages
    assert received["Subject"] == "Invoice" and received.get_payload().split() == ["Invoice", "Paid."]
    assert received["X-Tidings-Id"].startswith("dlv_") and sent.status == 202


async def test_a_message_that_names_no_channels_reaches_the_email_once_smtp_is_configured(serve, smtp_server):
    port, inbox = smtp_server()
    api = await serve({"providers": {"smtp": {"port": port}}})
    assert (await api.call("PUT", "/v1/subscribers/ada", {"email": "ada@example.com"})).status == 201
    sent = await api.post("/v1/messages", {"to": ["ada"], "title": "Invoice", "body": "Paid."})
    for _ in range(200):
        if inbox.messages:
            break
        await asyncio.sleep(0.02)
    [received] = inbox.messages
    assert received["Subject"] == "Invoice" and sent.status == 202
