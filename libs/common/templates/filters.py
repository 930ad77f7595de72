"""Jinja2's built-in filters and tests, each wrapped to spend budget and respect the value bounds.

Every filter spends one step (filters that walk a collection spend one per
item), may run a check on its arguments before it runs (``_BEFORE``: widths,
and estimates of results that can outgrow their input), and has its result
checked after (``check_value``). Filters that work in Python per word or per
item inside one call (``wordwrap``, ``urlize``, ``pprint``, ``tojson`` with an
indent; ``sort``, ``unique``, ``groupby``...) only take inputs up to
``MAX_SLOW_INPUT_CHARS`` characters or ``MAX_SLOW_INPUT_ITEMS`` items, and the
clock is read before each of them. ``sum`` over lists is linear, not
quadratic. ``lipsum`` is bounded in words.
"""

from __future__ import annotations

from collections.abc import Callable, Sized
from functools import wraps
from itertools import chain
from types import GeneratorType
from typing import Any

from jinja2 import Undefined, pass_environment
from jinja2.environment import Environment
from jinja2.filters import make_attrgetter
from jinja2.utils import generate_lorem_ipsum

from libs.common.templates.errors import TemplateLimitExceeded
from libs.common.templates.limits import BUDGET, MAX_SLOW_INPUT_CHARS, MAX_SLOW_INPUT_ITEMS, MAX_VALUE_CHARS
from libs.common.templates.operations import check_percent, estimate_replace
from libs.common.templates.sizes import check_estimate, check_value, check_width, rendered_size, value_too_large

_GATHERED = (GeneratorType, str, bytes)
_TEXT = (str, bytes)
# Filters whose result is a part or a rearrangement of their input (or of another argument): when
# the input is a value (bounded already), the result needs no measuring. Gathered from a generator
# (``map``, ``select``...) it may hold many references to one large value, and gathered from a string
# (``'abc'|list``) it renders several times longer, so those are measured.
_SELECTING = frozenset(
    {
        "attr",
        "d",
        "default",
        "dictsort",
        "first",
        "groupby",
        "last",
        "list",
        "max",
        "min",
        "random",
        "reverse",
        "sort",
        "unique",
    }
)
# Filters that call Python code for every item inside one uninterruptible call (sort keys, per-item
# escaping): their input is at most MAX_SLOW_INPUT_ITEMS items (or characters of a string).
_PER_ITEM = frozenset({"dictsort", "groupby", "max", "min", "sort", "unique", "urlencode", "xmlattr"})
# Filters that may take milliseconds in one call: the clock is read before each of them, not every few steps.
_HEAVY = _PER_ITEM | {"pprint", "replace", "tojson", "urlize", "wordwrap"}
# Filters that walk their whole input: they spend one step per item of a collection (not per character).
_WALKING = frozenset(
    {
        "batch",
        "dictsort",
        "groupby",
        "items",
        "join",
        "list",
        "map",
        "max",
        "min",
        "pprint",
        "reject",
        "rejectattr",
        "select",
        "selectattr",
        "slice",
        "sort",
        "sum",
        "tojson",
        "unique",
        "urlencode",
        "xmlattr",
    }
)
MAX_LIPSUM_WORDS = 10_000


def _slow_input(chars: int, name: str) -> None:
    if chars > MAX_SLOW_INPUT_CHARS:
        raise TemplateLimitExceeded(f"input of {name} too long (more than {MAX_SLOW_INPUT_CHARS} characters)")


def _center(value: Any, width: Any = 80) -> None:
    check_width(width)


def _as_text(value: Any) -> str:
    """``str(value)``, after making sure it cannot be large (a collection is measured first)."""
    if isinstance(value, str):
        return value
    if rendered_size(value) > MAX_VALUE_CHARS:
        raise value_too_large()
    return str(value)


def _indent(s: Any, width: Any = 4, first: Any = False, blank: Any = False) -> None:
    if isinstance(width, int):
        check_width(width)
        prefix = max(width, 0)
    else:
        prefix = len(_as_text(width))
    text = _as_text(s)
    check_estimate(len(text) + (text.count("\n") + 1) * prefix)


def _wordwrap(
    s: Any, width: Any = 79, break_long_words: Any = True, wrapstring: Any = None, break_on_hyphens: Any = True
) -> None:
    text = _as_text(s)
    _slow_input(len(text), "wordwrap")
    lines = len(text) // max(width, 1) if isinstance(width, int) else len(text)
    check_estimate(len(text) + (lines + text.count("\n") + 1) * len(_as_text(wrapstring or "\n")))


def _urlize(
    value: Any,
    trim_url_limit: Any = None,
    nofollow: Any = False,
    target: Any = None,
    rel: Any = None,
    extra_schemes: Any = None,
) -> None:
    text = _as_text(value)
    _slow_input(len(text), "urlize")
    per_link = len(_as_text(target or "")) + len(_as_text(rel or "")) + 64
    check_estimate(3 * len(text) + (len(text) // 4 + 1) * per_link)


def _pprint(value: Any) -> None:
    _slow_input(rendered_size(value, MAX_SLOW_INPUT_CHARS), "pprint")


def _tojson(value: Any, indent: Any = None) -> None:
    if indent is None:
        return
    width = indent if isinstance(indent, int) else len(_as_text(indent))
    check_width(width, "indent")
    size = rendered_size(value, MAX_SLOW_INPUT_CHARS)
    _slow_input(size, "tojson with an indent")
    check_estimate(size + (size // 2 + 1) * max(width, 0) * _depth(value))


def _depth(value: Any) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _format(value: Any, *args: Any, **kwargs: Any) -> None:
    check_percent(_as_text(value), kwargs or args)


def _replace_filter(s: Any, old: Any, new: Any, count: Any = None) -> None:
    estimate_replace(_as_text(s), _as_text(old), _as_text(new), -1 if count is None else count)


def _join(value: Any, d: Any = "", attribute: Any = None) -> list[Any]:
    items = list(value)
    if rendered_size(items) + len(_as_text(d)) * max(len(items) - 1, 0) > MAX_VALUE_CHARS:
        raise value_too_large()
    return items


def _batch(value: Any, linecount: Any, fill_with: Any = None) -> None:
    if fill_with is not None and isinstance(linecount, int):
        check_width(linecount, "batch size")
        if rendered_size(fill_with) * linecount > MAX_VALUE_CHARS:
            raise value_too_large()


def _slice(value: Any, slices: Any, fill_with: Any = None) -> None:
    check_width(slices, "slice count")


def _list(value: Any) -> None:
    # A list of characters renders as ['a', 'b', ...]: five characters per character.
    if isinstance(value, str) and 5 * len(value) > MAX_VALUE_CHARS:
        raise value_too_large()


_BEFORE: dict[str, Callable[..., Any]] = {
    "center": _center,
    "indent": _indent,
    "wordwrap": _wordwrap,
    "urlize": _urlize,
    "pprint": _pprint,
    "tojson": _tojson,
    "format": _format,
    "replace": _replace_filter,
    "join": _join,
    "batch": _batch,
    "slice": _slice,
    "list": _list,
}


@pass_environment
def bounded_sum(environment: Environment, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
    """Jinja2's ``sum``; lists and tuples are joined in one pass instead of ``start + a + b + ...``."""
    if attribute is not None:
        iterable = map(make_attrgetter(environment, attribute), iterable)
    if not isinstance(start, list | tuple):
        return sum(iterable, start)
    items = list(iterable)
    for item in items:
        if not isinstance(item, type(start)):
            raise TypeError(f'can only concatenate {type(start).__name__} (not "{type(item).__name__}")')
    if rendered_size(start) + rendered_size(items) > MAX_VALUE_CHARS:
        raise value_too_large()
    joined: Any = start
    return joined + type(start)(chain.from_iterable(items))


def bounded_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    if n * max > MAX_LIPSUM_WORDS:
        raise TemplateLimitExceeded(f"lipsum limited to {MAX_LIPSUM_WORDS} words")
    return generate_lorem_ipsum(n, html, min, max)


def _items(value: Any) -> int:
    """How many items iterating ``value`` gives, when known without iterating (strings count characters)."""
    if not isinstance(value, Sized) or isinstance(value, Undefined):
        return 0
    try:
        return len(value)
    except Exception:  # noqa: BLE001 - a value whose length is unknown counts as none
        return 0


def guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    passed = 0 if getattr(func, "jinja_pass_arg", None) is None else 1  # context, eval context or environment
    before = _BEFORE.get(name)
    walking = name in _WALKING
    per_item = name in _PER_ITEM
    heavy = name in _HEAVY
    selecting = name in _SELECTING

    @wraps(func)
    def filtered(*args: Any, **kwargs: Any) -> Any:
        value = args[passed] if len(args) > passed else None
        items = _items(value) if walking or per_item else 0
        budget = BUDGET.get()
        if budget is not None:
            budget.tick(1 + items if walking and not isinstance(value, _TEXT) else 1)
            if heavy:
                budget.check()
        if per_item and items > MAX_SLOW_INPUT_ITEMS and not (name == "urlencode" and isinstance(value, _TEXT)):
            raise TemplateLimitExceeded(f"input of {name} too large (more than {MAX_SLOW_INPUT_ITEMS} items)")
        if before is not None:
            replaced = before(*args[passed:], **kwargs)
            if replaced is not None:
                args = (*args[:passed], replaced, *args[passed + 1 :])
        return check_value(func(*args, **kwargs), walk=not selecting or isinstance(value, _GATHERED))

    return filtered


def guard_test(func: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(func)
    def tested(*args: Any, **kwargs: Any) -> Any:
        budget = BUDGET.get()
        if budget is not None:
            budget.tick()
        return func(*args, **kwargs)

    return tested
