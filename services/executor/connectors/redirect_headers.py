"""Which request headers may follow a redirect.

A redirect to another origin (scheme, host or port differ) or from https to
http must not carry credentials: ``Authorization``, ``Cookie``,
``Proxy-Authorization`` and every header the credential supplied are dropped,
as browsers and ``requests`` do.  Once dropped they stay dropped for the rest
of the chain, even if a later hop comes back to the first origin.
"""

from __future__ import annotations

from collections.abc import Iterable

from yarl import URL

ALWAYS_SENSITIVE = frozenset({"authorization", "cookie", "proxy-authorization"})


def origin(url: URL) -> tuple[str, str, int | None]:
    return (url.scheme.lower(), (url.host or "").lower(), url.port)


def crosses_boundary(before: URL, after: URL) -> bool:
    """True when a hop from ``before`` to ``after`` leaves the origin or downgrades https to http."""
    if before.scheme.lower() == "https" and after.scheme.lower() != "https":
        return True
    return origin(before) != origin(after)


def strip_credentials(headers: dict[str, str], credential_names: Iterable[str]) -> dict[str, str]:
    """``headers`` without the always-sensitive ones and without the credential's (names compared case-blind)."""
    drop = ALWAYS_SENSITIVE | {name.lower() for name in credential_names}
    return {name: value for name, value in headers.items() if name.lower() not in drop}
