"""Inputs that made the old masking regexes backtrack, and inputs full of secrets.

``adversarial(size)`` gives each input at about ``size`` characters: the unit
tests use small sizes to check the output, the bench and the time-bound test
1 MiB. Every input is deterministic.
"""

from __future__ import annotations

import random
import string

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
_B64 = string.ascii_letters + string.digits + "+/"


def _fill(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def _random(alphabet: str, size: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choices(alphabet, k=size))


def adversarial(size: int) -> dict[str, str]:
    """name -> input of about ``size`` characters."""
    corpus = {
        "letters": "a" * size,
        "letters and digits": _random(string.ascii_letters + string.digits, size, 1),
        "base64": _random(_B64, size, 2),
        "base64url dashes": _random(string.ascii_letters + "-_", size, 3),
        "eyJa- repeated": _fill("eyJa-", size),
        "eyJ. repeated": _fill("eyJ.", size),
        "short JWT-likes": _fill("eyJabcde.fghij ", size),
        ":// then letters": "https://" + "a" * size,
        "a://a: repeated": _fill("a://a:", size),
        "url user:pass, no @": "x://user:" + "p" * size,
        "password then spaces": "password" + " " * size + "x",
        "Bearer then spaces": "Bearer" + " " * size + "x",
        "keyword: spaces repeated": _fill("token   :   ", size),
        "a=a& repeated": _fill("a=a&", size),
        "password=... pairs": _fill("password=hunter2 token=abc&", size),
        "mixed-case key pairs": _fill('"Api_Key": "k1", PASSWORD: x;', size),
        "tokens one letter each": _fill("token=a&", size),
        "Bearer tokens": _fill("Bearer abcdefgh12 ", size),
        "JWTs": _fill(JWT + " ", size),
        "PEM headers, no footer": _fill("-----BEGIN PRIVATE KEY-----\n", size),
        "PEM header, long run": "-----BEGIN " + "A" * size,
        "AKIA repeated": _fill("AKIA", size),
        "ghp_ repeated": _fill("ghp_", size),
        "prefixed tokens": _fill("whsec_abcdefgh xoxb-1234567890 ghp_ sk_live_0123456789 AKIA ", size),
        "webhook urls": _fill("https://hooks.slack.com/services/T/B/X https://discord.com/api/v10/webhooks/1/x ", size),
        "non-ASCII text": _fill("Le système a reçu la requête; état: ok — ", size),
    }
    parts = list(corpus.values())
    corpus["mixed"] = "".join(p[: size // len(parts)] for p in parts)
    return corpus
