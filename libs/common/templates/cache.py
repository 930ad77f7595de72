"""Compiled templates by source, least recently used first out, bounded in (estimated) bytes.

An entry's cost is an estimate of the memory it holds: ``ENTRY_BYTES`` for the
compiled module and its objects, plus ``BYTES_PER_CHAR`` per source
character (generated code is several times the source). Measured on
CPython 3.11: about 4 KiB for a one-line template, about 5.7x the source for
large ones. A single entry larger than the whole cache is not kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from libs.common.templates.fastpath import Segments
from libs.common.templates.sandbox import Compiled

ENTRY_BYTES = 4096
BYTES_PER_CHAR = 6
DEFAULT_CACHE_BYTES = 32 * 1024 * 1024


@dataclass(slots=True)
class Entry:
    """What is known about one source: literal text, a fast-path split, the compiled template or the error."""

    literal: bool
    simple: Segments | None
    cost: int
    compiled: Compiled | None = None
    error: str | None = None


def cost_of(source: str, literal: bool) -> int:
    return 64 + len(source) if literal else ENTRY_BYTES + BYTES_PER_CHAR * len(source)


class TemplateCache:
    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, source: str) -> Entry | None:
        entry = self._entries.get(source)
        if entry is not None:
            self._entries.move_to_end(source)
        return entry

    def lookups(self) -> tuple[Callable[[str], Entry | None], Callable[[str], None]]:
        """``get`` and ``touch`` as bound C methods, for the render loop (``get`` alone does both)."""
        return self._entries.get, self._entries.move_to_end

    def put(self, source: str, entry: Entry) -> None:
        old = self._entries.pop(source, None)
        if old is not None:
            self.bytes -= old.cost
        if entry.cost > self.max_bytes:
            return
        self._entries[source] = entry
        self.bytes += entry.cost
        while self.bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= evicted.cost
