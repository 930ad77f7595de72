"""Who the client is: its address behind trusted proxies, and the key rate limits count it under.

:func:`client_address` is the TCP peer, unless the peer is a trusted proxy
(a CIDR in the service's ``*_TRUSTED_PROXIES``).  Then ``X-Forwarded-For`` is
read from the right: each trusted hop is skipped, and the first hop that is
not a trusted proxy is the client, because the proxy to its right appended it
and nobody else could.  Hops further left were written by the client and are
never believed.  When every hop is trusted (a client inside the proxies'
network), the leftmost one is the client.  A hop that is not an address
stops the walk at the last good one.

:func:`rate_key` is what per-client limits count against: an IPv4 address as
is (an IPv4-mapped IPv6 address counts as its IPv4 address), and an IPv6
address as its ``/64``, because one subscriber usually holds a whole /64
and could otherwise rotate through 2**64 addresses to get a fresh bucket each
time.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from aiohttp import web
from pydantic import AfterValidator

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

FORWARDED_FOR = "X-Forwarded-For"
IPV6_RATE_PREFIX = 64


def parse_networks(spec: str) -> list[IPNetwork]:
    """Comma-separated CIDRs (or single addresses) as networks; raises ``ValueError`` on a bad one."""
    return [ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip()]


def _valid_networks(spec: str) -> str:
    parse_networks(spec)
    return spec


# A settings field of CIDRs (``*_TRUSTED_PROXIES``): a bad one stops the service at start-up, with the value named.
Cidrs = Annotated[str, AfterValidator(_valid_networks)]


def parse_hop(hop: str) -> IPAddress | None:
    """One ``X-Forwarded-For`` entry: ``1.2.3.4``, ``1.2.3.4:5678``, ``2001:db8::1``, ``[2001:db8::1]:443``."""
    text = hop.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None


def _trusted(ip: IPAddress, networks: list[IPNetwork]) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


def forwarded_hops(request: web.Request) -> list[str]:
    """Every ``X-Forwarded-For`` entry, left to right, across repeated header lines."""
    return [hop for line in request.headers.getall(FORWARDED_FOR, ()) for hop in line.split(",") if hop.strip()]


def client_address(request: web.Request, trusted: list[IPNetwork]) -> str:
    """The client's address as text (see the module docstring); the peer itself when nothing is trusted."""
    peer_text = request.remote or "unknown"
    if not trusted:
        return peer_text
    peer = parse_hop(peer_text)
    if peer is None or not _trusted(peer, trusted):
        return peer_text
    current = peer
    for hop in reversed(forwarded_hops(request)):
        ip = parse_hop(hop)
        if ip is None:
            break
        current = ip
        if not _trusted(ip, trusted):
            break
    return str(current)


def rate_key(address: str, *, ipv6_prefix: int = IPV6_RATE_PREFIX) -> str:
    """The bucket key of a client address: IPv4 as is, IPv6 as its network (``2001:db8:1:2::/64``)."""
    if ":" not in address:
        return address  # IPv4 (or "unknown"): the hot path does no parsing
    ip = parse_hop(address)
    if not isinstance(ip, ipaddress.IPv6Address):
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((int(ip) >> (128 - ipv6_prefix) << (128 - ipv6_prefix), ipv6_prefix)))


def client_key(request: web.Request, trusted: list[IPNetwork]) -> str:
    """:func:`rate_key` of :func:`client_address`: what per-client limits count against."""
    return rate_key(client_address(request, trusted))
