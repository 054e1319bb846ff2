"""Email codes through a real local SMTP server (aiosmtpd), directly and through the whole API."""

from __future__ import annotations

import asyncio
import socket
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import CODE
from tidings.core.types import Delivered, OutboundMessage, Permanent, Transient
from tidings.providers.smtp import Smtp


class Inbox:
    def __init__(self, refuse: int | None = None) -> None:
        self.messages: list = []
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, options):
        if self.refuse is not None:
            return f"{self.refuse} mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server():
    started = []

    def start(refuse: int | None = None) -> tuple[int, Inbox]:
        inbox = Inbox(refuse)
        controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
        controller.start()
        started.append(controller)
        return controller.port, inbox

    yield start
    for controller in started:
        controller.stop()


def smtp(port: int) -> Smtp:
    return Smtp(Smtp.Settings.model_validate({"host": "127.0.0.1", "port": port, "from": "Acme <a@acme.test>"}), None)


def email(to: str = "ada@example.com") -> OutboundMessage:
    return OutboundMessage(to=to, text="Your code is 123456", idempotency_key="snd_1.1", subject="Your code")


async def test_delivered(smtp_server):
    port, inbox = smtp_server()
    assert isinstance(await smtp(port).send(email()), Delivered)
    [received] = inbox.messages
    assert received["To"] == "ada@example.com" and received["Subject"] == "Your code"
    assert received["X-Tidings-Id"] == "snd_1.1" and "123456" in received.get_payload()


@pytest.mark.parametrize(("code", "kind"), [(550, Permanent), (451, Transient)])
async def test_refused_recipients(smtp_server, code, kind):
    port, _ = smtp_server(refuse=code)
    outcome = await smtp(port).send(email())
    assert isinstance(outcome, kind) and outcome.error == f"smtp_{code}"


async def test_no_server_is_transient():
    outcome = await smtp(free_port()).send(email())
    assert isinstance(outcome, Transient) and outcome.error == "smtp_connection"


async def test_email_verification_end_to_end(serve, smtp_server):
    port, inbox = smtp_server()
    api = await serve({"verify": {"email_providers": ["smtp"]}, "providers": {"smtp": {"port": port}}})
    started = await api.post("/v1/verifications", {"to": "Ada@Example.com", "channel": "email", "app_name": "Acme"})
    assert started.status == 201 and started.body["to"] == "Ada@example.com"
    for _ in range(200):
        if inbox.messages:
            break
        await asyncio.sleep(0.02)
    [received] = inbox.messages
    assert received["Subject"] == "Your Acme verification code"
    code = CODE.search(received.get_payload()).group(1)
    checked = await api.post("/v1/verifications/check", {"to": "Ada@example.com", "code": code})
    assert checked.body["valid"] is True
