"""Checks made before an operator, a method call or a format runs, where the result could be huge.

Only operations whose result can be much larger than their operands need a
check *before* they run: repetition (``'a' * n``), powers, concatenation,
``%`` and ``str.format`` with widths, and the padding, replace, join and
translate methods. Everything else is checked after it runs (``check_value``).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from string import Formatter
from typing import Any

from libs.common.templates.errors import TemplateLimitExceeded
from libs.common.templates.limits import MAX_INT_BITS, MAX_SLOW_INPUT_CHARS, MAX_VALUE_CHARS, MAX_WIDTH, tick
from libs.common.templates.sizes import (
    check_estimate,
    check_value,
    check_width,
    number_too_large,
    rendered_size,
    value_too_large,
)

BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
}
_TEXT = (str, bytes)
_JINJA_KWARGS = frozenset({"_loop_vars", "_block_vars"})
_NUMBERS = frozenset({int, float})
_SEQ = (list, tuple)
# Parts of %-directives: optional mapping key (bounded, so the scan stays linear), flags, width, precision.
MAX_KEY_CHARS = 200
_KEY = rf"(?:\([^)]{{0,{MAX_KEY_CHARS}}}\))?"
_LONG_KEY = re.compile(rf"%\([^)]{{{MAX_KEY_CHARS + 1}}}")
_WIDTHS = re.compile(rf"%{_KEY}[-#0 +]*(\d+)")
_PRECISIONS = re.compile(rf"%{_KEY}[-#0 +]*(?:\d+|\*)?\.(\d+)")
_STAR = re.compile(rf"%{_KEY}[-#0 +]*(?:\d*\.)?\*")
_DIGITS = re.compile(r"\d+")


def binop(op: str, left: Any, right: Any) -> Any:
    if type(left) in _NUMBERS and type(right) in _NUMBERS:  # the common case: only * and ** can grow much
        if op == "**":
            _check_power(left, right)
        elif op == "*" and type(left) is int and type(right) is int:
            _check_product(left, right)
        return BINOPS[op](left, right)
    if op == "*":
        _check_repeat(left, right)
    elif op == "**":
        _check_power(left, right)
    elif op == "+":
        _check_concat(left, right)
    elif op == "%" and isinstance(left, str):
        check_percent(left, right)
    result = BINOPS[op](left, right)
    # Collections were checked before (repeat, concat); strings and numbers are cheap to check after.
    return check_value(result) if isinstance(result, str | bytes | int) else result


def _check_repeat(left: Any, right: Any) -> None:
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, _TEXT + _SEQ) and isinstance(times, int):
            if times > 0 and (len(seq) if isinstance(seq, _TEXT) else rendered_size(seq)) * times > MAX_VALUE_CHARS:
                raise value_too_large()
            return
    if isinstance(left, int) and isinstance(right, int):
        _check_product(left, right)


def _check_product(left: int, right: int) -> None:
    if left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise number_too_large()


def _check_power(base: Any, exponent: Any) -> None:
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and abs(base) > 1
        and (exponent > MAX_INT_BITS or base.bit_length() * exponent > MAX_INT_BITS)
    ):
        raise number_too_large()


def _check_concat(left: Any, right: Any) -> None:
    if isinstance(left, _TEXT) and isinstance(right, _TEXT):
        check_estimate(len(left) + len(right))
    elif (
        isinstance(left, _SEQ)
        and isinstance(right, _SEQ)
        and rendered_size(left) + rendered_size(right) > MAX_VALUE_CHARS
    ):
        raise value_too_large()


def check_percent(fmt: str, args: Any) -> None:
    """``fmt % args``: widths and precisions within ``MAX_WIDTH``, and an estimate of the result.

    The format string is at most ``MAX_SLOW_INPUT_CHARS`` long, so the scans stay short.
    """
    if len(fmt) > MAX_SLOW_INPUT_CHARS:
        raise TemplateLimitExceeded(f"format string too long (more than {MAX_SLOW_INPUT_CHARS} characters)")
    if _LONG_KEY.search(fmt):
        raise TemplateLimitExceeded(f"format key too long (more than {MAX_KEY_CHARS} characters)")
    try:
        numbers = list(map(int, _WIDTHS.findall(fmt) + _PRECISIONS.findall(fmt)))
    except ValueError:  # more digits than int() takes
        raise TemplateLimitExceeded(f"width too large (the limit is {MAX_WIDTH})") from None
    if numbers:
        check_width(max(numbers))
    widths = sum(numbers)
    values: tuple[Any, ...] = args if isinstance(args, tuple) else (args,)
    if _STAR.search(fmt):
        for value in values:
            check_width(value)
            if isinstance(value, int):
                widths += max(value, 0)
    directives = fmt.count("%")
    if isinstance(args, Mapping):
        # Each directive may name any value of the mapping, or print all of it.
        check_estimate(len(fmt) + widths + directives * rendered_size(args))
    else:
        check_estimate(len(fmt) + widths + sum(rendered_size(v) for v in values))


def _number(digits: str) -> int:
    return int(digits) if len(digits) < 12 else 10**12


# --- methods of str and bytes -----------------------------------------------------------------


def _pad(owner: Any, width: Any = 0, *_: Any, **__: Any) -> None:
    check_width(width)


def _expandtabs(owner: Any, tabsize: Any = 8) -> None:
    check_width(tabsize, "tab size")
    tab = "\t" if isinstance(owner, str) else b"\t"
    if isinstance(tabsize, int):
        check_estimate(len(owner) + owner.count(tab) * max(tabsize, 0))


def estimate_replace(owner: Any, old: Any = "", new: Any = "", count: Any = -1, *_: Any, **__: Any) -> None:
    if not (isinstance(old, _TEXT) and isinstance(new, _TEXT)):
        return
    found = len(owner) + 1 if not old else owner.count(old)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    check_estimate(len(owner) + found * max(len(new) - len(old), 0))


def _translate(owner: Any, table: Any = None, *_: Any, **__: Any) -> None:
    if isinstance(table, Mapping):
        longest = max((len(v) for v in table.values() if isinstance(v, _TEXT)), default=1)
        check_estimate(len(owner) * max(longest, 1))


def _join(owner: Any, items: Any) -> list[Any]:
    listed = list(items)
    text = sum(len(i) for i in listed if isinstance(i, _TEXT))
    check_estimate(text + len(owner) * max(len(listed) - 1, 0))
    return listed


_TEXT_GUARDS: dict[str, Callable[..., None]] = {
    "center": _pad,
    "ljust": _pad,
    "rjust": _pad,
    "zfill": _pad,
    "expandtabs": _expandtabs,
    "replace": estimate_replace,
    "translate": _translate,
}


def guard_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Check a method call before it runs; returns the (possibly materialised) positional args."""
    if "_loop_vars" in kwargs or "_block_vars" in kwargs:  # added by Jinja inside loops and blocks, dropped later
        kwargs = {k: v for k, v in kwargs.items() if k not in _JINJA_KWARGS}
    owner = getattr(obj, "__self__", None)
    if isinstance(owner, _TEXT):
        name = getattr(obj, "__name__", "")
        if name == "join" and len(args) == 1 and not kwargs:
            return (_join(owner, args[0]),)
        guard = _TEXT_GUARDS.get(name)
        if guard is not None:
            guard(owner, *args, **kwargs)
    elif isinstance(owner, int) and getattr(obj, "__name__", "") == "to_bytes":
        check_width(args[0] if args else kwargs.get("length", 1), "length")
    return args


class FieldBound(Formatter):
    """``str.format`` mixin: a step per field, each spec within ``MAX_WIDTH``, the result within the limit."""

    _produced = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        tick()
        for digits in _DIGITS.findall(format_spec):
            check_width(_number(digits))
        out = super().format_field(value, format_spec)
        self._produced += len(out)
        if self._produced > MAX_VALUE_CHARS:
            raise TemplateLimitExceeded(f"string too long (more than {MAX_VALUE_CHARS} characters)")
        return out
