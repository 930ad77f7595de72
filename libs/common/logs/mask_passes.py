"""Applying ``secret_shapes.SHAPES`` to a text: one ``sub`` or ``split`` per shape.

The regex engine walks the text; Python handles the list of pieces (slices
and joins), never a match object, so a text full of secrets costs the engine's
steps per match and no interpreter loop.

Keyword passes are chosen by counting the keyword's spellings. The counts are
taken in a snapshot of the text that is renewed only after a replacement that
could spell a keyword with the text around it (``Shape.neutral``); the other
replacements only remove occurrences, so what the snapshot lacks, the text
lacks too.
"""

from __future__ import annotations

from itertools import accumulate

from libs.common.logs.secret_shapes import ANCHORS, KEYWORDS, SHAPES, Keyword, Shape

# Up to this length, one search for any shape's anchor comes first: most log lines hold none, and the
# passes cost some 20 Python-level steps each. (It costs the engine about 20 ns a character; on a long
# text the passes' own literal searches are cheaper.)
SHORT = 2048


def fold(text: str) -> bytes:
    """``text`` in UTF-8 with ASCII letters lower-cased, to count keywords in (no other byte is ASCII)."""
    return text.encode("utf-8", "surrogatepass").lower()


def neutral(replacement: str) -> bool:
    """Whether ``replacement`` can neither hold a keyword nor spell one with the text around it.

    It spells one across its start if it starts with the end of a keyword,
    across its end if it ends with the start of one.
    """
    folded = replacement.lower()
    for word in KEYWORDS:
        if word in folded:
            return False
        for cut in range(1, len(word)):
            if folded.startswith(word[cut:]) or folded.endswith(word[:cut]):
                return False
    return True


def apply(shape: Shape, text: str) -> str:
    """``text`` with every match of ``shape`` replaced."""
    pattern, replacement = shape.pattern, shape.replacement
    if not pattern.groups:
        return pattern.sub(replacement, text)
    parts = pattern.split(text)
    if len(parts) == 1:
        return text
    if shape.misses:
        # [before, whole, hit, before, whole, hit, ..., after]
        hits = parts[2::3]
        parts[1::3] = [whole if hit is None else replacement for whole, hit in zip(parts[1::3], hits, strict=True)]
        parts[2::3] = [""] * len(hits)
    else:
        # [before, kept, "", before, kept, "", ..., after]: the secret after each kept part was dropped.
        parts[2::3] = [replacement] * (len(parts) // 3)
    return "".join(parts)


def _apply_folded(keyword: Keyword, text: str) -> str:
    """The any-case pass, run as the lower-case pattern over an ASCII ``text`` lower-cased.

    [before, kept, secret, ...] of the lower-cased text give offsets; what is
    kept is cut from ``text`` itself.
    """
    parts = keyword.folded.split(text.lower())
    if len(parts) == 1:
        return text
    ends = list(accumulate(map(len, parts)))
    kept_from = [0, *ends[2::3]]
    kept_to = [*ends[1::3], len(text)]
    replacement = keyword.any_case.replacement
    return replacement.join(map(text.__getitem__, map(slice, kept_from, kept_to)))


def _apply_variant(shape: Shape, fixed: tuple[Shape, ...], text: str, count: int) -> str:
    """One spelling's pass (``count`` occurrences in ``text``, or fewer).

    When the spelling occurs often and is always followed by a fixed form
    (``token=``), the fixed passes go instead: cheaper per match. Should one
    occurrence not match there (``token= x``), the pass runs after them, and
    finds theirs masked already: a fixed form holds nothing that ends a value,
    so a fixed match inside another match's value lies inside it whole.
    """
    if count > (len(text) >> 10):
        present = [form for form in fixed if form.needles[0] in text]
        if sum(text.count(form.needles[0]) for form in present) >= count:
            done = 0
            for form in present:
                text, n = form.pattern.subn(form.replacement, text)
                done += n
            if done >= count:
                return text
    return apply(shape, text)


def apply_keyword(keyword: Keyword, text: str, snapshot: str, folded: bytes) -> str:
    """``text`` with every match of ``keyword``'s passes replaced; ``folded`` is ``fold(snapshot)``."""
    total = left = folded.count(keyword.word.encode())  # left: occurrences in any case not yet counted
    for shape, spelling, fixed in zip(keyword.variants, keyword.spellings, keyword.fixed, strict=True):
        if not left:
            return text
        count = snapshot.count(spelling)
        if count:
            text = _apply_variant(shape, fixed, text, count)
            left -= count
    if not left:
        return text
    # Other spellings. When they are few, look at each: in a blob of base64, "kEy" is frequent and
    # never followed by a separator.
    if total < (len(text) >> 8) + 16 and not _other_spelling_in_context(keyword, text):
        return text
    # The any-case pass meets every occurrence again (and replaces what the passes above replaced with
    # itself). Few occurrences in ASCII text: through the lower-cased text, which costs about 1 us a
    # match; else by the case-insensitive pattern, about 15 ns a character.
    if text.isascii() and total < (len(text) >> 6) + 16:
        return _apply_folded(keyword, text)
    return apply(keyword.any_case, text)


def _other_spelling_in_context(keyword: Keyword, text: str) -> bool:
    """Whether an occurrence of the keyword spelled otherwise than its variants could start a match."""
    projected = text.lower() if text.isascii() else text.encode("ascii", "replace").decode("ascii").lower()
    size = len(keyword.word)
    return any(text[m.start() : m.start() + size] not in keyword.spellings for m in keyword.context.finditer(projected))


class _Found(dict[str, bool]):
    """Whether a needle occurs in ``text``, each looked for once."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def __missing__(self, needle: str) -> bool:
        found = self[needle] = needle in self.text
        return found

    def any(self, needles: tuple[str, ...]) -> bool:
        """Whether one of ``needles`` occurs (true when there are none)."""
        return not needles or any(self[needle] for needle in needles)


def _sparse(lead: str, text: str) -> bool:
    """Whether ``lead`` makes up less than 1 in 64 characters of ``text``."""
    return text.count(lead) < (len(text) >> 6) + 1


def mask_all(text: str) -> str:
    """``text`` after every pass of ``SHAPES``."""
    if len(text) <= SHORT and not ANCHORS.search(text.lower()):
        return text
    snapshot, folded = text, b""
    found = _Found(text)
    for shape in SHAPES:
        if not found.any(shape.requires):
            continue
        if isinstance(shape, Keyword):
            folded = folded or fold(snapshot)
            masked = apply_keyword(shape, text, snapshot, folded)
        elif shape.lead and _sparse(shape.lead, text):
            masked = apply(shape, text)
        elif shape.dense:
            if not found.any(shape.needles):
                continue
            masked = text
            for pattern in shape.dense:
                masked = pattern.sub(shape.replacement, masked)
        elif found.any(shape.needles):
            masked = apply(shape, text)
        else:
            continue
        if masked is not text:
            text, found = masked, _Found(masked)
            if isinstance(shape, Shape) and not shape.neutral:
                snapshot, folded = text, b""
    return text
