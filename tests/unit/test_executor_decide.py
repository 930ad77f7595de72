"""The executor's decisions, exhaustively: what a claimed (or not claimed) event becomes, and a try's outcome."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.executor.decide import FINAL, Ack, ClaimView, Finish, Park, Run, TryResult, after_claim, after_try

TENANT = uuid.uuid4()


def view(**kw: Any) -> ClaimView:
    base: dict[str, Any] = dict(
        attempt=1,
        prev_status=None,
        lease_left=None,
        parked_left=None,
        workflow_tenant=TENANT,
        workflow_active=True,
        workflow_deleted=False,
    )
    base.update(kw)
    return ClaimView(**base)


def untaken(**kw: Any) -> dict[str, Any]:
    return {"attempt": None, **kw}


P = pytest.param
GONE, DELETED, DISABLED = (
    "skipped: workflow not found",
    "skipped: workflow was deleted",
    "skipped: workflow is disabled",
)
INVALID = "stored workflow definition is invalid"


@pytest.mark.parametrize(
    ("kw", "has_definition", "error", "fate"),
    [
        *[P(untaken(prev_status=s, parked_left=5.0), True, None, Ack("final"), id=f"final-{s}") for s in sorted(FINAL)],
        P(untaken(prev_status="dead", workflow_tenant=None), False, None, Ack("final"), id="final-before-all-else"),
        P(untaken(prev_status="failed", parked_left=4.0), True, None, Ack("parked"), id="the-parked-copy-will-run"),
        P(untaken(prev_status="failed", parked_left=0.1, lease_left=30.0), True, None, Ack("parked"), id="parked-wins"),
        P(untaken(prev_status="running", lease_left=12.0), True, None, Park(12.5, "lease"), id="live-lease"),
        P(untaken(prev_status="failed", parked_left=0.0, lease_left=2.0), True, None, Park(2.5, "lease"), id="due"),
        P(untaken(prev_status="running", lease_left=0.0), True, None, Park(0.5, "lease"), id="lease-just-ended"),
        P(untaken(prev_status="running", lease_left=-3.0), True, None, Park(0.5, "lease"), id="lease-expired"),
        P(untaken(prev_status=None), False, "x", Park(0.5, "lease"), id="lost-race-looks-again-shortly"),
        # Taken: the workflow's state is checked in this order, then its definition.
        P({"workflow_tenant": None, "workflow_deleted": True}, False, None, Finish("skipped", GONE), id="missing"),
        P({"workflow_tenant": uuid.uuid4()}, True, None, Finish("skipped", GONE), id="foreign"),
        P({"workflow_deleted": True, "workflow_active": False}, False, None, Finish("skipped", DELETED), id="deleted"),
        P({"workflow_active": False}, False, None, Finish("skipped", DISABLED), id="disabled"),
        P({}, False, None, Finish("dead", "workflow version not found"), id="no-definition"),
        P({}, False, INVALID, Finish("dead", INVALID), id="no-definition-with-the-reason"),
        P({"attempt": 3}, True, None, Run(3), id="runs-with-its-attempt-number"),
        P({"attempt": 1, "lease_left": 9.0, "parked_left": 9.0}, True, "ignored", Run(1), id="taken-runs"),
    ],
)
def test_after_claim(kw, has_definition, error, fate):
    assert after_claim(view(**kw), event_tenant=TENANT, has_definition=has_definition, definition_error=error) == fate


T = TryResult
REFUSED = T("breaker", "circuit open", breaker_left=20.0)


@pytest.mark.parametrize(
    ("result", "attempt", "max_attempts", "backoff", "finish"),
    [
        P(T("ok"), 1, 3, 1.0, Finish("succeeded"), id="success"),
        P(T("ok", http_status=204), 9, 3, 0.0, Finish("succeeded"), id="success-past-the-budget"),
        P(T("permanent", "HTTP 400"), 1, 3, 1.0, Finish("dead", "HTTP 400"), id="permanent-dead-at-once"),
        P(T("permanent"), 3, 3, 1.0, Finish("dead", "permanent"), id="permanent-without-text"),
        P(T("transient", "HTTP 503"), 2, 3, 1.5, Finish("failed", "HTTP 503", retry_in=1.5), id="transient-retries"),
        P(T("transient"), 1, 3, 2.0, Finish("failed", "transient", retry_in=2.0), id="transient-without-text"),
        P(T("transient", "HTTP 503"), 3, 3, 1.5, Finish("dead", "gave up after 3 attempts: HTTP 503"), id="last"),
        P(T("transient", "x"), 4, 3, 1.0, Finish("dead", "gave up after 4 attempts: x"), id="past-the-last"),
        P(REFUSED, 1, 3, 0.5, Finish("failed", "circuit open", retry_in=20.0), id="breaker-waits-for-half-open"),
        P(REFUSED, 1, 3, 40.0, Finish("failed", "circuit open", retry_in=40.0), id="longer-backoff-wins"),
        P(REFUSED, 3, 3, 0.5, Finish("dead", "gave up after 3 attempts: circuit open"), id="breaker-counts-as-a-try"),
        P(T("breaker", breaker_left=3.0), 1, 3, 0.5, Finish("failed", "breaker", retry_in=3.0), id="breaker-no-text"),
    ],
)
def test_after_try(result, attempt, max_attempts, backoff, finish):
    assert after_try(result, attempt=attempt, max_attempts=max_attempts, backoff=backoff) == finish
