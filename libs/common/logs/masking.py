"""Redaction of secrets from free text and structured values.

Used by the log handler as it writes a line, and by the executor before it
stores a connector's output or error or answers a dry run: a text is masked
once, when it is written, and the gateway returns it as stored.

- Linear time: each shape of ``secret_shapes`` is one pass that cannot
  backtrack (``mask_passes``), so 1 MiB masks in milliseconds whatever it
  holds (``tests/bench/test_bench_masking.py``).
- Truncate first, then mask: ``mask_truncated(text, limit)`` masks about
  ``limit + MASK_MARGIN`` characters, not the whole text, and still recognises
  a secret that straddles ``limit`` before cutting it.
- What is masked is what the previous rules masked, with the differences
  ``tests/helpers/masking_reference.py`` lists (each masks more, not less).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from libs.common.logs.mask_passes import mask_all
from libs.common.logs.secret_shapes import REDACTED

__all__ = ["MASK_MARGIN", "REDACTED", "is_secret_key", "mask_text", "mask_truncated", "mask_value"]

# Characters masked past ``limit`` by ``mask_truncated``: the longest secret that a cut can split and
# still be recognised (PEM RSA-4096 keys are about 3,300 characters).
MASK_MARGIN = 8192

# Nesting deeper than this is replaced whole.
MAX_DEPTH = 32


# Keys whose values are always secret, whatever they look like: one of these words, delimited by the
# key's start or end or by "_", "-" or ".". Looked for in the lower-cased key, at its start or from a
# delimiter (a literal-led search each, so neither can backtrack far).
_KEY_WORDS = (
    r"(?:pass(?:word|wd)?|secret|token|api[_\-]?key|apikey|appid|authorization|auth|credentials?|"
    r"private[_\-]?key|access[_\-]?key|session|cookie|webhook[_\-]?url|signature|dsn)(?:$|[_\-.])"
)
_KEY_AT_START = re.compile(_KEY_WORDS)
_KEY_AFTER = {sep: re.compile(re.escape(sep) + _KEY_WORDS) for sep in "_-."}


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    if _KEY_AT_START.match(lowered):
        return True
    return any(sep in lowered and pattern.search(lowered) for sep, pattern in _KEY_AFTER.items())


def mask_text(text: str) -> str:
    """Replace every secret-shaped substring of ``text``."""
    return mask_all(text)


def mask_truncated(text: str, limit: int) -> str:
    """``mask_text(text)[:limit]``, masking only about ``limit + MASK_MARGIN`` characters of ``text``.

    The masked prefix must still reach ``MASK_MARGIN // 2`` characters past
    ``limit``, so that a secret cut at the prefix's end (and perhaps not
    recognised there) lies beyond the cut; when masking shrank it below that,
    a prefix twice as long is masked. The result differs from masking the
    whole text only if one secret runs over ``MASK_MARGIN // 2`` characters
    across the prefix's end.
    """
    if limit < 0:
        raise ValueError("limit must not be negative")
    end = limit + MASK_MARGIN
    while end < len(text):
        masked = mask_all(text[:end])
        if len(masked) >= limit + MASK_MARGIN // 2:
            return masked[:limit]
        end *= 2
    return mask_all(text)[:limit]


def mask_value(value: Any, limit: int | None = None) -> Any:
    """Mask a JSON-like value: secret keys lose their values, strings are scanned.

    With ``limit``, a string is cut to at most ``limit`` characters
    (``mask_truncated``). Tuples come back as lists.
    """
    return _mask(value, limit, 0)


def _mask(value: Any, limit: int | None, depth: int) -> Any:
    if depth > MAX_DEPTH:
        return REDACTED
    if isinstance(value, str):
        return mask_text(value) if limit is None else mask_truncated(value, limit)
    if isinstance(value, Mapping):
        return {
            k: (
                REDACTED
                if isinstance(k, str) and is_secret_key(k) and v not in (None, "")
                else _mask(v, limit, depth + 1)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_mask(v, limit, depth + 1) for v in value]
    return value
