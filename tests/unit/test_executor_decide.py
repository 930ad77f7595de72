"""The executor's decisions, exhaustively: what a claimed (or not claimed) event becomes, and a try's outcome."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.executor.decide import Ack, ClaimView, Finish, Park, Run, TryResult, after_claim, after_try

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
