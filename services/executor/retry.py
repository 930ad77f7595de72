"""Exponential backoff with jitter, honouring ``Retry-After``."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    base_seconds: float
    max_seconds: float

    def ceiling(self, attempt: int) -> float:
        """The un-jittered delay after try number ``attempt`` (1-based) failed."""
        return float(min(self.max_seconds, self.base_seconds * (2 ** max(0, attempt - 1))))

    def delay(self, attempt: int, retry_after: float | None = None, *, rand: random.Random | None = None) -> float:
        """Equal jitter: between half and all of the ceiling; never sooner than ``Retry-After``."""
        ceiling = self.ceiling(attempt)
        r = (rand or random).random()
        wait = ceiling / 2 + r * ceiling / 2
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_seconds))
        return wait
