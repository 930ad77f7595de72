"""Typed templates: a string that is exactly one ``{{ expr }}`` yields the expression's value.

Inside a JSON body (``http_request``'s ``body``), ``"{{ payload.amount }}"``
gives ``42``, not ``"42"``; ``"{{ payload.items }}"`` gives the list itself.
A string with anything around the expression (``"order {{ payload.id }}"``),
or more than one, is text as before.

The value is taken with the same sandbox, budget and bounds as any template:
the expression is compiled as ``{{ (expr) | _typed_result }}``, and that
filter hands the value over through a ContextVar instead of printing it.
Then it is made JSON: mappings, lists and tuples, strings, numbers, booleans
and null as they are; dates as ISO 8601 text; anything else as its text.

Plus one filter templates need for dates: ``date`` formats an ISO 8601 text,
a datetime or a Unix timestamp with a ``strftime`` format.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, date, datetime
from typing import Any

from jinja2 import Undefined

from libs.common.templates.errors import TemplateFailed, TemplateLimitExceeded
from libs.common.templates.limits import MAX_CONFIG_DEPTH

CAPTURE_FILTER = "_typed_result"
MAX_DATE_FORMAT_CHARS = 200
DEFAULT_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

_CAPTURE: ContextVar[list[Any] | None] = ContextVar("typed_template_value", default=None)


def typed_expression(source: str) -> str | None:
    """The expression of a string that is exactly one ``{{ expr }}`` (whitespace control allowed), else None."""
    if not (source.startswith("{{") and source.endswith("}}")) or len(source) < 5:
        return None
    if source.count("{{") != 1 or source.count("}}") != 1 or "{%" in source or "{#" in source:
        return None
    inner = source[2:-2]
    inner = inner[1:] if inner.startswith(("-", "+")) else inner
    inner = inner[:-1] if inner.endswith("-") else inner
    return inner if inner.strip() else None


def typed_source(expression: str) -> str:
    """The template that evaluates ``expression`` and hands its value to :func:`capture`."""
    return "{{ (" + expression + ") | " + CAPTURE_FILTER + " }}"


def typed_result(value: Any) -> str:
    """The capturing filter: keeps ``value`` for the typed render in progress; prints nothing."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()  # the same error as printing it would give
    holder = _CAPTURE.get()
    if holder is not None:
        holder.append(value)
    return ""


class Capture:
    """``with Capture() as values:`` collects what :func:`typed_result` is given inside."""

    __slots__ = ("_token", "values")

    def __init__(self) -> None:
        self.values: list[Any] = []
        self._token: Any = None

    def __enter__(self) -> list[Any]:
        self._token = _CAPTURE.set(self.values)
        return self.values

    def __exit__(self, *exc: object) -> None:
        _CAPTURE.reset(self._token)


def json_value(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON data (see the module's docstring)."""
    if depth > MAX_CONFIG_DEPTH:
        raise TemplateLimitExceeded(f"value nests more than {MAX_CONFIG_DEPTH} levels")
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return str(value)  # Markup and other str subclasses become plain text
    if isinstance(value, dict):
        return {str(k): json_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v, depth + 1) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    return str(value)


def date_filter(value: Any, format: Any = DEFAULT_DATE_FORMAT) -> str:
    """``{{ event.received_at | date("%d %b %Y") }}``: ISO 8601 text, datetime or Unix seconds, formatted."""
    if not isinstance(format, str) or len(format) > MAX_DATE_FORMAT_CHARS:
        raise TemplateFailed(f"date: the format must be text of at most {MAX_DATE_FORMAT_CHARS} characters")
    moment: datetime
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            moment = datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise TemplateFailed(f"date: {value!r} is not a time") from exc
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        except ValueError as exc:
            raise TemplateFailed(f"date: {value[:40]!r} is not an ISO 8601 time") from exc
    else:
        raise TemplateFailed(f"date: cannot format a {type(value).__name__}")
    return moment.strftime(format)
