"""Redaction of secrets from free text and structured values.

Used by the log formatter, by the executor before it stores connector
output, and anywhere a value might carry a credential.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"

# Keys whose values are always secret, whatever they look like.
SECRET_KEY_RE = re.compile(
    r"(?:^|[_\-.])(?:pass(?:word|wd)?|secret|token|api[_\-]?key|apikey|appid|authorization|"
    r"auth|credential|credentials|private[_\-]?key|access[_\-]?key|session|cookie|webhook[_\-]?url|"
    r"signature|dsn)(?:$|[_\-.])",
    re.IGNORECASE,
)

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # PEM private keys
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL),
        REDACTED,
    ),
    # JWTs (three base64url segments, header starts with {" -> eyJ)
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    # Authorization: Bearer / Basic <credential>
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE), r"\1 " + REDACTED),
    # Standard Webhooks secrets
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]{8,}"), "whsec_" + REDACTED),
    # Slack incoming webhooks and tokens
    (
        re.compile(r"https://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]+"),
        "https://hooks.slack.com/" + REDACTED,
    ),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), REDACTED),
    # Discord webhooks
    (
        re.compile(
            r"https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api/(?:v\d+/)?webhooks/\d+/[A-Za-z0-9_-]+"
        ),
        "https://discord.com/api/webhooks/" + REDACTED,
    ),
    # AWS access key ids
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"), REDACTED),
    # GitHub, Stripe and similar prefixed tokens
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"), REDACTED),
    (re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}\b"), REDACTED),
    # user:password@ in URLs (basic auth)
    (re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+):[^\s@/]+@"), r"\1:" + REDACTED + "@"),
    # key=value / "key": "value" pairs with a secret-looking key
    (
        re.compile(
            r"""(?P<key>["']?(?:[A-Za-z0-9]+[_-])*(?:password|passwd|secret|token|api[_-]?key|apikey|appid|"""
            r"""access[_-]?key|private[_-]?key|client[_-]?secret|aws[_-]secret[_-]access[_-]key)["']?)"""
            r"""(?P<sep>\s*[:=]\s*)(?P<q>["']?)(?P<val>[^\s"'&,;}]+)""",
            re.IGNORECASE,
        ),
        r"\g<key>\g<sep>\g<q>" + REDACTED,
    ),
]


def mask_text(text: str) -> str:
    """Replace every secret-shaped substring of ``text``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def is_secret_key(key: str) -> bool:
    return bool(SECRET_KEY_RE.search(key))


def mask_value(value: Any, _depth: int = 0) -> Any:
    """Mask a JSON-like value: secret keys lose their values, strings are scanned."""
    if _depth > 32:
        return REDACTED
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_key(k) and v not in (None, "") else
                mask_value(v, _depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_value(v, _depth + 1) for v in value]
    return value
