"""Values Postgres refuses, made storable: one event's bad bytes stay that event's problem.

Postgres ``text`` holds no NUL character and only valid UTF-8; ``jsonb`` refuses the
``\\u0000`` escape.  A payload, a connector's output or an error message can carry either,
and if one row of a batched statement does, the whole batch fails.  These helpers replace NUL
with U+FFFD and unencodable code points (lone surrogates) with ``?``, and serialise JSON so that
integers beyond 64 bits are kept (Postgres ``numeric`` takes them; orjson does not).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

REPLACEMENT = "\ufffd"
_NUL_ESCAPE = b"\\u0000"


def pg_text(text: str) -> str:
    """``text`` with NUL replaced and unencodable code points made encodable."""
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def pg_text_or_none(text: str | None) -> str | None:
    return None if text is None else pg_text(text)


def clean(value: Any, _depth: int = 0) -> Any:
    """A copy of a JSON-like value whose strings (keys included) are storable."""
    if isinstance(value, str):
        return pg_text(value)
    if _depth > 64:
        return None
    if isinstance(value, dict):
        return {pg_text(str(k)): clean(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v, _depth + 1) for v in value]
    return value


def pg_json(value: Any) -> str:
    """JSON text that ``jsonb`` accepts, for any JSON-like value (non-JSON types become strings)."""
    try:
        raw = orjson.dumps(value, default=str)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(clean(value), default=str, ensure_ascii=False)
    if _NUL_ESCAPE in raw:
        return orjson.dumps(clean(value), default=str).decode()
    return raw.decode()


def pg_json_text(raw: str) -> str:
    """JSON text (e.g. a model's ``model_dump_json()``) made acceptable to ``jsonb``."""
    if "\\u0000" not in raw:
        return raw
    return pg_json(json.loads(raw))
