"""What needs Jinja at all, and the common case rendered without it.

A string is a template only if it contains Jinja markup (``{{``, ``{%`` or
``{#``); any other string renders as itself. ``text {{ payload.a.b }} text``
with a plain scalar at every path is rendered by string joins; anything else
(filters, methods, lists, missing keys...) goes to the sandbox, which gives the
same result or the error.
"""

from __future__ import annotations

import re
from typing import Any

_MARKUP = re.compile(r"\{[{%#]")
_SIMPLE_EXPR = re.compile(r"\{\{\s*payload((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*\}\}")
_DICT_ATTRS = frozenset(dir(dict))
_SCALARS = (str, int, float, bool)
Segments = tuple[tuple[str, tuple[str, ...] | None], ...]


def is_template(source: str) -> bool:
    return "{" in source and _MARKUP.search(source) is not None


def simple_segments(source: str) -> Segments | None:
    """Split ``source`` into literals and payload paths, or ``None`` if it needs Jinja."""
    segments: list[tuple[str, tuple[str, ...] | None]] = []
    pos = 0
    for match in _SIMPLE_EXPR.finditer(source):
        literal = source[pos : match.start()]
        if "{" in literal or "}" in literal:
            return None
        path = tuple(match.group(1)[1:].split("."))
        if any(part in _DICT_ATTRS or part.startswith("_") for part in path):
            return None
        segments.append((literal, path))
        pos = match.end()
    tail = source[pos:]
    if "{" in tail or "}" in tail or tail.endswith("\n") or "\r" in source:
        return None  # Jinja drops one trailing newline and normalises \r\n: leave those to it
    segments.append((tail, None))
    return tuple(segments)


def render_simple(segments: Segments, payload: Any) -> str | None:
    out: list[str] = []
    for literal, path in segments:
        out.append(literal)
        if path is None:
            continue
        value = payload
        for part in path:
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        if not isinstance(value, _SCALARS):
            return None
        out.append(str(value))
    return "".join(out)
