"""What can go wrong in a command, each with the exit code scripts rely on.

- 0: done;
- 1: the API refused the request (a 4xx: not found, invalid, unauthorised);
- 2: usage (a bad option, an unreadable file, no server or login configured);
- 3: the server could not be reached, or answered 5xx.
"""

from __future__ import annotations

from typing import Any

EXIT_API = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


class CliError(Exception):
    """Base class: a message for the user and the process's exit code."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_json(self) -> dict[str, Any]:
        return {"error": {"code": "usage", "message": self.message}}


class UsageError(CliError):
    """The command line or a file it names is wrong; nothing was sent."""


class ApiError(CliError):
    """A 4xx answer: the envelope's ``error`` (code, message, details)."""

    exit_code = EXIT_API

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{message} (HTTP {status}, {code})")
        self.status = status
        self.code = code
        self.details = details

    def as_json(self) -> dict[str, Any]:
        return {"error": {"status": self.status, "code": self.code, "message": self.message, "details": self.details}}


class Unavailable(CliError):
    """The server is unreachable, timed out, or answered 5xx."""

    exit_code = EXIT_UNAVAILABLE

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    def as_json(self) -> dict[str, Any]:
        return {"error": {"status": self.status, "code": "unavailable", "message": self.message}}
