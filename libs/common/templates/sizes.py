"""How big a template value is, and the checks that keep every value under ``MAX_VALUE_CHARS``.

Invariant: every string or collection a template creates (operator, filter,
method call, list/dict literal, a list gathered from a generator) renders to
at most about ``MAX_VALUE_CHARS`` characters; parts and rearrangements of a
value (``first``, ``sort``, ``dict.get``) are not measured again. The payload
is bounded by the ingest limits. So one built-in operation on template values
costs at most a linear pass over about a million characters, and a step of the
budget is never more than a few milliseconds of uninterruptible work.

``rendered_size`` walks a value without converting it and stops as soon as the
limit is passed, so a list holding the same large string many times costs only
a few steps to refuse.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, KeysView, ValuesView
from types import GeneratorType
from typing import Any

from jinja2.utils import Namespace

from libs.common.templates.errors import TemplateLimitExceeded
from libs.common.templates.limits import BUDGET, MAX_INT_BITS, MAX_VALUE_CHARS, MAX_WIDTH, Budget

_SEQUENCES = (list, tuple, set, frozenset, KeysView, ValuesView, ItemsView)
COLLECTIONS = (dict, list, tuple, set, frozenset, Namespace)
_STR = frozenset({str})
_INT = frozenset({int})
_SHORT = frozenset({int, float, bool, type(None)})


def rendered_size(value: Any, limit: int = MAX_VALUE_CHARS) -> int:
    """About ``len(str(value))``; returns early with a number over ``limit`` once it is passed."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item) + 3
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, dict):
            total += 4 * len(item) + 2
            if total <= limit:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, _SEQUENCES):
            total += 2 * len(item) + 2
            if total <= limit:
                total += _flat_size(item, stack)
        elif isinstance(item, Namespace):
            stack.append(object.__getattribute__(item, "_Namespace__attrs"))
        else:
            total += 24  # floats, None, and objects whose repr is short (ranges, loops, macros)
        if total > limit:
            return total
    return total


def _flat_size(items: Any, stack: list[Any]) -> int:
    """Size of a collection of only strings or only ints in C loops; otherwise its items go on ``stack``."""
    kinds = set(map(type, items))
    if kinds <= _STR:
        return sum(map(len, items)) + 3 * len(items)
    if kinds <= _INT:
        return sum(map(int.bit_length, items)) // 3 + 2 * len(items)
    if kinds <= _SHORT:
        return 24 * len(items)
    stack.extend(items)
    return 0


def string_too_long() -> TemplateLimitExceeded:
    return TemplateLimitExceeded(f"string too long (more than {MAX_VALUE_CHARS} characters)")


def value_too_large() -> TemplateLimitExceeded:
    return TemplateLimitExceeded(f"value too large (more than {MAX_VALUE_CHARS} characters when rendered)")


def number_too_large() -> TemplateLimitExceeded:
    return TemplateLimitExceeded(f"number too large (more than {MAX_INT_BITS} bits)")


def check_width(width: Any, what: str = "width") -> None:
    """Refuse a numeric width, padding or precision over ``MAX_WIDTH``."""
    if isinstance(width, int) and width > MAX_WIDTH:
        raise TemplateLimitExceeded(f"{what} too large ({_short(width)}; the limit is {MAX_WIDTH})")


def check_estimate(chars: int) -> None:
    """Refuse an operation whose result would be longer than ``MAX_VALUE_CHARS``."""
    if chars > MAX_VALUE_CHARS:
        raise string_too_long()


def check_value(value: Any, *, walk: bool = True) -> Any:
    """Return ``value`` if it is within bounds; a lazy result is wrapped to spend a step per item.

    ``walk=False`` skips measuring collections, for results that are parts or rearrangements of
    values already within bounds (``first``, ``sort`` of a list, ``dict.get``...): measuring those
    would cost as much as the payload is large, and could refuse a payload larger than the bound.
    Strings and numbers are always checked (it costs nothing).
    """
    if isinstance(value, str | bytes):
        if len(value) > MAX_VALUE_CHARS:
            raise string_too_long()
    elif isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise number_too_large()
    elif isinstance(value, COLLECTIONS):
        if walk and rendered_size(value) > MAX_VALUE_CHARS:
            raise value_too_large()
    elif isinstance(value, GeneratorType):
        budget = BUDGET.get()
        if budget is not None:
            return ticking(value, budget)
    return value


def ticking(items: Iterable[Any], budget: Budget) -> Iterator[Any]:
    """Iterate ``items`` spending one step per item (loop bodies, lazy filter results).

    Items are not measured: every producer of an item checked it already, and a collection
    gathered from many items is measured when it is built (``list``, ``join``, ``sum``...).
    """
    for item in items:
        budget.tick()
        yield item


def _short(number: int) -> str:
    return str(number) if number.bit_length() < 64 else f"about 2**{number.bit_length()}"
