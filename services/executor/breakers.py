"""Circuit breakers per (tenant, connector): closed, open, half-open, with one trial call.

``fail_max`` consecutive transient failures (timeouts included) open a breaker
for ``reset_seconds``.  While it is open, :meth:`Breakers.admit` refuses with
:class:`BreakerOpen` and the try fails fast without calling the target: the
target sees no traffic.  After the reset time exactly one caller is admitted
as the half-open trial; concurrent callers are refused until it reports.  A
successful trial closes the breaker, a failed one opens it for another full
period.  A call that ends without a verdict (cancelled, or a permanent error
that says nothing about the target's health) releases the trial slot.

``async with breakers(tenant, connector):`` wraps one call: it is admitted
(or refused) on entry and its verdict is how the block ends: normally a
success; a :class:`TransientError`, a timeout or any other error a failure; a
:class:`PermanentError`, a :class:`NotCalled` (the block ended before it reached
the target: a credential or a template failed) or a cancellation no verdict.
The executor uses only this form; the steps it is made of (:meth:`Breakers.admit`,
then ``success``, ``failure`` or ``release``) stay public for the breaker's own tests.

Entries that are closed with no failures are dropped when the table is full,
so memory is bounded by the number of unhealthy (tenant, connector) pairs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from services.executor.errors import BreakerOpen, PermanentError

log = logging.getLogger(__name__)

Clock = Callable[[], float]
TransitionHook = Callable[[str, str, str], None]  # connector, old state, new state

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

# How long callers are told to wait behind a half-open trial.
TRIAL_DEFER_SECONDS = 1.0


class NotCalled(Exception):
    """Raised inside the block when the call ended before it reached the target; ``cause`` says why."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclass
class _Breaker:
    state: str = CLOSED
    failures: int = 0
    opened_at: float = 0.0
    trial_in_flight: bool = False


class Breakers:
    def __init__(
        self,
        *,
        fail_max: int,
        reset_seconds: float,
        clock: Clock = time.monotonic,
        on_transition: TransitionHook | None = None,
        max_entries: int = 100_000,
    ) -> None:
        self._fail_max = fail_max
        self._reset = reset_seconds
        self._clock = clock
        self._hook = on_transition
        self._entries: dict[tuple[str, str], _Breaker] = {}
        self._max_entries = max_entries

    @property
    def reset_seconds(self) -> float:
        return self._reset

    def state(self, tenant: str, connector: str) -> str:
        entry = self._entries.get((tenant, connector))
        return CLOSED if entry is None else entry.state

    def open_keys(self) -> list[tuple[str, str, str]]:
        """(tenant, connector, state) of every breaker that is not closed."""
        return [(t, c, b.state) for (t, c), b in self._entries.items() if b.state != CLOSED]

    @asynccontextmanager
    async def __call__(self, tenant: str, connector: str) -> AsyncIterator[None]:
        """One call to the target (see the module's docstring); raises :class:`BreakerOpen` on entry."""
        trial = self.admit(tenant, connector)
        try:
            yield
        except (PermanentError, NotCalled):
            self.release(tenant, connector, trial=trial)
            raise
        except Exception:
            self.failure(tenant, connector, trial=trial)
            raise
        except BaseException:
            self.release(tenant, connector, trial=trial)
            raise
        self.success(tenant, connector, trial=trial)

    def admit(self, tenant: str, connector: str) -> bool:
        """Raise :class:`BreakerOpen` when the call must not go out; return True for the half-open trial."""
        entry = self._entries.get((tenant, connector))
        if entry is None or entry.state == CLOSED:
            return False
        if entry.state == OPEN:
            remaining = entry.opened_at + self._reset - self._clock()
            if remaining > 0:
                raise BreakerOpen(remaining)
            self._move(tenant, connector, entry, HALF_OPEN)
        if entry.trial_in_flight:
            raise BreakerOpen(TRIAL_DEFER_SECONDS)
        entry.trial_in_flight = True
        return True

    def success(self, tenant: str, connector: str, *, trial: bool) -> None:
        entry = self._entries.get((tenant, connector))
        if entry is None:
            return
        if trial:
            entry.trial_in_flight = False
        entry.failures = 0
        if entry.state != CLOSED:
            self._move(tenant, connector, entry, CLOSED)

    def failure(self, tenant: str, connector: str, *, trial: bool) -> None:
        entry = self._entry(tenant, connector)
        if trial:
            entry.trial_in_flight = False
        if entry.state == OPEN:
            return  # a call admitted before the breaker opened; the breaker already knows
        entry.failures += 1
        if entry.state == HALF_OPEN or entry.failures >= self._fail_max:
            entry.opened_at = self._clock()
            self._move(tenant, connector, entry, OPEN)

    def release(self, tenant: str, connector: str, *, trial: bool) -> None:
        """The call ended without a verdict on the target: free the trial slot."""
        entry = self._entries.get((tenant, connector)) if trial else None
        if entry is not None:
            entry.trial_in_flight = False

    def _entry(self, tenant: str, connector: str) -> _Breaker:
        key = (tenant, connector)
        entry = self._entries.get(key)
        if entry is None:
            if len(self._entries) >= self._max_entries:  # drop the healthy ones: closed, no failures
                self._entries = {k: e for k, e in self._entries.items() if e.state != CLOSED or e.failures}
            entry = self._entries[key] = _Breaker()
        return entry

    def _move(self, tenant: str, connector: str, entry: _Breaker, new: str) -> None:
        old, entry.state = entry.state, new
        if new == CLOSED:
            entry.trial_in_flight = False
        log.warning(
            "circuit breaker transition", extra={"tenant_id": tenant, "connector": connector, "from": old, "to": new}
        )
        if self._hook is not None:
            self._hook(connector, old, new)
