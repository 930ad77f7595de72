"""What a JetStream publish comes back with."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PublishResult:
    stream: str
    seq: int
    duplicate: bool
