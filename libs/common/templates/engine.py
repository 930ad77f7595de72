"""Render every string of an action config: fast path, compile cache, budgeted sandbox.

One ``Budget`` covers one config (all its strings), created at the first
string that needs Jinja. Output is streamed from the template's render
function and stops as soon as it passes ``max_output_chars``.

Compiling happens inline, or is left to the caller (``compile_inline=False``
raises ``NeedsCompile``): an async caller then compiles off its event loop
with ``compile_sources`` (safe in any thread: it touches no shared state),
hands the results to ``remember`` and renders again with them (so they are
used even when the cache is too small to keep them).

Errors are ``TemplateProblem`` subclasses whose ``path`` says where in the
config the failing string is.

Under the top-level keys given as ``typed_keys`` (a JSON body), a string that
is exactly one ``{{ expr }}`` renders to the expression's typed value
(:mod:`libs.common.templates.typed`); everywhere else a template gives text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import orjson
from jinja2 import Template
from jinja2.exceptions import TemplateError

from libs.common.templates.cache import DEFAULT_CACHE_BYTES, Entry, TemplateCache, cost_of
from libs.common.templates.errors import TemplateFailed, TemplateInvalid, TemplateLimitExceeded, TemplateProblem
from libs.common.templates.fastpath import is_template, render_simple, simple_segments
from libs.common.templates.limits import BUDGET, MAX_CONFIG_DEPTH, Budget, TemplateLimits
from libs.common.templates.sandbox import BoundedEnvironment, Compiled, shared_environment
from libs.common.templates.typed import Capture, json_value, typed_expression, typed_source

Path = tuple[str | int, ...]
MAX_MESSAGE_CHARS = 1000
OUTPUT_BATCH = 16


class NeedsCompile(Exception):
    """A template the cache has not compiled yet, met with ``compile_inline=False``."""


Results = dict[str, Compiled | TemplateInvalid]


@dataclass(slots=True)
class _Run:
    inline: bool
    compiled: Results | None
    typed_keys: frozenset[str]
    budget: Budget | None = None


_MISSING = object()


def _simple_path(source: str) -> tuple[str, ...] | None:
    """The payload path of exactly ``{{ payload.a.b }}`` (the typed fast path), else None."""
    segments = simple_segments(source)
    if segments is None or len(segments) != 2 or segments[0][0] or segments[1] != ("", None):
        return None
    return segments[0][1]


def _payload_at(payload: Any, path: tuple[str, ...]) -> Any:
    value = payload
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def walk_strings(value: Any) -> Iterator[tuple[Path, str]]:
    """Every string of a JSON value with its path, in document order; too deep is ``TemplateInvalid``."""
    stack: list[tuple[Path, Any, int]] = [((), value, 0)]
    while stack:
        path, item, depth = stack.pop()
        if isinstance(item, str):
            yield path, item
        elif isinstance(item, dict | list):
            if depth >= MAX_CONFIG_DEPTH:
                raise TemplateInvalid(f"config nests more than {MAX_CONFIG_DEPTH} levels", path=path)
            children = list(item.items() if isinstance(item, dict) else enumerate(item))
            stack.extend((path + (key,), child, depth + 1) for key, child in reversed(children))


class TemplateEngine:
    def __init__(
        self,
        limits: TemplateLimits | None = None,
        *,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        environment: BoundedEnvironment | None = None,
    ) -> None:
        self.limits = limits or TemplateLimits()
        self.environment = environment or shared_environment()
        self.cache = TemplateCache(cache_bytes)
        self._cached, self._touch = self.cache.lookups()
        self._max_output = self.limits.max_output_chars

    # --- rendering ------------------------------------------------------------------------------

    def render_config(
        self,
        config: dict[str, Any],
        context: dict[str, Any],
        *,
        compile_inline: bool = True,
        compiled: Results | None = None,
        typed_keys: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        """``compiled``: results of ``compile_sources`` to use even if the cache could not keep them.

        ``typed_keys``: top-level keys whose strings render typed when they are exactly one ``{{ expr }}``.
        """
        rendered = self._value(config, context, _Run(compile_inline, compiled, typed_keys), 0)
        assert isinstance(rendered, dict)
        return rendered

    def _value(self, value: Any, context: dict[str, Any], run: _Run, depth: int, typed: bool = False) -> Any:
        if isinstance(value, str):
            if "{" not in value:
                return value
            if typed:
                expression = typed_expression(value)
                if expression is not None:
                    return self._typed(value, expression, context, run)
            entry = self._cached(value)
            if entry is None:
                entry = self._entry(value)
            else:
                self._touch(value)
            if entry.simple is not None:  # the fast path, inline: most strings end here
                fast = render_simple(entry.simple, context.get("payload"))
                if fast is not None:
                    if len(fast) > self._max_output:
                        raise self._output_too_long()
                    return fast
            return self._slow(value, entry, context, run)
        if not isinstance(value, dict | list):
            return value
        if depth >= MAX_CONFIG_DEPTH:
            raise TemplateInvalid(f"config nests more than {MAX_CONFIG_DEPTH} levels")
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                try:
                    out[key] = self._value(
                        item, context, run, depth + 1, typed or (depth == 0 and key in run.typed_keys)
                    )
                except TemplateProblem as exc:
                    exc.path = (key, *exc.path)
                    raise
            return out
        items: list[Any] = []
        for index, item in enumerate(value):
            try:
                items.append(self._value(item, context, run, depth + 1, typed))
            except TemplateProblem as exc:
                exc.path = (index, *exc.path)
                raise
        return items

    def _typed(self, source: str, expression: str, context: dict[str, Any], run: _Run) -> Any:
        """The value of a string that is exactly one expression: from the payload, or through the sandbox."""
        path = _simple_path(source)
        value = _MISSING if path is None else _payload_at(context.get("payload"), path)
        if value is _MISSING:
            typed = typed_source(expression)
            entry = self._cached(typed)
            if entry is None:
                entry = self._entry(typed)
            else:
                self._touch(typed)
            with Capture() as captured:
                self._slow(typed, entry, context, run)
            if not captured:
                raise TemplateFailed("the expression gave no value")
            value = json_value(captured[-1])
        if len(orjson.dumps(value, default=str)) > self._max_output:
            raise self._output_too_long()
        return value

    def _slow(self, source: str, entry: Entry, context: dict[str, Any], run: _Run) -> str:
        if entry.literal:
            return source
        compiled = entry.compiled
        if compiled is None and run.compiled is not None and source in run.compiled:
            result = run.compiled[source]
            if isinstance(result, TemplateInvalid):
                raise TemplateInvalid(result.message)
            compiled = result
        if compiled is None:
            if entry.error is not None:
                raise TemplateInvalid(entry.error)
            if not run.inline:
                raise NeedsCompile(source)
            compiled = self._compile(source, entry)
        if run.budget is None:
            run.budget = Budget(self.limits)
        return self._render(compiled.template, context, run.budget)

    def _render(self, template: Template, context: dict[str, Any], budget: Budget) -> str:
        limit = self.limits.max_output_chars
        parts: list[str] = []
        size = 0
        token = BUDGET.set(budget)
        try:
            chunks = template.root_render_func(template.new_context(context))
            # Pulled a few at a time: one chunk is at most a value, so at most a few values past the limit.
            while batch := list(islice(chunks, OUTPUT_BATCH)):
                size += sum(map(len, batch))
                if size > limit:
                    raise self._output_too_long()
                parts += batch
            budget.check()
        except TemplateProblem:
            raise
        except RecursionError as exc:
            raise TemplateLimitExceeded("calls nest too deeply") from exc
        except MemoryError as exc:
            raise TemplateLimitExceeded("template needed too much memory") from exc
        except TemplateError as exc:
            raise TemplateFailed(_short(exc.message or type(exc).__name__)) from exc
        except Exception as exc:
            raise TemplateFailed(_short(f"{type(exc).__name__}: {exc}")) from exc
        finally:
            BUDGET.reset(token)
        return "".join(parts)

    def _output_too_long(self) -> TemplateLimitExceeded:
        return TemplateLimitExceeded(f"template output is longer than {self.limits.max_output_chars} characters")

    # --- compiling ------------------------------------------------------------------------------

    def _entry(self, source: str) -> Entry:
        literal = not is_template(source)
        entry = Entry(
            literal=literal, simple=None if literal else simple_segments(source), cost=cost_of(source, literal)
        )
        self.cache.put(source, entry)
        return entry

    def _compile(self, source: str, entry: Entry) -> Compiled:
        try:
            entry.compiled = self.environment.compile_checked(source)
        except TemplateInvalid as exc:
            entry.error = exc.message
            raise
        return entry.compiled

    def pending(self, config: Any, context: dict[str, Any], typed_keys: frozenset[str] = frozenset()) -> list[str]:
        """The templates that rendering ``config`` with ``context`` would compile (distinct, in order)."""
        seen: dict[str, None] = {}
        payload = context.get("payload")
        for where, text in walk_strings(config):
            if "{" not in text:
                continue
            source = text
            # A string under a typed key renders typed when it is exactly one expression.
            expression = typed_expression(text) if where and where[0] in typed_keys else None
            if expression is not None:
                path = _simple_path(text)
                if path is not None and _payload_at(payload, path) is not _MISSING:
                    continue
                source = typed_source(expression)
            if source in seen:
                continue
            entry = self.cache.get(source) or self._entry(source)
            if entry.literal or entry.compiled is not None or entry.error is not None:
                continue
            if entry.simple is None or render_simple(entry.simple, payload) is None:
                seen[source] = None
        return list(seen)

    def compile_sources(self, sources: list[str]) -> Results:
        """Compile without touching the cache (any thread)."""
        results: Results = {}
        for source in sources:
            try:
                results[source] = self.environment.compile_checked(source)
            except TemplateInvalid as exc:
                results[source] = exc
        return results

    def remember(self, results: Results) -> Results:
        """Keep ``results`` in the cache (as far as it holds them); returns them for ``render_config``."""
        for source, result in results.items():
            entry = self.cache.get(source) or self._entry(source)
            if isinstance(result, Compiled):
                entry.compiled = result
            else:
                entry.error = result.message
        return results


def _short(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE_CHARS else message[:MAX_MESSAGE_CHARS] + "..."
