"""Which key each of auth's rate limits counts against.

- Failed logins per email are counted per **(email, client)**: guessing at
  someone's password from one client slows that client down on that email,
  and cannot lock the owner (or anyone else) out of it.  A client spraying
  many emails is stopped by the per-client limit.
- Failed logins and registrations per client: the client key of
  :mod:`libs.common.http.client_ip` (the address behind trusted proxies;
  IPv6 bucketed by /64).

The buckets are :class:`libs.common.ratelimit.TokenBuckets`, in memory, per replica.
"""

from __future__ import annotations

from libs.common.http.client_ip import client_address, client_key, parse_networks, rate_key
from libs.common.ratelimit import TokenBuckets

__all__ = ["TokenBuckets", "client_address", "client_key", "email_client_key", "parse_networks", "rate_key"]


def email_client_key(email: str, client: str) -> str:
    """The per-email login bucket of ``email`` tried from ``client`` (a client key)."""
    return f"{client} {email}"
