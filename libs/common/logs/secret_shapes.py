"""The secret shapes that masking redacts, as patterns that scan a text in linear time.

``SHAPES`` is applied in order, each pass to the previous one's result
(``mask_passes``). Why no pattern can take quadratic time, whatever the text:

- Every pattern starts with a literal string, so the engine jumps from one
  occurrence to the next. (A leading character class, an alternation or
  ``re.IGNORECASE`` makes it try the matcher at every position: 15 to 40 times
  slower on harmless text.) ``\\b`` before a shape is a lookbehind placed after
  that literal.
- Every repetition is possessive (``*+``, ``++``, ``{n,}+``): what follows it is
  outside its class, so giving characters back could never help, and now the
  engine never tries.
- A failed attempt scans only text that no later attempt scans again: the
  whitespace after a keyword holds no keyword, the user part of a URL holds
  no ``/``, a JWT's first segment stops at ``-eyJ`` (where the next attempt
  starts). A PEM header with no footer after it has a second branch that
  takes the rest of the text (no later header has a footer either); that
  "miss" is handed back unchanged.

A case-insensitive shape (``Keyword``) is one pass for each of its word's
usual spellings (lower case, Capitalized, UPPER case), each led by that
literal, then one pass for any other spelling, run only when the text holds
one where a match could start. Case-insensitive means ASCII letters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REDACTED = "[REDACTED]"


@dataclass(frozen=True)
class Shape:
    """A pattern and what its matches become. Its groups say how:

    - none: the whole match becomes ``replacement``;
    - ``(kept)...()``: what follows the kept group becomes ``replacement`` (the
      empty group at the end is the slot it goes in);
    - ``(whole)(hit)`` with ``misses``: the match becomes ``replacement`` if the
      empty ``hit`` group took part, and stays as it was if not.

    The pass is skipped unless one of ``requires`` and one of ``needles``
    occur in the text (a substring search skips ahead by the needle's length,
    so it is cheaper than the pattern's own scan).
    """

    name: str
    pattern: re.Pattern[str]
    replacement: str = REDACTED
    needles: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    # The pattern's one-character literal, and the same shape as patterns led by longer literals: once
    # the lead makes up 1 in 64 characters of the text, those are used instead, and only if one of the
    # needles occurs (each attempt costs the engine a call: a text of AAAA... would make a million).
    lead: str = ""
    dense: tuple[re.Pattern[str], ...] = ()
    misses: bool = False
    # False when the replacement could spell a keyword with the text around it (mask_passes.neutral).
    neutral: bool = True


@dataclass(frozen=True)
class Keyword:
    """``word`` (lower case) then ``kept`` then ``secret``, in any ASCII case; ``secret`` is replaced."""

    word: str
    spellings: tuple[str, ...]  # word, Word, WORD
    variants: tuple[Shape, ...]  # one pass per spelling, led by it
    # Per spelling, its matches whose kept part is a fixed string holding nothing that ends a value
    # (token=), as passes that replace a whole match with that string and the replacement: for a text
    # full of them, a third of the cost (mask_passes).
    fixed: tuple[tuple[Shape, ...], ...]
    any_case: Shape  # led by [Ww][Oo]..., for other spellings: one scan, slower per character
    folded: re.Pattern[str]  # led by word, groups (kept)(secret): the same, in the lower-cased text
    # Led by word, in the text lower-cased with "?" for what is not ASCII: what must follow an
    # occurrence for any pass to match there ("?" standing for any character that is not ASCII).
    context: re.Pattern[str]
    requires: tuple[str, ...] = ()


def _ci(word: str) -> str:
    """``word`` as ASCII case-insensitive classes: ``key`` -> ``[Kk][Ee][Yy]``."""
    return "".join(f"[{c.upper()}{c}]" if c.isalpha() else re.escape(c) for c in word)


def _keyword(
    word: str,
    kept: str,
    secret: str,
    replacement: str = REDACTED,
    *,
    requires: tuple[str, ...] = (),
    guard: str = "",
    endings: tuple[str, ...] = (),
    separators: tuple[str, ...] = (),
    context: str = "",
) -> Keyword:
    """``guard`` then ``kept`` then ``secret`` after the word; each must match in any case by itself.

    Without ``kept``, each spelling's pass is a ``sub``. ``endings`` (the whole
    keys the word begins, lower case) and ``separators`` make the fixed passes:
    ending, guard, separator, then ``secret``.
    """

    def shape(lead: str) -> Shape:
        if not kept:
            return Shape(f"{word} ({lead})", re.compile(f"{lead}{guard}{secret}"), lead + replacement)
        return Shape(f"{word} ({lead})", re.compile(f"({lead}{guard}{kept}){secret}()"), replacement)

    def fixed(case: str) -> tuple[Shape, ...]:
        keys = [
            ending.upper() if case.isupper() else ending[:1].upper() + ending[1:] if case[0].isupper() else ending
            for ending in endings
        ]
        return tuple(
            Shape(
                f"{key}{sep}",
                re.compile(f"{re.escape(key)}{guard}{re.escape(sep)}{secret}"),
                key + sep + replacement,
                needles=(key + sep,),
            )
            for key in keys
            for sep in separators
        )

    spellings = (word, word.capitalize(), word.upper())
    return Keyword(
        word,
        spellings,
        tuple(shape(w) for w in spellings),
        tuple(fixed(w) for w in spellings),
        Shape(f"{word} (any case)", re.compile(f"({_ci(word)}{guard}{kept}){secret}()"), replacement),
        re.compile(f"({word}{guard}{kept})({secret})"),
        re.compile(f"{word}{guard}{context}"),
        requires,
    )


_X = "[A-Za-z0-9_-]"  # a base64url character
_PEM_TAIL = "[A-Z ]*+(?<=PRIVATE KEY)-----"  # after "-----BEGIN " or "-----END "
_PEM_END = f"(?<=-----)END {_PEM_TAIL}"  # after a run of dashes: the rest of a footer
# After a secret-looking key: closing quote, separator, opening quote, then the value. The commonest
# forms are tried first as literals (the general form costs the engine several steps more); where one
# matches and a value follows, the general form would have taken the same characters.
_KV_KEPT = r"""(?:=|": "|: |["']?+\s*+[:=]\s*+["']?+)"""
_KV_VALUE = r"""[^\s"'&,;}]++"""
_SEPARATORS = (":", "=")
_FIXED_SEPARATORS = ("=", ":")
_KV_CONTEXT = r"""["']?[\s:=?]"""  # a closing quote, then whitespace or a separator
# After "key" (the three characters before the cursor): api, access or private, then "_", "-" or
# nothing. The first lookbehind only lets the candidates through cheaply.
_KEY_ENDS = (
    "(?<=[-_IiSsEe]...)(?:"
    + "|".join(f"(?<={_ci(word)}{sep}...)" for word in ("api", "access", "private") for sep in ("", "_", "-"))
    + ")"
)
# Token prefixes, shared by the shapes and their anchors below.
_AWS_PREFIXES = ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA")
_GITHUB_KINDS = "pousr"
_STRIPE_PREFIXES = ("sk_", "rk_", "pk_")


SHAPES: tuple[Shape | Keyword, ...] = (
    # PEM private keys. Header and footer: a run of [A-Z ] that ends in "PRIVATE KEY", then "-----".
    Shape(
        "pem",
        re.compile(rf"(-----BEGIN {_PEM_TAIL}(?:(?:[^-]++|-++(?!{_PEM_END}))*+-++{_PEM_END}()|.*+))", re.DOTALL),
        needles=("-----BEGIN ",),
        misses=True,
    ),
    # JWTs: three base64url segments, the header starts with {" (eyJ).
    Shape(
        "jwt",
        re.compile(rf"eyJ(?={_X}{{5}})(?<!\weyJ)[A-Za-z0-9_]*+(?:-(?!eyJ)[A-Za-z0-9_]*+)*+\.{_X}{{5,}}+\.{_X}*+"),
        needles=("eyJ",),
        requires=(".",),
    ),
    # Authorization: Bearer / Basic <credential> (the whitespace becomes one space).
    *(
        _keyword(
            word, "", r"\s++[A-Za-z0-9._~+/=-]{8,}+", " " + REDACTED, guard=rf"(?<!\w{_ci(word)})", context=r"[\s?]"
        )
        for word in ("bearer", "basic")
    ),
    # Standard Webhooks secrets.
    # (Its replacement would continue "pass" into "passw", but no word character comes before a match.)
    Shape(
        "whsec",
        re.compile(r"whsec_(?<!\wwhsec_)[A-Za-z0-9+/=_-]{8,}+"),
        "whsec_" + REDACTED,
        needles=("whsec_",),
        neutral=False,
    ),
    # ipaas API keys (services/auth/api_keys.py): "ipk_" and 43 base64url characters.
    Shape("ipaas api key", re.compile(r"ipk_(?<!\wipk_)[A-Za-z0-9_-]{16,}+"), "ipk_" + REDACTED, needles=("ipk_",)),
    # Slack incoming webhooks and tokens.
    Shape(
        "slack webhook",
        re.compile(r"https://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]++"),
        "https://hooks.slack.com/" + REDACTED,
        needles=("hooks.slack",),
    ),
    Shape("slack token", re.compile(r"xox(?<!\wxox)[abposr]-[A-Za-z0-9-]{10,}+"), needles=("xox",)),
    # Discord webhooks.
    Shape(
        "discord webhook",
        re.compile(r"https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api/(?:v\d++/)?webhooks/\d++/[A-Za-z0-9_-]++"),
        "https://discord.com/api/webhooks/" + REDACTED,
        needles=("discord",),
    ),
    # AWS access key ids; GitHub and Stripe tokens.
    Shape(
        "aws key id",
        re.compile(r"A(?<!\wA)(?:KIA|SIA|GPA|IDA|ROA|NPA)[0-9A-Z]{16}(?!\w)"),
        lead="A",
        dense=tuple(re.compile(rf"{p}(?<!\w{p})[0-9A-Z]{{16}}(?!\w)") for p in _AWS_PREFIXES),
        needles=("KI", "SI", "GP", "ID", "RO", "NP"),
    ),  # without an A, a search skips fast on AAAA...
    Shape("github token", re.compile(rf"gh(?<!\wgh)[{_GITHUB_KINDS}]_[A-Za-z0-9]{{30,}}+(?!\w)"), requires=("_",)),
    *(
        Shape(
            f"stripe {p}",
            re.compile(rf"{p}(?<!\w{p})(?:live|test)_[A-Za-z0-9]{{10,}}+(?!\w)"),
            requires=("k_live_", "k_test_"),
        )
        for p in _STRIPE_PREFIXES
    ),
    # user:password@ in URLs, found from "://". Any scheme character before it will do: the scheme is
    # kept, so where it starts does not matter. The user part holds no "/", so no "://" is scanned twice.
    Shape(
        "url password",
        re.compile(r"(://(?<=[a-zA-Z0-9+.-]://)[^\s:/@]++:)[^\s@/]++@()"),
        REDACTED + "@",
        needles=("://",),
        requires=("@",),
    ),
    # key=value / "key": "value" with a secret-looking key, one keyword per word the key can end in
    # (client_secret and aws_secret_access_key end in "secret" and "access_key").
    _keyword(
        "passw",
        f"(?:{_ci('or')})?+{_ci('d')}{_KV_KEPT}",
        _KV_VALUE,
        requires=_SEPARATORS,
        endings=("password", "passwd"),
        separators=_FIXED_SEPARATORS,
        context=f"(?:or)?d{_KV_CONTEXT}",
    ),
    *(
        _keyword(
            word,
            _KV_KEPT,
            _KV_VALUE,
            requires=_SEPARATORS,
            guard=_KEY_ENDS if word == "key" else "",  # "key" only after api, access or private
            endings=(word,),
            separators=_FIXED_SEPARATORS,
            context=_KV_CONTEXT,
        )
        for word in ("secret", "token", "key", "appid")
    ),
)

KEYWORDS = tuple(shape.word for shape in SHAPES if isinstance(shape, Keyword))

# In the lower-cased text, something every match of every shape holds.
ANCHORS = re.compile(
    "|".join(
        re.escape(anchor)
        for anchor in (
            *KEYWORDS,
            "-----begin ",
            "eyj",
            "whsec_",
            "ipk_",
            "hooks.slack",
            "xox",
            "discord",
            *(p.lower() for p in _AWS_PREFIXES),
            *(f"gh{kind}_" for kind in _GITHUB_KINDS),
            *_STRIPE_PREFIXES,
        )
    )
    + r"|://[^\s:/@]*+:[^\s@/]*+@"
)
