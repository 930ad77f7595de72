"""The executor's decisions, as pure functions of plain inputs.

:func:`after_claim` decides what a delivered event becomes once its row was
claimed (or not); :func:`after_try` decides what a finished try becomes.
The worker carries the decision out in one place.  Nothing here touches a
message, the database or the clock.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

Status = Literal["succeeded", "failed", "dead", "skipped", "filtered"]


@dataclass(frozen=True, slots=True)
class Ack:
    """Nothing to do: the row is final, or the event waits parked elsewhere."""

    why: str


@dataclass(frozen=True, slots=True)
class Park:
    """Leave the consumer and come back in ``seconds`` (no attempt was used)."""

    seconds: float
    reason: str


@dataclass(frozen=True, slots=True)
class Run:
    attempt: int


@dataclass(frozen=True, slots=True)
class Finish:
    """Write this outcome; ``retry_in`` parks the event for another try."""

    status: Status
    error: str | None = None
    retry_in: float | None = None


Fate = Ack | Park | Run | Finish


@dataclass(frozen=True, slots=True)
class ClaimView:
    """What the claim statement saw, for one event."""

    attempt: int | None  # the try now running; None when the row was not taken
    prev_status: str | None  # the row's status before the claim (None: no row)
    lease_left: float | None  # seconds left on another replica's live lease
    parked_left: float | None  # seconds until a parked copy of the event is due
    workflow_tenant: uuid.UUID | None  # None: the workflow does not exist
    workflow_active: bool
    workflow_deleted: bool


FINAL = frozenset({"succeeded", "dead", "skipped", "filtered"})
BUSY_MARGIN_SECONDS = 0.5


def after_claim(
    view: ClaimView, *, event_tenant: uuid.UUID, has_definition: bool, definition_error: str | None
) -> Fate:
    if view.attempt is None:
        if view.prev_status in FINAL:
            return Ack("final")
        if view.parked_left is not None and view.parked_left > 0:
            return Ack("parked")
        if view.lease_left is not None and view.lease_left > 0:
            return Park(view.lease_left + BUSY_MARGIN_SECONDS, "lease")
        return Park(BUSY_MARGIN_SECONDS, "lease")  # raced with another claim: look again shortly
    if view.workflow_tenant is None or view.workflow_tenant != event_tenant:
        return Finish("skipped", "skipped: workflow not found")
    if view.workflow_deleted:
        return Finish("skipped", "skipped: workflow was deleted")
    if not view.workflow_active:
        return Finish("skipped", "skipped: workflow is disabled")
    if not has_definition:
        return Finish("dead", definition_error or "workflow version not found")
    return Run(view.attempt)


@dataclass(frozen=True, slots=True)
class TryResult:
    """How one try ended.  ``kind``: ok, permanent, transient or breaker (refused, target not called)."""

    kind: Literal["ok", "permanent", "transient", "breaker"]
    error: str | None = None
    breaker_left: float = 0.0  # breaker: seconds until it lets a trial through (jitter included)
    retry_after: float | None = None  # transient: the target's Retry-After
    http_status: int | None = None  # the target's answer, when it gave one


def after_try(result: TryResult, *, attempt: int, max_attempts: int, backoff: float) -> Finish:
    """``backoff`` is this attempt's jittered retry delay (already floored by any ``Retry-After``)."""
    if result.kind == "ok":
        return Finish("succeeded")
    error = result.error or result.kind
    if result.kind == "permanent":
        return Finish("dead", error)
    if attempt >= max_attempts:
        return Finish("dead", f"gave up after {attempt} attempts: {error}")
    return Finish("failed", error, retry_in=max(backoff, result.breaker_left))
