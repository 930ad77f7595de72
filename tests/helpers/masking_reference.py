"""The masking rules as they were before masking became linear, as a reference for short inputs.

These are the previous regexes (they backtrack: fine on a few KiB, minutes on
1 MiB), applied one after the other with ``re.sub``, with only the changes
that ``libs/common/logs/secret_shapes.py`` documents:

- a URL password is masked after any scheme character before ``://`` (the
  scheme had to start with a letter at a word boundary);
- a JWT's first segment cannot run through ``-eyJ`` (a JWT starts there);
- a case-insensitive keyword is one pass each for lower case, Capitalized,
  UPPER case and then any ASCII case, and key=value is one keyword at a time
  (a key inside an earlier value can mask the value after it too);
- Stripe keys are one pass per prefix (same result);
- case-insensitive means ASCII letters (re.IGNORECASE also took the Kelvin
  sign for "k", the long s for "s" and dotted or dotless i for "i").

The linear implementation must give exactly what this gives (docs/architecture.md,
"Secret masking").
"""

from __future__ import annotations

import re

R = "[REDACTED]"


def _ci(word: str) -> str:
    return "".join(f"[{c.upper()}{c}]" if c.isalpha() else re.escape(c) for c in word)


def _cases(word: str) -> list[str]:
    return [word, word.capitalize(), word.upper(), _ci(word)]


_KV = r"""["']?)(?P<sep>\s*[:=]\s*)(?P<q>["']?)(?P<val>[^\s"'&,;}]+)"""
_KEY_WORDS = (
    ("passw", "", f"(?:{_ci('or')})?{_ci('d')}"),
    ("secret", "", ""),
    ("token", "", ""),
    ("key", f"(?:{'|'.join(_ci(p) + '[_-]?' for p in ('api', 'access', 'private'))})", ""),
    ("appid", "", ""),
)

RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL), R),
    (re.compile(r"\beyJ(?:[A-Za-z0-9_]|-(?!eyJ)){5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), R),
    *(
        (re.compile(rf"\b({case})\s+[A-Za-z0-9._~+/=-]{{8,}}"), r"\1 " + R)
        for word in ("bearer", "basic")
        for case in _cases(word)
    ),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]{8,}"), "whsec_" + R),
    (re.compile(r"\bipk_[A-Za-z0-9_-]{16,}"), "ipk_" + R),
    (
        re.compile(r"https://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]+"),
        "https://hooks.slack.com/" + R,
    ),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), R),
    (
        re.compile(r"https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api/(?:v\d+/)?webhooks/\d+/[A-Za-z0-9_-]+"),
        "https://discord.com/api/webhooks/" + R,
    ),
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"), R),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"), R),
    *((re.compile(rf"\b{p}k_(?:live|test)_[A-Za-z0-9]{{10,}}\b"), R) for p in "srp"),
    (re.compile(r"([a-zA-Z0-9+.-]://[^\s:/@]+):[^\s@/]+@"), r"\1:" + R + "@"),
    *(
        (re.compile(rf"""(?P<key>["']?(?:[A-Za-z0-9]+[_-])*{before}{case}{after}{_KV}"""), r"\g<key>\g<sep>\g<q>" + R)
        for word, before, after in _KEY_WORDS
        for case in _cases(word)
    ),
]


def reference_mask(text: str) -> str:
    for pattern, replacement in RULES:
        text = pattern.sub(replacement, text)
    return text
