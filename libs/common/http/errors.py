"""Domain errors that HTTP handlers raise; the middleware maps each to one status and code."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Base class. Subclasses fix ``status`` and ``code``."""

    status: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}
        if code is not None:
            self.code = code


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class ValidationFailed(ApiError):
    status, code = 422, "validation_error"


class _RetryLater(ApiError):
    """Answered with ``Retry-After`` (whole seconds, at least 1)."""

    def __init__(self, message: str, *, retry_after: float = 1.0, details: Any = None) -> None:
        super().__init__(message, details=details, headers={"Retry-After": str(max(1, round(retry_after)))})


class RateLimited(_RetryLater):
    status, code = 429, "rate_limited"


class ServiceUnavailable(_RetryLater):
    status, code = 503, "service_unavailable"
