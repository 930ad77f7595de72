"""Multi-step definitions: the model's rules, the save-time step checks, and what the OpenAPI document says."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from libs.common.models.workflows import (
    MAX_STEPS,
    WorkflowCreate,
    WorkflowDefinition,
    condition_template,
    template_problems,
)
from services.gateway.openapi import build
from services.gateway.settings import GatewaySettings

URL = "https://example.invalid/x"


def http(step_id: str, body: Any = None) -> dict[str, Any]:
    return {"id": step_id, "action": {"type": "http_request", "config": {"url": URL, "body": body}}}


def steps(*items: dict[str, Any]) -> dict[str, Any]:
    return {"name": "s", "trigger": {"type": "webhook"}, "steps": list(items)}


def errors(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    with pytest.raises(ValidationError) as caught:
        WorkflowCreate.model_validate(body)
    return [(".".join(map(str, e["loc"])), e["type"], e["msg"]) for e in caught.value.errors()]


def test_a_single_action_is_one_step_named_action_and_dumps_as_sent():
    single = {"name": "a", "trigger": {"type": "webhook"}, "action": http("x")["action"]}
    parsed = WorkflowDefinition.model_validate(single)
    assert parsed.steps is None
    assert [s.id for s in parsed.step_list()] == ["action"]
    assert "steps" not in parsed.model_dump(mode="json")


def test_step_references_go_only_backwards():
    ok = WorkflowCreate.model_validate(
        steps(
            http("a"),
            {"id": "f", "filter": {"condition": "steps.a.output.status == 200"}},
            http("b", "{{ steps['f'].output }}"),
        )
    )
    assert [s.id for s in ok.step_list()] == ["a", "f", "b"]
    assert template_problems(ok) == []
    assert errors(steps(http("a", {"x": "{{ steps.a.output }}"}))) == [
        (
            "steps.0.action.config.body.x",
            "invalid_step",
            "steps.a names a later step (or this one): a step reads only earlier ones",
        )
    ]
    [(field, kind, message)] = errors(steps(http("a", "{{ steps.nope.output }}")))
    assert (field, kind) == ("steps.0.action.config.body", "invalid_step") and "steps.nope names no step" in message


def test_limits_and_shapes():
    assert errors(steps(*[http(f"s{i}") for i in range(MAX_STEPS + 1)]))[0][:2] == ("steps", "too_long")
    assert WorkflowCreate.model_validate(steps(*[http(f"s{i}") for i in range(MAX_STEPS)]))
    assert errors(steps())[0][:2] == ("steps", "too_short")
    assert errors(steps(http("a"), http("a"))) == [("steps.1.id", "invalid_step", "duplicate step id 'a'")]
    assert errors(steps({**http("a"), "retry": {"max_attempts": 0}}))[0][0] == "steps.0.retry.max_attempts"
    assert errors(steps({**http("a"), "timeout_seconds": 0}))[0][0] == "steps.0.timeout_seconds"
    assert errors(steps({**http("a"), "continue_on_error": "yes"}))[0][0] == "steps.0.continue_on_error"


def test_a_condition_is_an_expression_or_one_print_statement():
    assert condition_template("payload.a > 1") == "{{ payload.a > 1 }}"
    assert condition_template(" {{ payload.a }} ") == "{{ payload.a }}"
    assert condition_template("{{ payload.a }} and {{ payload.b }}") == "{{ {{ payload.a }} and {{ payload.b }} }}"
    assert errors(steps({"id": "f", "filter": {"condition": "{{ payload.a }} and {{ payload.b }}"}}))[0][:2] == (
        "steps.0.filter.condition",
        "invalid_template",
    )


def test_the_document_describes_both_forms_and_the_filtered_status():
    schemas = build(GatewaySettings())["components"]["schemas"]
    assert schemas["WorkflowCreate"]["oneOf"] == [{"required": ["action"]}, {"required": ["steps"]}]
    assert schemas["WorkflowCreate"]["properties"]["steps"]["anyOf"][0]["maxItems"] == MAX_STEPS
    assert schemas["WorkflowStep"]["oneOf"] == [{"required": ["action"]}, {"required": ["filter"]}]
    assert set(schemas["WorkflowStep"]["properties"]) == {
        "id",
        "action",
        "filter",
        "timeout_seconds",
        "retry",
        "continue_on_error",
    }
    assert "filtered" in schemas["ExecutionOut"]["properties"]["status"]["enum"]
    assert "filtered" in schemas["AttemptOut"]["properties"]["outcome"]["enum"]
    assert "steps" in schemas["ExecutionDetailOut"]["properties"]
    assert "from_start" in schemas["DlqReplayRequest"]["properties"]


def test_the_cli_reads_a_multi_step_workflow_as_the_api_shows_it():
    from ipaas_cli.plan import current_definition

    shown = {"name": "s", "trigger": {"type": "webhook"}, "steps": [http("a")], "is_active": True}
    definition = current_definition(shown)
    assert [s["id"] for s in definition["steps"]] == ["a"] and "action" not in definition
