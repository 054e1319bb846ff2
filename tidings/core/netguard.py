"""Which addresses a webhook may reach: only public ones, so a subscriber's URL cannot make tidings call into its
own network (a cloud metadata service, a database's HTTP port, an admin page on loopback).

The ranges are listed here rather than left to ``ipaddress.is_global``, whose answers have changed between Python
releases; an address that hides an IPv4 one (IPv4-mapped, 6to4, NAT64) is judged by the address it hides.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NOT_PUBLIC = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, where cloud metadata services live
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast, deprecated
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
        "::/96",  # unspecified, loopback, and the deprecated IPv4-compatible form
        "100::/64",  # discard
        "64:ff9b:1::/48",  # local-use NAT64
        "2001::/23",  # IETF protocol assignments, Teredo among them
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local, deprecated
        "ff00::/8",  # multicast
    )
)

NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def is_public(address: str) -> bool:
    """Whether a webhook may be sent to ``address``; anything that does not parse as an address is not public."""
    try:
        ip: IPAddress = ipaddress.ip_address(address)
    except ValueError:
        return False
    ip = embedded(ip)
    if ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast:
        return False
    if ip.is_unspecified or ip.is_reserved or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local):
        return False
    return not any(ip in network for network in NOT_PUBLIC if network.version == ip.version)


def embedded(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries and leads to (IPv4-mapped, 6to4, NAT64), or ``ip`` itself."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip
