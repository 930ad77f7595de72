"""``--since 2h`` and friends: a duration or a timestamp, as an aware UTC datetime."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from ipaas_cli.errors import UsageError

_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``90s``, ``15m``, ``2h``, ``7d``, ``1w`` (ago), or an ISO 8601 time (UTC when no offset)."""
    now = now or datetime.now(UTC)
    match = _DURATION.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise UsageError(f"not a duration (like 2h, 30m, 7d) or an ISO 8601 time: {text!r}") from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")
