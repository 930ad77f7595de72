"""Query parameters of the list routes, and the page cursor they carry.

A query string is text.  Each field here reads one parameter with the rule
the OpenAPI document states for it (the document is generated from these
models), so a value that breaks the rule is a 422 naming the parameter, never
taken for an absent one: ``limit=``, ``workflow_id=`` or
``include_replayed=yes`` are refused, not ignored.  Parameters a model does
not name are ignored.

- integers are ASCII digits only (no sign, space, ``_`` or ``.0``);
- booleans are ``true`` or ``false``;
- ``limit`` is at least 1 and at most the service's page maximum, passed as
  the validation context ``{"page_max": n}`` (a setting, so not in the model);
- a cursor is ``<microseconds since the epoch>.<uuid>``, the key of the last
  row of the previous page.  Clients treat it as opaque; every string that
  matches :data:`CURSOR_PATTERN` decodes, so the pattern is the whole rule.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from libs.common.models.events import ExecutionStatus, Trigger

PAGE_MAX = "page_max"  # the validation-context key of the largest allowed limit
CURSOR_PATTERN = r"^[0-9]{1,17}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MAX_DIGITS = 9


def _whole_number(value: Any) -> Any:
    if isinstance(value, str) and not (value.isascii() and value.isdigit() and len(value) <= _MAX_DIGITS):
        raise PydanticCustomError("int_parsing", "must be a whole number written with digits only")
    return value


def _true_or_false(value: Any) -> Any:
    if isinstance(value, str):
        if value not in ("true", "false"):
            raise PydanticCustomError("bool_parsing", "must be true or false")
        return value == "true"
    return value


Limit = Annotated[int, Field(ge=1), BeforeValidator(_whole_number)]
QueryBool = Annotated[bool, BeforeValidator(_true_or_false)]
_OPAQUE_CURSOR = Field(description="Opaque: meta.next_cursor of the previous page.")
Cursor = Annotated[str, StringConstraints(pattern=CURSOR_PATTERN), _OPAQUE_CURSOR]


def encode_cursor(at: datetime, row_id: uuid.UUID) -> str:
    return f"{(at - _EPOCH) // _MICROSECOND}.{row_id}"


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The ``(timestamp, id)`` key of a cursor that matched :data:`CURSOR_PATTERN`."""
    micros, _, row_id = cursor.partition(".")
    return _EPOCH + int(micros) * _MICROSECOND, uuid.UUID(row_id)


class LimitQuery(BaseModel):
    """``limit`` of every list."""

    model_config = ConfigDict(extra="ignore")
    limit: Limit | None = None

    @field_validator("limit")
    @classmethod
    def _within_page_max(cls, value: int | None, info: ValidationInfo) -> int | None:
        maximum = (info.context or {}).get(PAGE_MAX)
        if value is not None and maximum is not None and value > maximum:
            raise PydanticCustomError("less_than_equal", "Input should be less than or equal to {le}", {"le": maximum})
        return value


class PageQuery(LimitQuery):
    """``limit`` and ``cursor`` of every list of rows keyed by ``(created, id)``."""

    cursor: Cursor | None = None

    @property
    def after(self) -> tuple[datetime, uuid.UUID] | None:
        return decode_cursor(self.cursor) if self.cursor is not None else None


VERSION_CURSOR_PATTERN = r"^v[1-9][0-9]{0,8}$"  # a version number (below 2^31)
VersionCursor = Annotated[str, StringConstraints(pattern=VERSION_CURSOR_PATTERN), _OPAQUE_CURSOR]


def encode_version_cursor(version: int) -> str:
    return f"v{version}"


class VersionPageQuery(LimitQuery):
    """``GET /api/workflows/{id}/versions``: paged by version number, oldest first."""

    cursor: VersionCursor | None = None

    @property
    def after_version(self) -> int:
        """The version this page starts after (0: from the first)."""
        return int(self.cursor[1:]) if self.cursor is not None else 0


RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not RFC3339.match(value):
        raise PydanticCustomError(
            "datetime_parsing", "must be an RFC 3339 date-time with an offset, e.g. 2026-01-31T08:00:00Z"
        )
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
Since = Annotated[Instant, Field(description="From this instant on (inclusive): RFC 3339 with an offset.")]
Until = Annotated[Instant, Field(description="Before this instant (exclusive): RFC 3339 with an offset.")]


class TimeRange(BaseModel):
    """``since`` and ``until`` of a list (an empty range is an empty list, not an error)."""

    since: Since | None = None
    until: Until | None = None


class ExecutionQuery(PageQuery, TimeRange):
    """``GET /api/executions``: ``since``/``until`` bound ``created_at`` (when the event was first taken)."""

    workflow_id: uuid.UUID | None = None
    status: ExecutionStatus | None = None
    event_id: uuid.UUID | None = None
    trigger: Trigger | None = None


class DeadLetterQuery(PageQuery, TimeRange):
    """``GET /api/dlq``: entries not replayed yet, unless ``include_replayed=true``.

    ``reason``, ``since`` and ``until`` match as in a bulk replay's filter (a part of the reason,
    case-insensitive; ``dead_at``), so a list shows what ``POST /api/dlq/replay`` would take.
    """

    workflow_id: uuid.UUID | None = None
    include_replayed: QueryBool = False
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=r"^[^\x00]*$")] | None = None
