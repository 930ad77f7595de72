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


def decide(v: ClaimView, has_definition: bool = True, error: str | None = None):
    return after_claim(v, event_tenant=TENANT, has_definition=has_definition, definition_error=error)


@pytest.mark.parametrize("status", ["succeeded", "dead", "skipped"])
def test_a_final_row_is_acked_and_never_run_again(status):
    assert decide(view(attempt=None, prev_status=status)) == Ack("final")


def test_a_row_whose_retry_is_parked_is_acked_the_parked_copy_will_run():
    assert decide(view(attempt=None, prev_status="failed", parked_left=4.0)) == Ack("parked")


def test_a_live_lease_of_another_replica_parks_the_redelivery_until_it_ends():
    fate = decide(view(attempt=None, prev_status="running", lease_left=12.0))
    assert isinstance(fate, Park) and fate.reason == "lease" and fate.seconds == pytest.approx(12.5)


def test_a_lost_race_for_the_row_looks_again_shortly():
    fate = decide(view(attempt=None, prev_status=None))
    assert isinstance(fate, Park) and fate.seconds < 1


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"workflow_tenant": None}, "skipped: workflow not found"),
        ({"workflow_tenant": uuid.uuid4()}, "skipped: workflow not found"),
        ({"workflow_deleted": True}, "skipped: workflow was deleted"),
        ({"workflow_active": False}, "skipped: workflow is disabled"),
    ],
)
def test_a_missing_foreign_deleted_or_disabled_workflow_is_skipped(kw, reason):
    assert decide(view(**kw)) == Finish("skipped", reason)


def test_a_missing_definition_is_dead_with_the_reason():
    assert decide(view(), has_definition=False, error="stored workflow definition is invalid") == Finish(
        "dead", "stored workflow definition is invalid"
    )


def test_a_claimed_active_workflow_runs_with_its_attempt_number():
    assert decide(view(attempt=3)) == Run(3)


def test_success():
    assert after_try(TryResult("ok"), attempt=1, max_attempts=3, backoff=1.0) == Finish("succeeded")


def test_a_permanent_error_is_dead_at_once():
    assert after_try(TryResult("permanent", "HTTP 400"), attempt=1, max_attempts=3, backoff=1.0) == Finish(
        "dead", "HTTP 400"
    )


def test_a_transient_error_retries_after_the_backoff_until_the_last_attempt():
    assert after_try(TryResult("transient", "HTTP 503"), attempt=2, max_attempts=3, backoff=1.5) == Finish(
        "failed", "HTTP 503", retry_in=1.5
    )
    assert after_try(TryResult("transient", "HTTP 503"), attempt=3, max_attempts=3, backoff=1.5) == Finish(
        "dead", "gave up after 3 attempts: HTTP 503"
    )


def test_an_open_breaker_counts_as_a_try_and_waits_at_least_until_it_half_opens():
    refused = TryResult("breaker", "circuit open", breaker_left=20.0)
    assert after_try(refused, attempt=1, max_attempts=3, backoff=0.5) == Finish("failed", "circuit open", retry_in=20.0)
    assert after_try(refused, attempt=3, max_attempts=3, backoff=0.5) == Finish(
        "dead", "gave up after 3 attempts: circuit open"
    )
    # A backoff longer than the breaker's remaining time wins.
    assert after_try(refused, attempt=1, max_attempts=3, backoff=40.0).retry_in == 40.0


OTHER = uuid.uuid4()
GONE = "skipped: workflow not found"


@pytest.mark.parametrize(
    ("kw", "has_definition", "error", "fate"),
    [
        # Not taken: a final row is acked whatever else the claim saw.
        *[({"attempt": None, "prev_status": s, "parked_left": 5.0}, True, None, Ack("final")) for s in sorted(FINAL)],
        ({"attempt": None, "prev_status": "filtered", "workflow_tenant": None}, False, None, Ack("final")),
        # Not taken, not final: a parked copy that is still due wins over a live lease.
        ({"attempt": None, "prev_status": "failed", "parked_left": 0.1, "lease_left": 30.0}, True, None, Ack("parked")),
        (
            {"attempt": None, "prev_status": "failed", "parked_left": 0.0, "lease_left": 2.0},
            True,
            None,
            Park(2.5, "lease"),
        ),
        ({"attempt": None, "prev_status": "running", "parked_left": -1.0}, True, None, Park(0.5, "lease")),
        ({"attempt": None, "prev_status": "running", "lease_left": 0.0}, True, None, Park(0.5, "lease")),
        ({"attempt": None, "prev_status": "running", "lease_left": -3.0}, True, None, Park(0.5, "lease")),
        ({"attempt": None, "prev_status": None, "lease_left": None}, False, "x", Park(0.5, "lease")),
        # Taken: the workflow's state is checked in this order, then its definition.
        (
            {"workflow_tenant": None, "workflow_deleted": True, "workflow_active": False},
            False,
            None,
            Finish("skipped", GONE),
        ),
        ({"workflow_tenant": OTHER, "workflow_deleted": True}, True, None, Finish("skipped", GONE)),
        (
            {"workflow_deleted": True, "workflow_active": False},
            False,
            None,
            Finish("skipped", "skipped: workflow was deleted"),
        ),
        ({"workflow_active": False}, False, None, Finish("skipped", "skipped: workflow is disabled")),
        ({}, False, None, Finish("dead", "workflow version not found")),
        ({}, False, "stored workflow definition is invalid", Finish("dead", "stored workflow definition is invalid")),
        ({"attempt": 1, "prev_status": "failed", "lease_left": 9.0, "parked_left": 9.0}, True, None, Run(1)),
        ({"attempt": 7}, True, "ignored when the definition is there", Run(7)),
    ],
)
def test_after_claim_table(kw, has_definition, error, fate):
    assert decide(view(**kw), has_definition=has_definition, error=error) == fate


@pytest.mark.parametrize(
    ("result", "attempt", "max_attempts", "backoff", "finish"),
    [
        (TryResult("ok", http_status=204), 5, 5, 9.0, Finish("succeeded")),
        (TryResult("ok"), 9, 3, 0.0, Finish("succeeded")),  # a success past the budget (a replay) still succeeds
        (TryResult("permanent"), 1, 3, 1.0, Finish("dead", "permanent")),
        (TryResult("permanent", "HTTP 404", http_status=404), 3, 3, 1.0, Finish("dead", "HTTP 404")),
        (TryResult("transient"), 1, 3, 2.0, Finish("failed", "transient", retry_in=2.0)),
        (TryResult("transient", "HTTP 429", retry_after=30.0), 2, 3, 30.0, Finish("failed", "HTTP 429", retry_in=30.0)),
        (TryResult("transient", "HTTP 503"), 4, 3, 1.0, Finish("dead", "gave up after 4 attempts: HTTP 503")),
        (TryResult("transient", "HTTP 503"), 1, 1, 1.0, Finish("dead", "gave up after 1 attempts: HTTP 503")),
        (TryResult("breaker", breaker_left=3.0), 1, 3, 0.5, Finish("failed", "breaker", retry_in=3.0)),
        (TryResult("breaker", "open", breaker_left=3.0), 2, 3, 3.0, Finish("failed", "open", retry_in=3.0)),
        (TryResult("breaker", "open", breaker_left=3.0), 3, 3, 0.5, Finish("dead", "gave up after 3 attempts: open")),
        (TryResult("transient", "slow", breaker_left=8.0), 1, 3, 0.5, Finish("failed", "slow", retry_in=8.0)),
    ],
)
def test_after_try_table(result, attempt, max_attempts, backoff, finish):
    assert after_try(result, attempt=attempt, max_attempts=max_attempts, backoff=backoff) == finish
