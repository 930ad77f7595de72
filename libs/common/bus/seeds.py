"""``NATS_URL`` as a seed list: one server or several, separated by commas, and who connects.

``nats://gateway:pw@nats-0:4222,nats://gateway:pw@nats-1:4222`` and
``nats://gateway:pw@nats-0:4222,nats://nats-1:4222`` both connect as ``gateway`` to either
server.  Invariants:

- The credentials are those of the process, not of one server: they are taken out of the
  URLs and given to the client once, so they also apply to the servers the cluster
  announces (nats-py keeps credentials per URL, and an announced server's URL has none: a
  reconnect to it would be refused).
- Every entry that carries credentials carries the same ones, and the entries share one
  scheme family (``nats``/``tls`` or ``ws``/``wss``); anything else is a configuration
  mistake, reported with the password masked.
- A user without a password is a token, as nats-py reads it.
- Values are taken as they stand (no percent-decoding), as nats-py does with a single URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from libs.common.bus.errors import BusMisconfigured


@dataclass(frozen=True, slots=True)
class SeedList:
    servers: list[str]
    user: str | None = None
    password: str | None = None
    token: str | None = None


def redact(url: str) -> str:
    """``url`` (one URL or a seed list) with the credentials of every entry replaced by ``***``."""
    return ",".join(_redact_one(e.strip()) for e in url.split(","))


def _redact_one(entry: str) -> str:
    scheme, sep, rest = entry.partition("://")
    if not sep:
        scheme, rest = "", entry
    netloc, slash, path = rest.partition("/")
    if "@" not in netloc:
        return entry
    return f"{scheme}{sep}***@{netloc.rpartition('@')[2]}{slash}{path}"


def parse_seed_list(url: str) -> SeedList:
    """Split ``url`` into its servers and the one identity they are reached as."""
    entries = [e.strip() for e in url.split(",")]
    if not entries or any(not e for e in entries):
        raise BusMisconfigured(f"NATS_URL has an empty entry: {redact(url)!r}")
    servers: list[str] = []
    identities: set[tuple[str, str | None]] = set()
    families: set[str] = set()
    for entry in entries:
        if "://" not in entry:
            entry = f"nats://{entry}"
        try:
            parts = urlsplit(entry)
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError as exc:
            raise BusMisconfigured(f"NATS_URL entry {redact(entry)!r} is not a URL: {exc}") from None
        if not parts.hostname:
            raise BusMisconfigured(f"NATS_URL entry {redact(entry)!r} names no host")
        families.add("ws" if parts.scheme in ("ws", "wss") else parts.scheme)
        if parts.username is not None:
            identities.add((parts.username, parts.password))
        servers.append(parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl())
    if not families <= {"nats", "tls", "ws"}:
        raise BusMisconfigured(f"NATS_URL has an unknown scheme: {redact(url)!r}")
    if "ws" in families and len(families) > 1:
        raise BusMisconfigured(f"NATS_URL mixes websocket and plain entries: {redact(url)!r}")
    if len(identities) > 1:
        raise BusMisconfigured(f"NATS_URL entries carry different credentials: {redact(url)!r}")
    if not identities:
        return SeedList(servers)
    user, password = identities.pop()
    if password is None:
        return SeedList(servers, token=user)
    return SeedList(servers, user=user, password=password)
