"""JSON values a request may carry: what Postgres, orjson and every consumer downstream can hold.

Python's ``json`` reads integers of any size, ``NaN``, ``Infinity`` and
numbers that overflow to ``inf``, and strings with NUL characters or lone
surrogates.  None of those can be carried further: jsonb refuses NUL and
lone surrogates, and non-finite numbers, and orjson (the bus's encoder)
refuses integers outside 64 bits.  Such a value, accepted at the edge,
fails later, far from the request: in a relay, in another tenant's batch.

:func:`uncarriable_values` finds them once, at the body-parsing edge, and
names each field by its path (``payload.items.3.id``, the form of pydantic's
``details``; ``body`` for the document itself).

Numbers written with an exponent are held to the same 64-bit range as
integers (``1e19`` is refused like ``10000000000000000000``): JSON Schema,
which the OpenAPI document speaks, cannot tell the two spellings apart, and
a float that large has no fraction left anyway.  It walks iteratively, so a
deeply nested document cannot exhaust the stack, and builds a path only for
a value it reports.
"""

from __future__ import annotations

import math
from typing import Any

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_REPORTED = 20
_BAD_KEY = "object keys may not hold NUL characters or lone surrogates"

# A path is a linked list (key, parent), so walking a large document allocates no strings.
_Path = tuple[str | int, Any] | None


def uncarriable_values(document: Any) -> list[dict[str, str]]:
    """``[{"field", "message", "type"}]`` for each value that cannot be carried (at most 20); empty if none."""
    found: list[dict[str, str]] = []
    stack: list[tuple[_Path, Any]] = [(None, document)]
    while stack and len(found) < MAX_REPORTED:
        path, item = stack.pop()
        if isinstance(item, str):
            if not _storable(item):
                found.append(_problem(path, "NUL characters and lone surrogates are not allowed", "string_unstorable"))
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                found.append(_problem(path, "integers must be within the signed 64-bit range", "int_out_of_range"))
        elif isinstance(item, float):
            if not math.isfinite(item):
                found.append(_problem(path, "numbers must be finite", "float_not_finite"))
            elif not INT64_MIN <= item <= INT64_MAX:
                found.append(_problem(path, "numbers must be within the signed 64-bit range", "number_out_of_range"))
        elif isinstance(item, dict):
            for key, value in item.items():
                if not _storable(key):
                    # The key itself is not echoed: it could not even be encoded in the answer.
                    found.append(_problem(path, _BAD_KEY, "string_unstorable"))
                    continue
                stack.append(((key, path), value))
        elif isinstance(item, list):
            stack.extend(((i, path), value) for i, value in enumerate(item))
    return sorted(found, key=lambda problem: problem["field"])


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _problem(path: _Path, message: str, kind: str) -> dict[str, str]:
    return {"field": _render(path), "message": message, "type": kind}


def _render(path: _Path) -> str:
    parts: list[str] = []
    while path is not None:
        key, path = path
        parts.append(str(key))
    return ".".join(reversed(parts)) or "body"
