"""The bounded template engine: every limit trips with a clear reason, legitimate templates are untouched."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import Any

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from libs.common.templates import (
    TemplateEngine,
    TemplateFailed,
    TemplateInvalid,
    TemplateLimitExceeded,
    TemplateLimits,
    TemplateProblem,
)
from libs.common.templates.limits import MAX_NESTING, MAX_SOURCE_CHARS, MAX_TOKENS
from libs.common.templates.sandbox import BoundedEnvironment, Compiled, shared_environment
from services.executor.errors import PermanentError
from services.executor.templates import render_action_config

NESTED_LOOPS = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
PAYLOAD: dict[str, Any] = {
    "name": "Ada",
    "n": 7,
    "price": 12.5,
    "tags": ["b", "a", "c"],
    "none": None,
    "lines": [{"sku": "S-1", "qty": 2, "price": 3.5}, {"sku": "S-2", "qty": 1, "price": 10.0}],
    "text": "The quick brown fox jumps over the lazy dog. " * 4,
    "tree": [{"name": "root", "children": [{"name": "leaf", "children": []}]}],
}


def render(template: str, engine: TemplateEngine | None = None, payload: Any = None) -> str:
    out = (engine or TemplateEngine()).render_config({"t": template}, {"payload": payload or PAYLOAD, "event": {}})
    return str(out["t"])


def refused(template: str, engine: TemplateEngine | None = None) -> TemplateProblem:
    with pytest.raises(TemplateProblem) as caught:
        render(template, engine)
    return caught.value


# --- render limits (tunable) ------------------------------------------------------------------


def test_nested_loops_and_a_fanning_recursive_macro_stop_at_the_time_limit():
    engine = TemplateEngine(TemplateLimits(time_limit_ms=50))
    started = time.perf_counter()
    problem = refused(NESTED_LOOPS, engine)
    elapsed = time.perf_counter() - started
    assert isinstance(problem, TemplateLimitExceeded) and problem.code == "template_limit_exceeded"
    assert problem.message == "template took longer than 50 ms"
    assert elapsed < 1.0  # a few steps past the deadline, not the minutes the loops would take
    assert problem.path == ("t",) and problem.where("action.config") == "action.config.t"
    fan = "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(25) }}"
    assert refused(fan, engine).message == "template took longer than 50 ms"


def test_the_iteration_limit_counts_loops_calls_and_filters():
    engine = TemplateEngine(TemplateLimits(time_limit_ms=60_000, max_iterations=1000))
    assert render("{% for i in range(900) %}{% endfor %}ok", engine) == "ok"
    problem = refused("{% for i in range(2000) %}{% endfor %}", engine)
    assert problem.message == "loop limit exceeded (more than 1000 iterations)"
    assert "loop limit exceeded" in refused("{% for i in range(600) %}{{ i|string|upper }}{% endfor %}", engine).message
    # A filter walking a collection spends one step per item.
    assert "loop limit exceeded" in refused("{{ range(5000)|list|sort|first }}", engine).message


def test_output_is_cut_at_the_limit_and_the_budget_covers_the_whole_config():
    engine = TemplateEngine(TemplateLimits(max_output_chars=50))
    assert render("{{ 'x' * 50 }}", engine) == "x" * 50
    too_long = "template output is longer than 50 characters"
    assert refused("{% for i in range(1000) %}xx{% endfor %}", engine).message == too_long
    assert refused("{{ payload.text }}", engine).message == too_long
    # One budget for all strings of a config: two halves of the time limit do not make a pass each.
    slow = TemplateEngine(TemplateLimits(time_limit_ms=30))
    config = {f"s{i}": "{% for i in range(100000) %}{% endfor %}" for i in range(5)}
    with pytest.raises(TemplateLimitExceeded, match="longer than 30 ms"):
        slow.render_config(config, {"payload": {}, "event": {}})


# --- value bounds -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ 'a' * 10**9 }}", "value too large"),
        ("{{ ['a'] * 10**9 }}", "value too large"),
        ("{{ 9 ** (9 ** 9) }}", "number too large"),
        ("{{ 2 ** 100000 }}", "number too large"),
        ("{{ 10**4000 * 10**4000 }}", "number too large"),
        ("{{ 'a'|center(999999999) }}", "width too large (999999999; the limit is 10000)"),
        ("{{ 'a'|indent(999999999) }}", "width too large"),
        ("{{ ('line\n' * 5000)|indent('x' * 9000) }}", "string too long"),
        ("{{ ('word ' * 5000)|wordwrap(1, wrapstring='x' * 1000) }}", "string too long"),
        ("{{ '%999999999s'|format(1) }}", "width too large"),
        ("{{ '%999999999s' % 1 }}", "width too large"),
        ("{{ '%.999999999f' % 1.5 }}", "width too large"),
        ("{{ '%*s' % (999999999, 'a') }}", "width too large"),
        ("{{ '{:>999999999}'.format(1) }}", "width too large"),
        ("{{ '{:{}}'.format('a', 999999999) }}", "width too large"),
        ("{{ ('{0}' * 200000).format('x' * 1000) }}", "string too long"),
        ("{{ 'a'.ljust(10**9) }}", "width too large"),
        ("{% for i in range(1) %}{{ ('x' * 100000).join(['a'] * 100) }}{% endfor %}", "string too long"),
        ("{% for i in range(1) %}{{ ('\t' * 100000).expandtabs(1000) }}{% endfor %}", "string too long"),
        ("{{ 'a'.zfill(10**9) }}", "width too large"),
        ("{{ ('\t' * 100000).expandtabs(1000) }}", "string too long"),
        ("{{ ('x' * 100000).replace('', 'y' * 1000) }}", "string too long"),
        ("{{ ('x' * 100000)|replace('x', 'y' * 100) }}", "string too long"),
        ("{{ ('x' * 100000).translate({120: 'z' * 100}) }}", "string too long"),
        ("{{ (1).to_bytes(10**9, 'big') }}", "length too large"),
        ("{{ range(10)|batch(10**8, 'x')|list }}", "batch size too large"),
        ("{{ range(10)|slice(10**8)|list }}", "slice count too large"),
        ("{{ payload|tojson(10**6) }}", "indent too large"),
        ("{% set s = 'x' * 800000 %}{{ [s, s, s]|length }}", "value too large"),
        ("{% set s = 'x' * 800000 %}{{ {'a': s, 'b': s, 'c': s}|length }}", "value too large"),
        ("{% set s = 'x' * 800000 %}{{ ([s] + [s] + [s])|length }}", "value too large"),
        ("{% set s = 'x' * 800000 %}{{ ','.join([s, s, s]) }}", "value too large"),
        ("{% set s = 'x' * 600000 %}{{ (s ~ s ~ s ~ s)|length }}", "string too long"),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "too long",
        ),
        ("{% set x %}{% for i in range(30) %}{{ 'y' * 100000 }}{% endfor %}{% endset %}{{ x|length }}", "too long"),
        ("{% filter upper %}{% for i in range(30) %}{{ 'y' * 100000 }}{% endfor %}{% endfilter %}", "too long"),
        ("{{ ([0] * 1000)|map('default', 'x' * 100000, true)|list|length }}", "value too large"),
        ("{{ ('x' * 1000000)|list|length }}", "value too large"),
        ("{{ ('x' * 40000)|urlize }}", "input of urlize too long"),
        ("{{ ('x ' * 20000)|wordwrap }}", "input of wordwrap too long"),
        ("{{ lipsum(1000, max=1000) }}", "lipsum limited to 10000 words"),
        ("{{ (range(20000)|list)|sort|first }}", "input of sort too large (more than 10000 items)"),
        ("{{ ('x' * 50000)|unique|list }}", "input of unique too large"),
        ("{{ dict.fromkeys(range(20000), 1)|dictsort|first }}", "input of dictsort too large"),
        ("{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}", "calls nest too deeply (more than 32)"),
    ],
)
def test_each_bound_refuses_with_a_clear_reason(template: str, reason: str):
    started = time.perf_counter()
    problem = refused(template)
    assert isinstance(problem, TemplateLimitExceeded), problem.message
    assert reason in problem.message
    assert time.perf_counter() - started < 1.0


def test_sum_over_lists_is_linear_and_correct():
    assert render("{{ [[1], [2, 3], []]|sum(start=[]) }}") == "[1, 2, 3]"
    assert render("{{ payload.lines|sum(attribute='qty') }}") == "3"
    # Python's sum(lists, []) copies the growing list each time: 50,000 items would be seconds of work.
    patient = TemplateEngine(TemplateLimits(time_limit_ms=30_000))
    started = time.perf_counter()
    assert render("{{ (range(50000)|batch(1)|sum(start=[]))|length }}", patient) == "50000"
    assert time.perf_counter() - started < 2.0
    assert isinstance(refused("{{ [[1], (2,)]|sum(start=[]) }}"), TemplateFailed)


# --- compiling ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ payload.x ", "unexpected end of template"),
        ("{# never closed", "Missing end of comment tag"),  # raised by the lexer's very first token
        ("line one\n{% for x in y %}", "(line 2)"),
        ("{{ x|no_such_filter }}", "No filter named 'no_such_filter'"),
        ("x" * (MAX_SOURCE_CHARS + 1) + "{{ x }}", f"longer than {MAX_SOURCE_CHARS} characters"),
        ("{{ x }}" * (MAX_TOKENS // 3 + 1), f"more than {MAX_TOKENS} tokens"),
        ("{{ " + "(" * 500 + "1" + ")" * 500 + " }}", "nests too deeply"),
        ("{{ " + "not " * 500 + "x }}", "nests too deeply"),
        ("{{ x" + "|upper" * 100 + " }}", "nests too deeply"),
        ("{{ x" + " + x" * 100 + " }}", "nests too deeply"),
        ("{% if x %}" * 100 + "{% endif %}" * 100, "nests too deeply"),
        ("{% for a in b %}" * 21 + "{% endfor %}" * 21, "nests too deeply"),
        ("{% include 'other' %}", "cannot extend, include or import"),
        ("{% extends 'base' %}", "cannot extend, include or import"),
        ("{% import 'macros' as m %}", "cannot extend, include or import"),
    ],
)
def test_templates_that_do_not_compile_are_invalid(template: str, reason: str):
    started = time.perf_counter()
    with pytest.raises(TemplateInvalid) as caught:
        shared_environment().compile_checked(template)
    assert reason in caught.value.message and caught.value.code == "invalid_template"
    assert time.perf_counter() - started < 1.0
    assert reason in refused(template).message  # rendering says the same


def test_compiling_runs_no_template_code():
    # Upstream Jinja2 folds constant expressions while compiling (running filters with no budget).
    stock = ImmutableSandboxedEnvironment()
    assert "'ABC'" in stock.compile("{{ 'abc'|upper }}", raw=True)
    code = shared_environment().compile("{{ 'abc'|upper }}{{ 'a'|center(999999999) }}", raw=True)
    assert "'ABC'" not in code and "999999999" in code  # left for rendering, under the budget


def _at_depth(depth: int, fn: Any) -> Any:
    return fn() if depth == 0 else _at_depth(depth - 1, fn)


def test_the_verdict_does_not_depend_on_the_callers_stack():
    def deepest(k: int) -> str:
        return "{% if a %}" * k + "{{ " + "(" * k + "1" + ")" * k + " }}" + "{% endif %}" * k

    accepted = max(k for k in range(1, 40) if not _problems_of(deepest(k)))
    assert 10 <= accepted < MAX_NESTING
    # Called 300 frames deeper (a busy request handler), the same templates get the same verdicts.
    assert sys.getrecursionlimit() >= 1000
    assert not _at_depth(300, lambda: _problems_of(deepest(accepted)))
    assert _at_depth(300, lambda: _problems_of(deepest(accepted + 1))) == ["template nests too deeply (line 1)"]


def _problems_of(template: str) -> list[str]:
    try:
        shared_environment().compile_checked(template)
    except TemplateInvalid as exc:
        return [exc.message]
    return []


# --- legitimate templates are untouched --------------------------------------------------------

LEGIT = [
    "Order {{ payload.n }} for {{ payload.name|upper }}",
    "{{ payload.missing|default('none') }} {{ payload.none|default('x', true) }}",
    "{{ payload|tojson }}",
    "{{ payload.lines|tojson(2) }}",
    "{{ payload.tags|join(', ') }} {{ payload.tags|sort|join }} {{ payload.tags|reverse|list }}",
    "{% for l in payload.lines %}{{ loop.index }}/{{ loop.length }} {{ l.sku }} x{{ l.qty }}"
    "{% if not loop.last %}, {% endif %}{% endfor %}",
    "{% for l in payload.lines if l.qty > 1 %}{{ l.sku }}{% else %}none{% endfor %}",
    "{{ payload.lines|map(attribute='sku')|join('|') }} {{ payload.lines|selectattr('qty', 'gt', 1)|list|length }}",
    "{{ payload.lines|sum(attribute='price') }} {{ payload.lines|max(attribute='price') }}",
    "{{ payload.lines|groupby('qty')|list }} {{ payload|dictsort|first }}",
    "{{ payload.tags|batch(2, '-')|list }} {{ payload.tags|slice(2)|list }} {{ payload.tags|unique|list }}",
    "{{ '%05.1f|%-4s|%d' % (payload.price, 'ab', 3) }} {{ '%(a)s' % {'a': 1} }} {{ '%s'|format(payload.n) }}",
    "{{ '{:>8}|{:.2f}|{name}'.format('x', payload.price, name=payload.name) }}",
    "{{ 'Hi {n}'.format_map({'n': payload.name}) }}",
    "{% for t in payload.tags %}{{ t.ljust(3, '.') }}{{ '-'.join([t, t]) }}{{ 'a\tb'.expandtabs(2) }}"
    "{{ t.replace('a', 'A') }}{{ '{}!'.format(t) }}{% endfor %}",
    "{{ payload.name ~ '-' ~ payload.n }} {{ (payload.n * 3 + 1) // 2 }} {{ 2 ** 10 }} {{ payload.price / 2 }}",
    "{{ payload.text|truncate(20) }} {{ payload.text|wordwrap(30) }} {{ payload.text|wordcount }}",
    "{{ payload.name|center(11) }}|{{ 'a\nb'|indent(2, true) }}|{{ payload.name|title }}|{{ '  x '|trim }}",
    "{{ payload.text|replace('fox', 'cat', 1)|truncate(30) }} {{ '<b>x</b>'|striptags }} {{ 'a b'|urlencode }}",
    "{{ payload.price|round }} {{ payload.price|int }} {{ '3.5'|float }} {{ payload.tags|length }} {{ -3|abs }}",
    "{{ payload.tags|first }}{{ payload.tags|last }} {{ payload.tags|list|count }} {{ [3, 1, 2]|sort }}",
    "{% set ns = namespace(total=0) %}{% for l in payload.lines %}{% set ns.total = ns.total + l.qty * l.price %}"
    "{% endfor %}{{ ns.total }}",
    "{% macro row(l) %}[{{ l.sku }}]{% endmacro %}{% for l in payload.lines %}{{ row(l) }}{% endfor %}",
    "{% macro box() %}<{{ caller() }}>{% endmacro %}{% call box() %}{{ payload.name }}{% endcall %}",
    "{% for n in payload.tree recursive %}{{ n.name }}({{ loop(n.children) }}){% endfor %}",
    "{% set greeting %}Hello {{ payload.name }}{% endset %}{{ greeting|upper }}",
    "{% filter upper %}{{ payload.name }} and {{ payload.tags|join }}{% endfilter %}",
    "{% set c = cycler('odd', 'even') %}{% for t in payload.tags %}{{ c.next() }}{% endfor %}",
    "{% for t in payload.tags %}{{ loop.cycle('<', '>') }}{{ t }}{% endfor %}",
    "{{ payload.n is odd }} {{ payload.n is divisibleby 7 }} {{ 'a' in payload.tags }} {{ payload.x is defined }}",
    "{{ {'a': 1, 'b': [1, 2]}['b'][1] }} {{ (1, 2)|list }} {{ payload.tags[1:] }} {{ payload['lines'][0]['sku'] }}",
    "{# a comment #}{% raw %}{{ not rendered }}{% endraw %} {{- ' trimmed ' -}} !",
    "{% autoescape true %}{{ '<i>' ~ payload.name }}{% endautoescape %}",
    "ends with a newline {{ payload.n }}\n",
    "windows\r\nline {{ payload.n }}",
    "{{ range(3)|list }} {{ dict(a=1)|tojson }} {{ lipsum(1, false, 5, 6)|wordcount > 0 }}",
]


@pytest.mark.parametrize("template", LEGIT)
def test_legitimate_templates_render_exactly_like_upstream_jinja(template: str):
    stock = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    expected = stock.from_string(template).render({"payload": PAYLOAD, "event": {}})
    assert render(template) == expected


def test_strings_without_markup_are_not_templates():
    engine = TemplateEngine()
    config = {"body": '{"raw": "json with { braces }"}\n', "big": "{ x }" * 20_000}
    assert engine.render_config(config, {"payload": {}, "event": {}}) == config
    for text in config.values():
        entry = engine.cache.get(text)
        assert entry is not None and entry.literal and entry.compiled is None


def test_the_fast_path_renders_simple_templates_without_jinja():
    engine = TemplateEngine()
    out = engine.render_config({"t": "Hi {{ payload.name }} #{{ payload.n }}"}, {"payload": PAYLOAD, "event": {}})
    assert out == {"t": "Hi Ada #7"}
    entry = engine.cache.get("Hi {{ payload.name }} #{{ payload.n }}")
    assert entry is not None and entry.simple is not None and entry.compiled is None  # never compiled
    # A value the fast path cannot print (a list) goes to the sandbox, with the same result as Jinja.
    assert render("{{ payload.tags }}") == "['b', 'a', 'c']"


@pytest.mark.slow
def test_a_payload_larger_than_the_value_bound_is_read_not_refused():
    big = {"rows": [f"row {i:06d}" for i in range(250_000)]}  # renders to about 3.5 million characters
    engine = TemplateEngine(TemplateLimits(time_limit_ms=5_000))
    for template, expected in [
        ("{{ payload.get('rows')|length }}", "250000"),
        ("{{ payload.rows|first }} {{ payload.rows|last }}", "row 000000 row 249999"),
        ("{{ (payload.rows|default([]))|length }} {{ payload.rows[-1] }}", "250000 row 249999"),
        ("{{ (payload.rows|reverse|list)[0] }} {{ 'row 000007' in payload.rows }}", "row 249999 True"),
    ]:
        assert render(template, engine, big) == expected
    # What a template builds from it is bounded, though.
    for template in ["{{ payload.rows + payload.rows }}", "{{ payload.rows|map('upper')|list|length }}"]:
        with pytest.raises(TemplateLimitExceeded, match="value too large"):
            render(template, engine, big)


def test_runtime_failures_are_template_errors_not_limits():
    assert isinstance(refused("{{ payload.missing }}"), TemplateFailed)
    assert "unsafe" in refused("{{ ''.__class__.__mro__ }}").message
    assert refused("{{ 1 / 0 }}").message.startswith("ZeroDivisionError")


# --- the compile cache ---------------------------------------------------------------------------


def test_the_cache_stays_within_its_byte_bound():
    engine = TemplateEngine(cache_bytes=60_000)
    for i in range(200):
        assert render(f"{{{{ payload.n + {i} }}}} {'padding ' * 50}", engine).startswith(str(7 + i))
        assert engine.cache.bytes <= 60_000
    assert 0 < len(engine.cache) < 200
    assert engine.cache.get(f"{{{{ payload.n + 199 }}}} {'padding ' * 50}") is not None  # the newest stays
    assert engine.cache.get(f"{{{{ payload.n + 0 }}}} {'padding ' * 50}") is None  # the oldest went
    tiny = TemplateEngine(cache_bytes=1000)
    assert render("{{ payload.n * 2 }}" + "x" * 2000, tiny).startswith("14x")
    assert tiny.cache.bytes == 0 and len(tiny.cache) == 0  # an entry larger than the whole cache is not kept


# --- the event loop ------------------------------------------------------------------------------


async def test_the_event_loop_keeps_ticking_while_a_hostile_template_renders():
    limit_ms = 100.0
    # Only the clock may stop it: on a busy machine the step limit could otherwise be reached first.
    engine = TemplateEngine(TemplateLimits(time_limit_ms=limit_ms, max_iterations=10**12))
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)
    hostile = {"text": NESTED_LOOPS}
    for _ in range(3):
        with pytest.raises(PermanentError, match="template took longer than 100 ms"):
            await render_action_config(hostile, {}, {}, engine)
        await asyncio.sleep(0.01)
    stop.set()
    await task
    assert len(gaps) > 5
    assert max(gaps) < 2 * limit_ms / 1000, f"the loop stalled for {max(gaps) * 1000:.0f} ms"


class CountingEnvironment(BoundedEnvironment):
    def __init__(self) -> None:
        super().__init__()
        self.compiled_in: list[int] = []

    def compile_checked(self, source: str) -> Compiled:
        self.compiled_in.append(threading.get_ident())
        return super().compile_checked(source)


@pytest.mark.parametrize("cache_bytes", [32 * 1024 * 1024, 0])
async def test_new_templates_are_compiled_once_off_the_event_loop(cache_bytes: int):
    environment = CountingEnvironment()
    engine = TemplateEngine(cache_bytes=cache_bytes, environment=environment)
    config = {
        "text": "{% for t in payload.tags %}{{ t|upper }}{% endfor %}",
        "plain": "{{ payload.name }}",
        "list": "{{ payload.tags }}",
    }  # a simple template, but a list: the fast path gives way to Jinja
    expected = {"text": "BAC", "plain": "Ada", "list": "['b', 'a', 'c']"}
    assert await render_action_config(config, PAYLOAD, {}, engine) == expected
    assert len(environment.compiled_in) == 2  # "plain" took the fast path and was never compiled
    assert threading.get_ident() not in environment.compiled_in
    assert await render_action_config(config, PAYLOAD, {}, engine) == expected
    assert len(environment.compiled_in) == (2 if cache_bytes else 4)
    assert threading.get_ident() not in environment.compiled_in


def test_a_render_held_up_by_a_busy_machine_is_not_failed_for_time_it_did_not_use():
    from libs.common.templates.limits import Budget

    budget = Budget(TemplateLimits(time_limit_ms=100.0))
    budget.deadline -= 1.0  # the wall clock says the limit passed (the process was preempted)...
    budget.check()  # ...but the render used almost no CPU: it goes on
    assert budget.deadline > time.perf_counter()
    budget.hard_deadline -= 10.0  # past the wall-clock cap, it stops whatever the CPU says
    budget.deadline -= 1.0
    with pytest.raises(TemplateLimitExceeded, match="took longer than 100 ms"):
        budget.check()
