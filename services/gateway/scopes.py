"""Which scope an API key needs for a route (a user's token may do everything in its tenant).

- ``admin``: ``/api/keys`` (create, list, revoke keys);
- ``replay``: ``POST /api/dlq/replay`` and ``POST /api/dlq/{event_id}/replay``;
- ``read``: every other ``GET`` (and ``HEAD``);
- ``write``: every other change (workflows, credentials, runs, dry-runs, secret rotation).

``/api/auth/*`` (log out) is about tokens: no API key may call it.
"""

from __future__ import annotations

from libs.common.auth.api_keys import Scope

_READS = frozenset({"GET", "HEAD"})


def required_scope(method: str, path: str) -> Scope | None:
    """The scope a key needs for ``method path``; None when no API key may call it."""
    if path.startswith("/api/auth/"):
        return None
    if path == "/api/keys" or path.startswith("/api/keys/"):
        return Scope.ADMIN
    if method == "POST" and path.startswith("/api/dlq/") and path.endswith("/replay"):
        return Scope.REPLAY
    return Scope.READ if method in _READS else Scope.WRITE
