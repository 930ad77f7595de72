"""Per-tenant slot accounting: no tenant holds more than its share of a replica's slots."""

from __future__ import annotations

from collections import Counter


def tenant_of(subject: str) -> str:
    """``events.<tenant>.<workflow>`` -> ``<tenant>`` (decided before the body is parsed)."""
    parts = subject.split(".", 2)
    return parts[1] if len(parts) >= 2 else ""


class TenantSlots:
    def __init__(self, per_tenant: int) -> None:
        self._limit = per_tenant
        self._held: Counter[str] = Counter()

    def try_take(self, tenant: str) -> bool:
        if self._held[tenant] >= self._limit:
            return False
        self._held[tenant] += 1
        return True

    def release(self, tenant: str) -> None:
        left = self._held[tenant] - 1
        if left > 0:
            self._held[tenant] = left
        else:
            del self._held[tenant]

    def held(self, tenant: str) -> int:
        return self._held[tenant]
