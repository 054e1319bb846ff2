"""Keep webhooks off private networks (SSRF): a subscriber's URL must not make tidings call into the network it runs
in, a cloud metadata service or an admin page on loopback.

Checked twice: when a URL is registered (``check_url``, for a clear refusal), and again at every connection
(``GuardedResolver``), since a name can resolve to a public address at registration and to a private one later (DNS
rebinding). aiohttp does not consult the resolver for an IP literal, so ``OutsideClient`` checks those itself, and
it follows no redirect, which would lead where neither check looked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from tidings.core.netguard import is_public
from tidings.core.types import Permanent, Transient
from tidings.outbound.client import AddressRefused, HttpClient, Response


class PrivateAddress(AddressRefused):
    """The URL leads, or may lead, somewhere other than the public internet.

    An ``OSError`` so that a refusal inside the resolver reaches ``HttpClient`` intact and comes back as
    ``Permanent("private_address")`` rather than as a connection error worth retrying.
    """

    error = "private_address"


RESOLVE_TIMEOUT = 3.0
"""Seconds a subscription waits for DNS before it is accepted on the strength of the send-time check."""


_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def is_host_name(host: str) -> bool:
    """A name DNS could hold: labels of 1-63 letters, digits, ``-`` (not at either end) or ``_``, in IDNA, the last
    not all digits (no top-level domain is; ``999.1.1.1`` is a mistyped address, not a name)."""
    try:
        encoded = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = encoded.removesuffix(".").split(".")
    return len(encoded) <= 253 and all(_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()


async def check_url(url: str, allow_private: bool, resolver: AbstractResolver | None = None) -> None:
    """Refuse a URL to send to (a webhook, a push endpoint): ``ValueError`` when it is malformed,
    ``PrivateAddress`` when its host is, or resolves to, any non-public address.

    A name that does not resolve now (a DNS failure, a record not created yet) is accepted: where it leads is
    checked again on every send, by the guarded client's resolver. ``resolver`` defaults to ``getaddrinfo``.
    """
    try:
        parsed = URL(url)
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise ValueError("the URL must start with http:// or https://")
    if parsed.user is not None or parsed.password is not None:
        raise ValueError("the URL must not hold a user name or password")
    if not parsed.host:
        raise ValueError("the URL needs a host")
    host, port = parsed.host, parsed.port or 0
    literal = is_literal(host)
    if not literal:
        shorthand = _ipv4_shorthand(host)
        if shorthand is not None:
            host, literal = shorthand, True
        elif not is_host_name(host):
            raise ValueError(f"{host!r} is neither an IP address nor a host name")
    if parsed.explicit_port == 0:
        raise ValueError("port 0 cannot be connected to")
    if allow_private:
        return
    if literal:
        addresses = [host]
    else:
        try:
            addresses = await asyncio.wait_for(_resolve(host, port, resolver), RESOLVE_TIMEOUT)
        except (OSError, TimeoutError):
            return
    refused = [address for address in addresses if not is_public(address)]
    if refused:
        raise PrivateAddress(f"{host} leads to {', '.join(refused)}: only public addresses can receive webhooks")


def _ipv4_shorthand(host: str) -> str | None:
    """``127.1``, ``0x7f.0.0.1`` or ``2130706433`` as the address the resolver makes of it (``127.0.0.1``)."""
    if not host.removesuffix(".").rpartition(".")[2].isdigit():
        return None
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _resolve(host: str, port: int, resolver: AbstractResolver | None) -> list[str]:
    if resolver is not None:
        return [found["host"] for found in await resolver.resolve(host, port, family=socket.AF_UNSPEC)]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(address[0]) for _, _, _, _, address in infos]


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver with every non-public address dropped; a host left with none is refused.

    Wraps ``resolver`` (aiohttp's default when None, made on first use since it wants a running loop) and closes it
    when closed.
    """

    def __init__(self, resolver: AbstractResolver | None = None) -> None:
        self._resolver = resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._resolver is None:
            self._resolver = DefaultResolver()
        found = await self._resolver.resolve(host, port, family)
        public = [result for result in found if is_public(result["host"])]
        if not public:
            raise PrivateAddress(f"{host} has no public address: only public addresses can receive webhooks")
        return public

    async def close(self) -> None:
        if self._resolver is not None:
            await self._resolver.close()
            self._resolver = None


class OutsideClient(HttpClient):
    """The one client for URLs that callers give (webhooks, Web Push, and any channel to come).

    It follows no redirect: a public URL answering ``307 Location: http://169.254.169.254/...`` would otherwise get
    the request through to where the guard below never looked. A redirect is a final answer, ``Permanent``, since
    asking again gets it again. Unless private networks are allowed, it cannot reach a private address either: names
    are checked by its resolver at connection time (so a DNS answer that changed since the subscription cannot slip
    through), and IP literals here, since aiohttp does not ask the resolver about them."""

    def __init__(self, timeout: float, allow_private: bool = False) -> None:
        super().__init__(timeout, resolver=None if allow_private else GuardedResolver())
        self.allow_private = allow_private

    async def request(self, method: str, url: str, **options: Any) -> Response | Transient | Permanent:
        host = URL(url).host or ""
        if not self.allow_private and is_literal(host) and not is_public(host):
            return Permanent(PrivateAddress.error, f"{host} is not a public address")
        answer = await super().request(method, url, **{**options, "allow_redirects": False})
        if isinstance(answer, Response) and 300 <= answer.status < 400:
            return Permanent(f"http_{answer.status}", "redirects are not followed: register the final URL")
        return answer


def guarded_client(timeout: float, allow_private: bool) -> HttpClient:
    """The client webhooks and Web Push go through (see ``OutsideClient``)."""
    return OutsideClient(timeout, allow_private)
