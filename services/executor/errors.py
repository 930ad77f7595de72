"""How a run can fail: one base, one class per way the executor reacts."""

from __future__ import annotations


class ActionError(Exception):
    """Base class for failures of one try of an action."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TransientError(ActionError):
    """Worth retrying later (5xx, 408, 429, timeouts, connection errors)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ActionError):
    """Retrying cannot help (other 4xx, missing credential, bad template, refused URL)."""


class BreakerOpen(Exception):
    """The (tenant, connector) breaker is open: defer without burning an attempt."""

    def __init__(self, remaining: float) -> None:
        super().__init__(f"circuit open for {remaining:.1f}s")
        self.remaining = remaining
