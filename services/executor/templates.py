"""Render an action's config from the event payload with Jinja2's sandbox.

Strings anywhere in the config are templates (``{{ payload.order_id }}``).
Undefined variables, syntax errors and sandbox violations are permanent
errors: retrying the same event cannot fix them.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from libs.common.models.events import EventEnvelope
from services.executor.errors import PermanentError

MAX_RENDERED_CHARS = 100_000

_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, auto_reload=False)

# The common case, ``text {{ payload.a.b }} text``, is rendered without Jinja when every looked-up
# value is a plain scalar in a dict; anything else (filters, methods, lists...) goes to the sandbox.
_SIMPLE_EXPR = re.compile(r"\{\{\s*payload((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*\}\}")
_DICT_ATTRS = frozenset(dir(dict))
_SCALARS = (str, int, float, bool)
Segments = tuple[tuple[str, tuple[str, ...] | None], ...]


@lru_cache(maxsize=4096)
def _simple(source: str) -> Segments | None:
    """Split ``source`` into literals and payload paths, or ``None`` if it needs Jinja."""
    segments: list[tuple[str, tuple[str, ...] | None]] = []
    pos = 0
    for match in _SIMPLE_EXPR.finditer(source):
        literal = source[pos:match.start()]
        if "{" in literal or "}" in literal:
            return None
        path = tuple(match.group(1)[1:].split("."))
        if any(part in _DICT_ATTRS or part.startswith("_") for part in path):
            return None
        segments.append((literal, path))
        pos = match.end()
    tail = source[pos:]
    if "{" in tail or "}" in tail:
        return None
    segments.append((tail, None))
    return tuple(segments)


def _fast(segments: Segments, payload: Any) -> str | None:
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


@lru_cache(maxsize=4096)
def _compiled(source: str) -> Any:
    return _ENV.from_string(source)


def render_string(source: str, context: dict[str, Any]) -> str:
    if "{" not in source:
        return source  # nothing to render
    segments = _simple(source)
    if segments is not None:
        fast = _fast(segments, context.get("payload"))
        if fast is not None and len(fast) <= MAX_RENDERED_CHARS:
            return fast
    try:
        out = str(_compiled(source).render(context))
    except TemplateError as exc:
        raise PermanentError(f"template error: {exc.message or type(exc).__name__}") from exc
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        raise PermanentError(f"template error: {type(exc).__name__}: {exc}") from exc
    if len(out) > MAX_RENDERED_CHARS:
        raise PermanentError(f"template output is longer than {MAX_RENDERED_CHARS} characters")
    return out


def render_value(value: Any, context: dict[str, Any], _depth: int = 0) -> Any:
    """Render every string inside a JSON-like value (keys stay as they are)."""
    if _depth > 32:
        raise PermanentError("template error: config nests too deeply")
    if isinstance(value, str):
        return render_string(value, context)
    if isinstance(value, dict):
        return {k: render_value(v, context, _depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, context, _depth + 1) for v in value]
    return value


def render_config(config: dict[str, Any], payload: Any, event: Any) -> dict[str, Any]:
    context = {"payload": payload, "event": event}
    rendered = render_value(config, context)
    assert isinstance(rendered, dict)
    return rendered


class EventContext:
    """``event`` in templates; fields are computed only when a template reads them."""

    __slots__ = ("_event",)

    def __init__(self, event: EventEnvelope) -> None:
        self._event = event

    @property
    def id(self) -> str:
        return str(self._event.event_id)

    @property
    def workflow_id(self) -> str:
        return str(self._event.workflow_id)

    @property
    def trigger(self) -> str:
        return self._event.trigger.value

    @property
    def received_at(self) -> str:
        return self._event.received_at.isoformat()

    @property
    def scheduled_for(self) -> str | None:
        return self._event.scheduled_for.isoformat() if self._event.scheduled_for else None
