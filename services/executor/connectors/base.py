"""What every connector receives and returns, and how HTTP answers map to errors."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Generic, NoReturn, TypeVar

from services.executor.connectors.configs import RenderedConfig
from services.executor.errors import PermanentError, TransientError

C = TypeVar("C", bound=RenderedConfig, covariant=True)


@dataclass(frozen=True, slots=True)
class ActionCall(Generic[C]):
    """One try of one action: its config rendered and validated into the connector's model
    (:mod:`services.executor.connectors.configs`)."""

    event_id: str
    tenant_id: str
    config: C
    secret: dict[str, Any] = field(default_factory=dict)
    # W3C trace context for the target (``traceparent``...), when the connector's type propagates it.
    trace_headers: Mapping[str, str] = field(default_factory=dict)


# A connector takes the call with its own config model (``ActionCall[SlackMessage]``).  The runner finds
# both the model (``RENDERED_CONFIGS``) and the connector by the action's type, so one registry holds
# connectors of every model.
Connector = Callable[[ActionCall[Any]], Awaitable[dict[str, Any]]]


def with_trace(headers: Mapping[str, str], call: ActionCall[RenderedConfig]) -> Mapping[str, str]:
    """``headers`` plus the call's trace context (``headers`` itself when there is none)."""
    return {**headers, **call.trace_headers} if call.trace_headers else headers


TRANSIENT_STATUSES = frozenset({408, 425, 429})


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` as seconds (delta or HTTP date); ``None`` when absent or unreadable."""
    raw = headers.get("Retry-After")
    if not raw:
        return None
    raw = raw.strip()
    with contextlib.suppress(ValueError):
        return max(0.0, float(raw))
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def raise_for_status(
    service: str, status: int, body: str, headers: Mapping[str, str], retry_after: float | None = None
) -> NoReturn:
    """Map a non-success answer to a transient or a permanent error."""
    snippet = body[:200]
    if status >= 500 or status in TRANSIENT_STATUSES:
        wait = retry_after if retry_after is not None else retry_after_seconds(headers)
        raise TransientError(f"{service} answered {status}: {snippet}", retry_after=wait, http_status=status)
    raise PermanentError(f"{service} answered {status}: {snippet}", http_status=status)
