"""Circuit breakers per (tenant, connector), built on aiobreaker's state machine.

aiobreaker keeps the state and the failure counter and notifies listeners,
but its ``call_async`` lets every concurrent caller through in half-open
state and holds a threading lock across awaits.  So calls do not go through
it: :class:`Breakers` decides admission itself (exactly one trial call in
half-open; the others are deferred) and reports outcomes to the breaker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from aiobreaker import CircuitBreaker, CircuitBreakerListener, CircuitBreakerState

from services.executor.errors import BreakerOpen

log = logging.getLogger(__name__)

Clock = Callable[[], float]
TransitionHook = Callable[[str, str, str], None]  # connector, old state, new state

# How long callers wait behind a half-open trial before they try again.
TRIAL_DEFER_SECONDS = 1.0


class _Transitions(CircuitBreakerListener):  # type: ignore[misc]
    def __init__(self, tenant: str, connector: str, hook: TransitionHook | None) -> None:
        self._tenant, self._connector, self._hook = tenant, connector, hook

    def state_change(self, breaker: CircuitBreaker, old: object, new: object) -> None:
        old_name = getattr(getattr(old, "state", None), "name", "none").lower()
        new_name = getattr(getattr(new, "state", None), "name", "none").lower()
        log.warning("circuit breaker transition", extra={
            "tenant_id": self._tenant, "connector": self._connector, "from": old_name, "to": new_name})
        if self._hook is not None:
            self._hook(self._connector, old_name, new_name)


@dataclass
class _Entry:
    breaker: CircuitBreaker
    opened_at: float = 0.0
    trial_in_flight: bool = False
    last_used: float = field(default=0.0)


class Breakers:
    def __init__(self, *, fail_max: int, reset_seconds: float, clock: Clock = time.monotonic,
                 on_transition: TransitionHook | None = None, max_entries: int = 100_000) -> None:
        self._fail_max = fail_max
        self._reset = reset_seconds
        self._clock = clock
        self._hook = on_transition
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._max_entries = max_entries

    def _entry(self, tenant: str, connector: str) -> _Entry:
        key = (tenant, connector)
        entry = self._entries.get(key)
        if entry is None:
            if len(self._entries) >= self._max_entries:
                self._evict_closed()
            breaker = CircuitBreaker(fail_max=self._fail_max, timeout_duration=timedelta(seconds=self._reset),
                                     listeners=[_Transitions(tenant, connector, self._hook)],
                                     name=f"{tenant}:{connector}")
            entry = self._entries[key] = _Entry(breaker)
        entry.last_used = self._clock()
        return entry

    def _evict_closed(self) -> None:
        for key, entry in list(self._entries.items()):
            if entry.breaker.current_state == CircuitBreakerState.CLOSED and entry.breaker.fail_counter == 0:
                del self._entries[key]

    def state(self, tenant: str, connector: str) -> str:
        entry = self._entries.get((tenant, connector))
        return "closed" if entry is None else entry.breaker.current_state.name.lower()

    def peek(self, tenant: str, connector: str) -> None:
        """Raise :class:`BreakerOpen` if a call now would be deferred; takes nothing."""
        entry = self._entries.get((tenant, connector))
        if entry is None:
            return
        state = entry.breaker.current_state
        if state == CircuitBreakerState.OPEN:
            remaining = entry.opened_at + self._reset - self._clock()
            if remaining > 0:
                raise BreakerOpen(remaining)
        elif state == CircuitBreakerState.HALF_OPEN and entry.trial_in_flight:
            raise BreakerOpen(TRIAL_DEFER_SECONDS)

    def admit(self, tenant: str, connector: str) -> bool:
        """Raise :class:`BreakerOpen` when the call must wait; return True for a half-open trial."""
        entry = self._entry(tenant, connector)
        state = entry.breaker.current_state
        if state == CircuitBreakerState.CLOSED:
            return False
        if state == CircuitBreakerState.OPEN:
            remaining = entry.opened_at + self._reset - self._clock()
            if remaining > 0:
                raise BreakerOpen(remaining)
            entry.breaker.half_open()
        if entry.trial_in_flight:
            raise BreakerOpen(TRIAL_DEFER_SECONDS)
        entry.trial_in_flight = True
        return True

    def success(self, tenant: str, connector: str, *, trial: bool) -> None:
        entry = self._entry(tenant, connector)
        if trial:
            entry.trial_in_flight = False
        if entry.breaker.current_state != CircuitBreakerState.CLOSED:
            entry.breaker.close()
        else:
            entry.breaker._state_storage.reset_counter()

    def failure(self, tenant: str, connector: str, *, trial: bool) -> None:
        entry = self._entry(tenant, connector)
        if trial:
            entry.trial_in_flight = False
        state = entry.breaker.current_state
        if state == CircuitBreakerState.OPEN:
            return  # a call admitted before the breaker opened; the breaker already knows
        entry.breaker._inc_counter()
        if state == CircuitBreakerState.HALF_OPEN or entry.breaker.fail_counter >= self._fail_max:
            entry.opened_at = self._clock()
            entry.breaker.open()

    def release(self, tenant: str, connector: str, *, trial: bool) -> None:
        """The call ended without a verdict on the sink (e.g. cancelled): free the trial slot."""
        if trial:
            entry = self._entry(tenant, connector)
            entry.trial_in_flight = False
