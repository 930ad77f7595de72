"""The egress guard of ``http_request``: resolve once, vet every address, connect to the pinned one.

Refused: non-http(s) schemes, loopback, private, link-local, multicast,
unspecified and reserved addresses, and IPv6-mapped IPv4.  Numeric host forms
(``2130706433``, ``0x7f.1``) are resolved like any name and vetted by address.

IPv6 forms that carry an IPv4 address are vetted by the address they carry:
6to4 (``2002::/16``: ``2002:7f00:1::`` reaches 127.0.0.1 through a relay),
Teredo (``2001::/32``, the client address) and NAT64 (``64:ff9b::/96`` and the
local-use ``64:ff9b:1::/48``, the last 32 bits).  A form of a non-public
address is refused and says which one it stands for.  A NAT64 form of a
public address is allowed (an IPv6-only cluster reaches the IPv4 internet that
way); Teredo stays refused whatever it carries.

``IPAAS_EGRESS_ALLOW_CIDRS`` opens exceptions (dev and tests).
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from libs.common.http.client_ip import IPAddress, IPNetwork
from services.executor.errors import PermanentError, TransientError

# host -> the vetted address this task may connect to (set by the guard, read by the resolver).
_PINNED: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("ssrf_pinned", default=None)


class EgressRefused(PermanentError):
    """The destination is not a public address (or not http/https)."""


NAT64_PREFIXES = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address a 6to4, Teredo or NAT64 address carries, with the form's name; else ``None``."""
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip.teredo is not None:
        return "Teredo", ip.teredo[1]
    if any(ip in net for net in NAT64_PREFIXES):
        return "NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public destination, or ``None`` when it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return "an IPv6-mapped IPv4 address"
        carried = embedded_ipv4(ip)
        if carried is not None:
            form, inner = carried
            inner_reason = refusal_reason(inner)
            if inner_reason is not None:
                return f"a {form} form of {inner_reason} ({inner})"
            if form == "NAT64":
                return None  # a public IPv4 destination, through the network's translator
    checks = (
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "a non-public address"),
    )
    return next((reason for hit, reason in checks if hit), None)


class EgressGuard:
    def __init__(self, allow: list[IPNetwork]) -> None:
        self._allow = allow

    def allowed(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self._allow)

    def check_address(self, host: str, ip: IPAddress) -> None:
        if self.allowed(ip):
            return
        reason = refusal_reason(ip)
        if reason is not None:
            raise EgressRefused(f"refused: {host} is {reason} ({ip})")

    async def vet(self, url: URL) -> str:
        """Check scheme and host of ``url``, resolve it once and pin the address; returns it."""
        if url.scheme not in ("http", "https"):
            raise EgressRefused(f"refused: scheme {url.scheme or '(none)'!r} is not http or https")
        host = url.raw_host or ""
        if not host:
            raise EgressRefused("refused: the URL has no host")
        host = host.strip("[]").lower()
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            self.check_address(host, literal)
            address = str(literal)
        else:
            address = await self._resolve(host, url.port or 0)
        _PINNED.set({**(_PINNED.get() or {}), host: address})
        return address

    async def _resolve(self, host: str, port: int) -> str:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise TransientError(f"cannot resolve {host}") from exc
        if not infos:
            raise TransientError(f"cannot resolve {host}")
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        for ip in addresses:  # every answer must be acceptable, not just the first
            self.check_address(host, ip)
        return str(addresses[0])


class PinnedResolver(AbstractResolver):
    """Hands aiohttp only the address the guard vetted for this task; anything else fails."""

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        pinned = _PINNED.get() or {}
        address = pinned.get(host.strip("[]").lower())
        if address is None:
            raise OSError(f"egress to {host} was not vetted")
        fam = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [ResolveResult(hostname=host, host=address, port=port, family=fam, proto=0, flags=socket.AI_NUMERICHOST)]

    async def close(self) -> None:
        return None
