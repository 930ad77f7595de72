"""The one Jinja2 environment of the platform: the immutable sandbox with budget hooks and bounds.

The gateway compiles with it to check templates when a workflow is saved; the
executor renders with it. Both use ``compile_checked``, so a template that
passes the save-time check is one the executor can compile, and the reverse.

Hooks called from the generated code (see ``compiler.py``) and from Jinja2:
``call`` (every call: a step, the call depth, checks on amplifying methods, a
check of the result), ``call_binop`` (every arithmetic operator), ``loop_iter``,
``checked_value``, ``join_parts`` (``~``), ``concat`` (the buffers of macros,
blocks and ``{% set %}`` blocks), and ``str.format`` through a bounded
formatter. The environment holds no per-render state: the budget is found
through ``limits.BUDGET``, so one instance serves every render and thread.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache, update_wrapper
from typing import Any

from jinja2 import StrictUndefined, Template, nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.runtime import Context, markup_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEscapeFormatter, SandboxedFormatter
from markupsafe import Markup

from libs.common.templates.compiler import BoundedCodeGenerator, BoundedParser, prepare_tree
from libs.common.templates.errors import TemplateInvalid, TemplateLimitExceeded
from libs.common.templates.filters import bounded_lipsum, bounded_sum, guard_filter, guard_test
from libs.common.templates.limits import BUDGET, MAX_CALL_DEPTH, MAX_SOURCE_CHARS, MAX_VALUE_CHARS
from libs.common.templates.operations import FieldBound, binop, guard_call
from libs.common.templates.sizes import check_value, string_too_long, ticking
from libs.common.templates.typed import CAPTURE_FILTER, date_filter, typed_result

_FORMATS = ("format", "format_map")


class BoundedFormatter(FieldBound, SandboxedFormatter):
    pass


class BoundedEscapeFormatter(FieldBound, SandboxedEscapeFormatter):
    pass


@dataclass(frozen=True, slots=True)
class Compiled:
    template: Template
    tokens: int


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset(("+", "-", "*", "/", "//", "%", "**"))
    code_generator_class = BoundedCodeGenerator

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, auto_reload=False, optimized=False, cache_size=0)
        self.filters = {name: guard_filter(name, f) for name, f in self.filters.items()}
        self.filters["sum"] = guard_filter("sum", bounded_sum)
        self.filters["date"] = guard_filter("date", date_filter)
        self.filters[CAPTURE_FILTER] = typed_result  # typed templates (see typed.py); prints nothing
        tests: dict[str, Any] = self.tests
        self.tests = {name: guard_test(test) for name, test in tests.items()}
        self.globals["lipsum"] = bounded_lipsum

    # --- compiling ------------------------------------------------------------------------------

    def compile_checked(self, source: str) -> Compiled:
        """Compile within the static bounds; ``TemplateInvalid`` (with the line) otherwise."""
        if len(source) > MAX_SOURCE_CHARS:
            raise TemplateInvalid(f"template is longer than {MAX_SOURCE_CHARS} characters")
        parser: BoundedParser | None = None
        try:
            parser = BoundedParser(self, source)  # lexes the first token already
            tree = parser.parse()
            prepare_tree(tree)
            code = self._compile(self._generate(tree, None, None), "<template>")
        except TemplateSyntaxError as exc:
            where = f" (line {exc.lineno})" if exc.lineno else ""
            raise _invalid(f"{exc.message or 'syntax error'}{where}", parser) from None
        except (SyntaxError, RecursionError):
            # Python's own limits on the generated code (e.g. statically nested blocks).
            raise _invalid("template nests too deeply", parser) from None
        except MemoryError:
            raise _invalid("template is too large to compile", parser) from None
        except Exception as exc:  # noqa: BLE001 - whatever else the compiler raises, the template does not compile
            raise _invalid(f"template does not compile ({type(exc).__name__})", parser) from None
        # A plain dict of globals (not the ChainMap of make_globals): new_context copies it on every render.
        template = self.template_class.from_code(self, code, dict(self.globals), None)
        return Compiled(template, parser.tokens)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Every way in (``from_string`` too) gets the bounded parser and the hooks."""
        tree = BoundedParser(self, source).parse()
        prepare_tree(tree)
        return tree

    # --- hooks called by rendering code ---------------------------------------------------------

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = BUDGET.get()
        if budget is not None:
            budget.tick()
            if budget.depth >= MAX_CALL_DEPTH:
                raise TemplateLimitExceeded(f"calls nest too deeply (more than {MAX_CALL_DEPTH})")
            budget.depth += 1
        try:
            args = guard_call(__obj, args, kwargs)
            owner = getattr(__obj, "__self__", None)
            # Methods of a dict or list (get, items, copy...) return parts of a value already in bounds.
            parts = isinstance(owner, dict | list | tuple) and getattr(__obj, "__name__", "") != "fromkeys"
            return check_value(super().call(__context, __obj, *args, **kwargs), walk=not parts)
        finally:
            if budget is not None:
                budget.depth -= 1

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = BUDGET.get()
        if budget is not None:
            budget.tick()
        return binop(operator, left, right)

    def loop_iter(self, iterable: Any) -> Any:
        budget = BUDGET.get()
        return iterable if budget is None else ticking(iterable, budget)

    def checked_value(self, value: Any) -> Any:
        return check_value(value)

    def join_parts(self, context: Context, parts: Iterable[Any]) -> str:
        """``a ~ b``: every part converted, the total checked before the join."""
        texts: list[Any] = []
        total = 0
        for part in parts:
            text = part if isinstance(part, str) else str(part)
            total += len(text)
            if total > MAX_VALUE_CHARS:
                raise string_too_long()
            texts.append(text)
        if context.eval_ctx.autoescape:
            return check_value(markup_join(texts))  # type: ignore[no-any-return]
        return "".join(texts)

    def concat(self, parts: Iterable[str]) -> str:
        """The buffer of a macro, block or ``{% set %}`` block, checked before the join."""
        listed = parts if isinstance(parts, list) else list(parts)
        if sum(map(len, listed)) > MAX_VALUE_CHARS:
            raise string_too_long()
        return "".join(listed)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` / ``str.format_map`` through the bounded formatter."""
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or value.__name__ not in _FORMATS:
            return None
        owner = value.__self__
        if not isinstance(owner, str):
            return None
        is_map = value.__name__ == "format_map"
        kind = type(owner)

        def wrapper(*args: Any, **kwargs: Any) -> str:
            formatter: SandboxedFormatter = (
                BoundedEscapeFormatter(self, escape=owner.escape)
                if isinstance(owner, Markup)
                else BoundedFormatter(self)
            )
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one positional argument")
                mapping = args[0]
                args, kwargs = (), mapping
            return kind(formatter.vformat(owner, args, kwargs))

        return update_wrapper(wrapper, value)


def _invalid(message: str, parser: BoundedParser | None) -> TemplateInvalid:
    error = TemplateInvalid(message)
    error.tokens = parser.tokens if parser is not None else 1
    return error


@cache
def shared_environment() -> BoundedEnvironment:
    """The environment is immutable configuration; one per process is enough."""
    return BoundedEnvironment()
