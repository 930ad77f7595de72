"""Template rendering (sandboxed) and the backoff policy."""

from __future__ import annotations

import random
import uuid

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from libs.common.models.events import EventEnvelope
from services.executor.errors import PermanentError
from services.executor.retry import Backoff
from services.executor.settings import ExecutorSettings, TemplateSettings
from services.executor.templates import EventContext, TemplateError, engine_for, render_config

# Ten billion loop steps: a template only the time limit stops.
ENDLESS = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"


def test_renders_nested_strings_from_the_payload():
    cfg = {"url": "https://x/{{ payload.id }}", "body": {"items": ["{{ payload.lines[0].sku }}", 3]}}
    out = render_config(cfg, {"id": 7, "lines": [{"sku": "S-1"}]}, {})
    assert out == {"url": "https://x/7", "body": {"items": ["S-1", 3]}}


@pytest.mark.parametrize(
    "template",
    [
        "{{ payload.missing }}",
        "{{ payload.x ",
        "{{ payload.__class__.__mro__ }}",
        "{{ ''.__class__.__subclasses__() }}",
    ],
)
def test_template_errors_and_sandbox_escapes_are_permanent(template):
    with pytest.raises(PermanentError, match="template error"):
        render_config({"text": template}, {"x": 1}, {})


def test_backoff_grows_with_jitter_and_honours_retry_after():
    b = Backoff(base_seconds=1.0, max_seconds=10.0)
    rnd = random.Random(1)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)]:
        for _ in range(20):
            assert ceiling / 2 <= b.delay(attempt, rand=rnd) <= ceiling
    assert b.delay(1, retry_after=7.0) == 7.0
    assert b.delay(1, retry_after=99.0) == 10.0


@pytest.mark.parametrize(
    ("template", "payload"),
    [
        ("Order {{ payload.id }} of {{payload.customer.name}}!", {"id": 7, "customer": {"name": "Ada"}}),
        ("{{ payload.flag }} {{ payload.ratio }}", {"flag": True, "ratio": 0.5}),
        ("{{ payload.nested }}", {"nested": {"a": [1, 2]}}),
        ("{{ payload.values }}", {"values": "x"}),
        ("{{ payload.id | upper }}", {"id": "abc"}),
        ("{{ payload.none }}", {"none": None}),
    ],
)
def test_fast_path_renders_exactly_like_jinja(template, payload):
    stock = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)  # upstream, unbounded
    expected = stock.from_string(template).render({"payload": payload, "event": {}})
    assert render_config({"t": template}, payload, {}) == {"t": expected}


def test_event_fields_are_available_to_templates():
    ev = EventEnvelope(
        event_id=uuid.uuid4(),
        dedup_key="k",
        tenant_id=uuid.uuid4(),
        workflow_id=uuid.uuid4(),
        workflow_version=1,
        trigger="schedule",
        payload={},
    )
    out = render_config({"t": "{{ event.trigger }}:{{ event.id }}:{{ event.scheduled_for }}"}, {}, EventContext(ev))
    assert out == {"t": f"schedule:{ev.event_id}:None"}
    with pytest.raises(PermanentError):
        render_config({"t": "{{ event._event }}"}, {}, EventContext(ev))


def test_template_errors_are_permanent_and_name_the_field():
    with pytest.raises(TemplateError) as caught:
        render_config({"body": {"items": ["ok", "{{ payload.missing }}"]}}, {}, {})
    error = caught.value
    assert isinstance(error, PermanentError)
    assert error.code == "template_error" and error.field == "action.config.body.items.1"
    assert error.message == "template error in action.config.body.items.1: 'dict object' has no attribute 'missing'"
    # Only the 100 ms clock may stop it: without a step limit it cannot end on "loop limit exceeded" first.
    clock_only = engine_for(TemplateSettings(max_iterations=10**12))
    with pytest.raises(TemplateError) as caught:
        render_config({"text": ENDLESS}, {}, {}, clock_only)
    assert caught.value.code == "template_limit_exceeded"
    assert caught.value.message == "template error in action.config.text: template took longer than 100 ms"


def test_template_limits_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("IPAAS_EXECUTOR_TEMPLATE_TIME_LIMIT_MS", "20")
    monkeypatch.setenv("IPAAS_EXECUTOR_TEMPLATE_MAX_OUTPUT_CHARS", "5")
    monkeypatch.setenv("IPAAS_EXECUTOR_TEMPLATE_MAX_ITERATIONS", "50")
    monkeypatch.setenv("IPAAS_EXECUTOR_TEMPLATE_CACHE_BYTES", "123456")
    engine = engine_for(ExecutorSettings().templates)
    assert engine.cache.max_bytes == 123456
    assert render_config({"t": "{{ 'x' * 5 }}"}, {}, {}, engine) == {"t": "xxxxx"}
    with pytest.raises(TemplateError, match="output is longer than 5 characters"):
        render_config({"t": "{{ 'x' * 6 }}"}, {}, {}, engine)
    with pytest.raises(TemplateError, match=r"loop limit exceeded \(more than 50 iterations\)"):
        render_config({"t": "{% for i in range(60) %}{% endfor %}"}, {}, {}, engine)
    monkeypatch.setenv("IPAAS_EXECUTOR_TEMPLATE_MAX_ITERATIONS", str(10**9))
    with pytest.raises(TemplateError, match="took longer than 20 ms"):
        render_config({"t": ENDLESS}, {}, {}, engine_for(ExecutorSettings().templates))
