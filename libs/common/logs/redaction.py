"""Redaction of the exact secret values a piece of work resolved.

Masking (``masking.py``) goes by key name and by the shape of a secret; it
cannot know that ``https://hooks.example/T0/B0/abc`` or ``k-93f1...`` is one.
The executor does know: it resolved those values from a credential.  A
:class:`Redactor` holds them for one event (or one dry run) and replaces
every occurrence in whatever is kept or shown: output, error, history, dead
letter, log lines and recorded exceptions.

Besides each value itself it looks for the forms in which a target may echo
it: JSON-escaped, percent-encoded, a URL's path and last path segment, the
token after an ``Authorization`` scheme word.  A text that was cut (``body[:200]``)
can end with the start of a value: that tail is replaced too.

While an event is handled, :func:`redacting` makes its redactor current
(a context variable), so the log filter and the span helper apply it to lines
and exceptions written from that task without being handed it.
"""

from __future__ import annotations

import contextvars
import functools
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

from libs.common.logs.secret_shapes import REDACTED

__all__ = ["MIN_SECRET_LENGTH", "Redactor", "current_redactor", "redacting"]

# Shorter values are not looked for: they would redact ordinary words.
MIN_SECRET_LENGTH = 6
MAX_DEPTH = 32
# Distinct secrets whose needles are kept (a replica serves a bounded set of credentials; a
# rotated or rarely used one simply falls out).
NEEDLE_CACHE_SIZE = 512

_CURRENT: contextvars.ContextVar[Redactor | None] = contextvars.ContextVar("ipaas_redactor", default=None)


def _leaves(value: Any, depth: int = 0) -> Iterator[str]:
    if depth > MAX_DEPTH:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item, depth + 1)


def _forms(value: str) -> Iterator[str]:
    """``value`` and the other spellings in which it may come back."""
    yield value
    yield json.dumps(value)[1:-1]
    yield quote(value, safe="")
    yield quote_plus(value, safe="")
    scheme, _, rest = value.partition(" ")
    if rest and scheme.isalpha():
        yield rest.strip()  # "Bearer <token>": the token alone
    if "://" in value:
        try:
            parts = urlsplit(value)
        except ValueError:
            return
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        yield path
        yield parts.path
        yield parts.path.rstrip("/").rsplit("/", 1)[-1]
        if parts.password:
            yield parts.password


@functools.lru_cache(maxsize=NEEDLE_CACHE_SIZE)
def _needles_of(values: tuple[str, ...]) -> tuple[str, ...]:
    """The forms of ``values`` worth looking for, longest first (a value inside another goes too).

    A pure function of the strings: the executor adds the same credential's values for every
    event, so the forms are worked out once per distinct secret, not once per event.
    """
    found = {form for value in values for form in _forms(value) if len(form) >= MIN_SECRET_LENGTH}
    return tuple(sorted(found, key=len, reverse=True))


class Redactor:
    """The secret values of one piece of work; replaces them wherever they appear."""

    __slots__ = ("_needles",)

    def __init__(self) -> None:
        self._needles: tuple[str, ...] = ()

    def add(self, values: Iterable[str]) -> None:
        needles = _needles_of(tuple(values))
        if self._needles:
            # longest first: a value inside another goes too
            needles = tuple(sorted(set(self._needles).union(needles), key=len, reverse=True))
        self._needles = needles

    def add_secret(self, secret: Any) -> None:
        """Every string inside ``secret`` (a credential's resolved fields, at any depth)."""
        self.add(_leaves(secret))

    def __bool__(self) -> bool:
        return bool(self._needles)

    def text(self, text: str) -> str:
        if not self._needles or len(text) < MIN_SECRET_LENGTH:
            return text
        for needle in self._needles:
            if needle in text:
                text = text.replace(needle, REDACTED)
        return self._cut_tail(text)

    def _cut_tail(self, text: str) -> str:
        """``text`` without a trailing start of a value (what a cut left of it)."""
        end = len(text)
        earliest = end
        for needle in self._needles:
            head = needle[:MIN_SECRET_LENGTH]
            i = text.find(head, max(0, end - len(needle) + 1))
            while i != -1:
                if needle.startswith(text[i:]):
                    earliest = min(earliest, i)
                    break
                i = text.find(head, i + 1)
        return text if earliest == end else text[:earliest] + REDACTED

    def value(self, value: Any, depth: int = 0) -> Any:
        """A JSON-like value with every string (keys included) redacted; tuples come back as lists."""
        if not self._needles:
            return value
        if depth > MAX_DEPTH:
            return REDACTED
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {(self.text(k) if isinstance(k, str) else k): self.value(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v, depth + 1) for v in value]
        return value


def current_redactor() -> Redactor | None:
    return _CURRENT.get()


@contextmanager
def redacting(redactor: Redactor) -> Iterator[Redactor]:
    """Make ``redactor`` current for log lines and recorded exceptions written inside the block."""
    token = _CURRENT.set(redactor)
    try:
        yield redactor
    finally:
        _CURRENT.reset(token)
