"""How a run can fail: one base, one class per way the executor reacts."""

from __future__ import annotations


class ActionError(Exception):
    """Base class for failures of one try of an action; ``http_status`` is the target's answer, if any."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status


class TransientError(ActionError):
    """Worth retrying later (5xx, 408, 429, timeouts, connection errors)."""

    def __init__(self, message: str, *, retry_after: float | None = None, http_status: int | None = None) -> None:
        super().__init__(message, http_status=http_status)
        self.retry_after = retry_after


class PermanentError(ActionError):
    """Retrying cannot help (other 4xx, missing credential, bad template, refused URL)."""


class BreakerOpen(Exception):
    """The (tenant, connector) breaker is open: the try fails fast, without calling the target."""

    def __init__(self, remaining: float) -> None:
        super().__init__(f"circuit open for {remaining:.1f}s")
        self.remaining = remaining
