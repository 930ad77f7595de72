"""Typed templates: inside a JSON body, a string that is exactly one ``{{ expr }}`` gives the value itself."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from libs.common.templates import TemplateEngine, TemplateLimits
from libs.common.templates.typed import typed_expression, typed_source
from services.executor.errors import PermanentError
from services.executor.templates import TYPED_KEYS, render_action_config, render_config

PAYLOAD: dict[str, Any] = {
    "amount": 42,
    "price": 12.5,
    "paid": True,
    "note": None,
    "id": "42",
    "lines": [{"sku": "S-1", "qty": 2}],
    "customer": {"name": "Ada"},
    "at": "2026-03-04T05:06:07Z",
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ payload.amount }}", 42),
        ("{{ payload.price }}", 12.5),
        ("{{ payload.paid }}", True),
        ("{{ payload.note }}", None),
        ("{{ payload.id }}", "42"),  # a string stays a string
        ("{{ payload.lines }}", [{"sku": "S-1", "qty": 2}]),
        ("{{ payload.customer }}", {"name": "Ada"}),
        ("{{ payload.amount * 2 }}", 84),
        ("{{ payload.amount > 100 }}", False),
        ("{{ payload.lines | length }}", 1),
        ("{{ payload.missing | default(0) }}", 0),
        ("{{ payload.price * 3 | round(1) }}", 37.5),
        ("{{ payload.lines | map(attribute='sku') | list }}", ["S-1"]),
        ("{{ (1, 2) }}", [1, 2]),
        ("{{- payload.amount -}}", 42),
        ("{{ payload.at | date('%d/%m/%Y') }}", "04/03/2026"),
        ("{{ 0 | date }}", "1970-01-01 00:00:00"),
        ("{{ payload.customer | tojson }}", '{"name": "Ada"}'),
        # Text around it, or several expressions: the text.
        ("amount {{ payload.amount }}", "amount 42"),
        ("{{ payload.amount }}{{ payload.amount }}", "4242"),
        (" {{ payload.amount }}", " 42"),
        ("{% if payload.paid %}{{ payload.amount }}{% endif %}", "42"),
    ],
)
def test_one_expression_in_a_body_gives_its_typed_value_and_anything_else_text(template: str, expected: Any) -> None:
    out = render_config({"body": {"v": template, "deep": [template]}}, PAYLOAD, {})
    assert out == {"body": {"v": expected, "deep": [expected]}}
    assert type(out["body"]["v"]) is type(expected)


def test_only_json_documents_are_typed() -> None:
    out = render_config(
        {
            "url": "https://x/{{ payload.amount }}",
            "text": "{{ payload.amount }}",
            "headers": {"X-N": "{{ payload.amount }}"},
            "body": "{{ payload.customer }}",
        },
        PAYLOAD,
        {},
    )
    assert out == {"url": "https://x/42", "text": "42", "headers": {"X-N": "42"}, "body": {"name": "Ada"}}
    assert "body" in TYPED_KEYS and "headers" not in TYPED_KEYS and "text" not in TYPED_KEYS


def test_the_async_path_compiles_typed_expressions_off_the_loop() -> None:
    engine = TemplateEngine()
    cfg = {"body": {"total": "{{ payload.lines | sum(attribute='qty') + 1 }}", "fast": "{{ payload.amount }}"}}
    total = cfg["body"]["total"]
    expression = typed_expression(total)
    assert expression is not None
    assert engine.pending(cfg, {"payload": PAYLOAD}, TYPED_KEYS) == [typed_source(expression)]
    out = asyncio.run(render_action_config(cfg, PAYLOAD, {}, engine))
    assert out == {"body": {"total": 3, "fast": 42}}


@pytest.mark.parametrize(
    "template",
    [
        "{{ payload.missing }}",
        "{{ payload.__class__ }}",
        "{{ payload.( }}",
    ],
)
def test_typed_errors_are_permanent_with_the_field(template: str) -> None:
    with pytest.raises(PermanentError, match=r"action\.config\.body\.v"):
        render_config({"body": {"v": template}}, PAYLOAD, {})


def test_typed_values_keep_the_bounds() -> None:
    engine = TemplateEngine(TemplateLimits(max_output_chars=20))
    with pytest.raises(PermanentError, match="longer than 20"):
        render_config({"body": {"v": "{{ payload.lines * 5 }}"}}, PAYLOAD, {}, engine)
    with pytest.raises(PermanentError, match="longer than 20"):
        render_config({"body": {"v": "{{ payload.customer }}"}}, {"customer": {"name": "x" * 50}}, {}, engine)
    with pytest.raises(PermanentError, match="limit exceeded|took longer"):
        render_config(
            {"body": {"v": "{{ range(100000) | map('string') | join | length }}"}},
            PAYLOAD,
            {},
            TemplateEngine(TemplateLimits(time_limit_ms=5, max_iterations=1000)),
        )


@pytest.mark.parametrize(
    ("source", "expression"),
    [
        ("{{ a }}", " a "),
        ("{{- a -}}", " a "),
        ("{{ a }} {{ b }}", None),
        ("x{{ a }}", None),
        ("{{ a }}x", None),
        ("{{ }}", None),
        ("{% if a %}{{ a }}{% endif %}", None),
    ],
)
def test_what_counts_as_exactly_one_expression(source: str, expression: str | None) -> None:
    assert typed_expression(source) == expression
