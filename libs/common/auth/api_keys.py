"""API keys: their shape, their scopes, and the digest that is all Postgres keeps of them.

A key is ``ipk_`` and 43 base64url characters (32 random bytes, 256 bits).
Postgres keeps its SHA-256 digest: a key that high in entropy needs no salt
or slow hash (nobody can guess one to match a leaked digest), and the digest
lets a verifier find the key with one indexed lookup.  The first 12
characters (``ipk_`` and 8 more) are kept in clear as the key's ``prefix``,
so a user can tell keys apart in a list; they do not help guess the rest.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from enum import StrEnum

KEY_PREFIX = "ipk_"
KEY_BYTES = 32
SHOWN_PREFIX_CHARS = 12
KEY_RE = re.compile(r"^ipk_[A-Za-z0-9_-]{43}$")


class Scope(StrEnum):
    READ = "read"  # every GET
    WRITE = "write"  # workflow and credential changes, runs, dry-runs
    REPLAY = "replay"  # DLQ replays, single and bulk
    ADMIN = "admin"  # API keys: create, list, revoke


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def is_api_key(token: str) -> bool:
    """A bearer credential that is meant as an API key (well-formed or not: it is never a JWT)."""
    return token.startswith(KEY_PREFIX)


def well_formed(token: str) -> bool:
    return KEY_RE.match(token) is not None


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("ascii", "replace")).digest()


def shown_prefix(key: str) -> str:
    return key[:SHOWN_PREFIX_CHARS]
