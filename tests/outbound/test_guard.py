"""The SSRF guard: URLs refused at registration, and addresses refused at connection time. No test reaches past
loopback: public addresses are only ever literals or the answers of a stand-in resolver."""

from __future__ import annotations

import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from tidings.core.types import Permanent
from tidings.outbound.client import HttpClient, Response
from tidings.outbound.guard import GuardedResolver, PrivateAddress, check_url, guarded_client
from tidings.testing.webhooks import RECEIVER, create_app


class Resolver(AbstractResolver):
    """Answers from a table, which a test may change between two lookups as a rebinding DNS server would."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.closed = False

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.answers[host]
        ]

    async def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://8.8.8.8/hook", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("hook.example.com/x", "http:// or https://"),
        ("https://user:pass@8.8.8.8/hook", "user name or password"),
        ("https://user@8.8.8.8/hook", "user name or password"),
        ("http:///hook", "needs a host"),
        ("http://[::1/hook", "not a URL"),
    ],
)
async def test_malformed_urls_are_refused(url, message):
    for allow_private in (False, True):
        with pytest.raises(ValueError, match=message):
            await check_url(url, allow_private)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.0.0.1:8000/hook",
        "https://10.0.0.8/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fd00::1]/",
        "http://0.0.0.0/",
        "http://localhost:8000/hook",
        "http://127.1/",
        "http://2130706433/",
        "http://0x7f.0.0.1/",
    ],
)
async def test_private_destinations_are_refused(url):
    with pytest.raises(PrivateAddress):
        await check_url(url, allow_private=False)


class NoLookup(AbstractResolver):
    """A resolver that fails the test if it is asked at all (an empty table would answer "no such name", which the
    check takes as a name not yet in DNS, and passes)."""

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        raise AssertionError(f"{host} was looked up")

    async def close(self) -> None:
        pass


@pytest.mark.parametrize("url", ["https://8.8.8.8/hook", "http://[2606:4700:4700::1111]:8443/x?y=1"])
async def test_a_public_literal_passes_without_a_lookup(url):
    await check_url(url, allow_private=False, resolver=NoLookup())


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/hook", "http://localhost/", "http://[::1]/"])
async def test_private_networks_can_be_allowed(url):
    await check_url(url, allow_private=True, resolver=Resolver({}))


async def test_names_are_judged_by_every_address_they_resolve_to():
    resolver = Resolver({"hooks.example": ["8.8.8.8", "2606:4700::1"], "mixed.example": ["8.8.8.8", "10.0.0.1"]})
    await check_url("https://hooks.example/in", allow_private=False, resolver=resolver)
    with pytest.raises(PrivateAddress, match=r"10\.0\.0\.1"):
        await check_url("https://mixed.example/in", allow_private=False, resolver=resolver)


async def test_a_name_that_does_not_resolve_yet_is_left_to_the_send_time_check():
    await check_url("https://nowhere.example/in", allow_private=False, resolver=Resolver({}))


async def test_the_resolver_drops_private_addresses():
    inner = Resolver({"mixed.example": ["10.0.0.1", "8.8.8.8", "::1"], "inside.example": ["127.0.0.1", "fd00::2"]})
    resolver = GuardedResolver(inner)
    assert [found["host"] for found in await resolver.resolve("mixed.example", 443)] == ["8.8.8.8"]
    with pytest.raises(PrivateAddress) as refused:
        await resolver.resolve("inside.example", 443)
    assert isinstance(refused.value, OSError)
    await resolver.close()
    assert inner.closed


async def test_a_name_rebound_to_loopback_after_registration_cannot_be_reached(run_app):
    """The DNS answer changes between the check and the send: the connection is refused, for good."""
    app = create_app()
    port = int((await run_app(app)).rsplit(":", 1)[1])
    answers = {"rebind.example": ["8.8.8.8"]}
    url = f"http://rebind.example:{port}/hook"
    await check_url(url, allow_private=False, resolver=Resolver(answers))
    answers["rebind.example"] = ["127.0.0.1"]
    http = HttpClient(timeout=2.0, resolver=GuardedResolver(Resolver(answers)))
    try:
        answer = await http.request("POST", url, data=b"{}")
    finally:
        await http.close()
    assert isinstance(answer, Permanent) and answer.error == "private_address"
    assert app[RECEIVER].received == []


async def test_the_unguarded_client_still_reaches_loopback(run_app):
    app = create_app()
    url = await run_app(app)
    http = guarded_client(timeout=2.0, allow_private=True)
    try:
        answer = await http.request("POST", f"{url}/hook", data=b"{}")
    finally:
        await http.close()
    assert isinstance(answer, Response) and answer.status == 204
    assert isinstance(guarded_client(1.0, allow_private=False).resolver, GuardedResolver)
