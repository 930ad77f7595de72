"""The save-time template check: workflows whose templates do not compile are refused, field by field."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from libs.common.http.envelope import validation_details
from libs.common.models.api import DryRunRequest
from libs.common.models.workflows import HttpRequestAction, WorkflowCreate, WorkflowDefinition, template_problems
from libs.common.templates.limits import MAX_CONFIG_DEPTH, MAX_CONFIG_TOKENS, MAX_SOURCE_CHARS
from tests.helpers.fakes import definition


def workflow(action_type: str, config: dict[str, Any]) -> dict[str, Any]:
    """A webhook workflow of one ``action_type`` action (with a credential, unless it is an HTTP request)."""
    return definition(action_type, config, None if action_type == "http_request" else uuid.uuid4())


def details(body: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as caught:
        WorkflowCreate.model_validate(body)
    return validation_details(caught.value)


def test_a_syntax_error_is_refused_with_the_field_path():
    got = details(workflow("slack_message", {"text": "Order {{ payload.id }"}))
    assert got == [{"field": "action.config.text", "message": "unexpected '}' (line 1)", "type": "invalid_template"}]


def test_an_unclosed_comment_is_a_syntax_error_not_a_crash():
    got = details(workflow("discord_message", {"content": "hi {# never closed"}))
    assert got == [
        {"field": "action.config.content", "message": "Missing end of comment tag (line 1)", "type": "invalid_template"}
    ]


def test_every_bad_template_of_a_json_body_is_named():
    body = {"items": ["{% for x in payload.xs %}", "fine {{ payload.a }}", {"deep": ["{{ x|nope }}"]}], "n": 3}
    got = details(
        workflow(
            "http_request",
            {"url": "https://example.invalid/{{ payload.id }}", "body": body, "headers": {"X-Id": "{{ 1 + }}"}},
        )
    )
    fields = [d["field"] for d in got]
    assert fields == ["action.config.headers.X-Id", "action.config.body.items.0", "action.config.body.items.2.deep.0"]
    assert all(d["type"] == "invalid_template" for d in got)
    assert "No filter named 'nope'" in got[2]["message"]


def test_templates_that_compile_are_saved_and_plain_strings_are_not_templates():
    ok = WorkflowCreate.model_validate(
        workflow(
            "http_request",
            {
                "url": "https://example.invalid/{{ payload.id }}",
                "body": {
                    "text": "{% for l in payload.lines %}{{ l.sku|upper }}{% endfor %}",
                    "json": '{"a": {"b": 1}}',
                    "large": "{ not a template } " * 10_000,
                },
            },
        )
    )
    assert isinstance(ok.action, HttpRequestAction)
    assert len(ok.action.config.body["large"]) > MAX_SOURCE_CHARS


def test_bounds_of_a_whole_config():
    deep: Any = "{{ payload.a }}"
    for _ in range(MAX_CONFIG_DEPTH + 1):
        deep = [deep]
    got = details(workflow("http_request", {"url": "https://example.invalid/", "body": deep}))
    assert got[0]["message"] == f"config nests more than {MAX_CONFIG_DEPTH} levels"
    assert got[0]["field"].startswith("action.config.body.0.0")

    many = {f"f{i}": "{{ x }}" * 600 for i in range(10)}  # 1,800 tokens each: fine alone, too many together
    got = details(workflow("http_request", {"url": "https://example.invalid/", "body": many}))
    assert got == [
        {
            "field": "action.config",
            "type": "invalid_template",
            "message": f"the templates of this config have more than {MAX_CONFIG_TOKENS} tokens together",
        }
    ]


def test_stored_definitions_and_raw_dry_run_bodies_are_not_checked_by_the_models():
    bad = workflow("discord_message", {"content": "{{ oops"})
    assert WorkflowDefinition.model_validate(bad).first_action().type == "discord_message"  # old versions still load
    request = DryRunRequest.model_validate({"workflow": bad, "payload": {}})
    assert template_problems(request.workflow) == [
        (("action", "config", "content"), "unexpected end of template, expected 'end of print statement'. (line 1)")
    ]
