"""One exported trace per event, as an SRE's collector receives it.

Auth, gateway and executor run as processes against real NATS and Postgres and export over
OTLP to a receiver inside the test (HTTP/protobuf, then gRPC), which decodes with
``opentelemetry-proto``.  One signed webhook to an ``http_request`` workflow with a credential
is one trace across the three services, with the spans of issue 12 (kinds, names, parents), and
its id is the one in the 202's ``traceparent``, on the execution row, on the executor's log lines
and in the ``traceparent`` the target received.  A retried event keeps every attempt's process
span in its trace; a replayed dead letter links back to the trace it died in; secrets planted in
a target's error answer never reach the collector.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from libs.common.logs.secret_shapes import REDACTED
from libs.common.models.credentials import RESOLVE_SUBJECT
from tests.e2e.conftest import Platform, Stack
from tests.helpers.fakes import Answer, FakeSink, http_step, steps_workflow
from tests.helpers.otlp_receiver import OtlpGrpcReceiver, OtlpHttpReceiver, ReceivedSpan
from tests.helpers.services import OPENMETRICS, ServiceProcess, exemplar_trace_ids, metrics_text
from tests.helpers.stack_processes import Api, every_second
from tests.helpers.wait import wait_until

pytestmark = [pytest.mark.slow]

RESOLVE_SEND = f"send {RESOLVE_SUBJECT}"
RESOLVE_PROCESS = f"process {RESOLVE_SUBJECT}"
BEARER = "Bearer " + "tok" + uuid.uuid4().hex  # the credential's value: an Authorization header


Receiver = OtlpHttpReceiver | OtlpGrpcReceiver


async def workflow(t: Api, url: str, credential_id: str | None) -> dict[str, Any]:
    """A webhook workflow of ``t``'s user that POSTs the payload's id to ``url`` (with the credential, if any)."""
    action: dict[str, Any] = {
        "type": "http_request",
        "config": {"method": "POST", "url": url, "body": {"id": "{{ payload.id }}"}},
    }
    if credential_id is not None:
        action["credential_id"] = credential_id
    return await t.webhook_workflow(f"traced {uuid.uuid4().hex[:6]}", action)


@pytest.fixture
async def receiver(request: pytest.FixtureRequest) -> AsyncIterator[Receiver]:
    """A collector in this test, over OTLP/HTTP, or over gRPC for a test that says
    ``@pytest.mark.parametrize("receiver", ["grpc"], indirect=True)``; made before the stack, it is stopped last."""
    found = await (OtlpGrpcReceiver() if getattr(request, "param", "") == "grpc" else OtlpHttpReceiver()).start()
    yield found
    await found.stop()


@pytest.fixture
def otel(receiver: Receiver) -> dict[str, str]:
    """The environment that makes a service export its spans to ``receiver``."""
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc" if isinstance(receiver, OtlpGrpcReceiver) else "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }


@pytest.fixture
def common(otel: dict[str, str], database_url: str, nats_url: str) -> dict[str, str]:
    """The environment of auth, the gateway and a scheduler: the test's servers, schedules every second, export."""
    return {
        "DATABASE_URL": database_url,
        "NATS_URL": nats_url,
        "LOG_LEVEL": "INFO",
        "IPAAS_SCHEDULE_MIN_INTERVAL_SECONDS": "1",
        **otel,
    }


@pytest.fixture
async def traced(receiver: Receiver, platform: Platform, common: dict[str, str], otel: dict[str, str]) -> Stack:
    """Auth, gateway and executor exporting their spans to ``receiver``; a user's client of the gateway."""
    return await platform(common=common, executor={**otel, "LOG_LEVEL": "DEBUG", "IPAAS_EXECUTOR_MAX_ATTEMPTS": "3"})


def one(spans: list[ReceivedSpan], name: str, service: str, kind: str) -> ReceivedSpan:
    found = [s for s in spans if s.name == name and s.service == service]
    assert len(found) == 1, f"{service} {name}: {len(found)} spans in {sorted((s.service, s.name) for s in spans)}"
    assert found[0].kind == kind, f"{name} is {found[0].kind}, not {kind}"
    return found[0]


def tree(spans: list[ReceivedSpan]) -> str:
    """The trace drawn as an indented tree (service, kind, name), for failure messages and the docs."""
    children: dict[str, list[ReceivedSpan]] = {}
    for s in spans:
        children.setdefault(s.parent_id, []).append(s)
    ids = {s.span_id for s in spans}
    lines: list[str] = []

    def draw(span: ReceivedSpan, depth: int) -> None:
        lines.append(f"{'  ' * depth}{span.service}: {span.kind} {span.name}")
        for child in children.get(span.span_id, []):
            draw(child, depth + 1)

    for root in [s for s in spans if s.parent_id not in ids]:
        draw(root, 0)
    return "\n".join(lines)


# The spans of one webhook's trace, (service, name, kind), in the order _one_webhook_is_one_trace names them.
EXPECTED = [
    ("gateway", "POST /hooks/{workflow_id}", "SERVER"),
    ("gateway", "publish EVENTS", "PRODUCER"),
    ("executor", "process EVENTS", "CONSUMER"),
    ("executor", "INSERT executions", "CLIENT"),
    ("executor", RESOLVE_SEND, "CLIENT"),
    ("auth", RESOLVE_PROCESS, "CONSUMER"),
    ("auth", "SELECT credentials", "CLIENT"),
    ("executor", "connector http_request", "CLIENT"),
    ("executor", "UPDATE executions", "CLIENT"),
]


async def _complete_trace(receiver: Receiver, trace_id: str, expected: set[tuple[str, str]]) -> list[ReceivedSpan]:
    async def complete() -> list[ReceivedSpan] | None:
        spans = receiver.trace(trace_id)
        return spans if expected <= {(s.service, s.name) for s in spans} else None

    try:
        spans: list[ReceivedSpan] = await wait_until(
            complete, timeout=20, message="every span of the trace at the collector"
        )
        return spans
    except AssertionError as exc:  # wait_until's timeout
        raise AssertionError(f"trace {trace_id} incomplete:\n{tree(receiver.trace(trace_id))}") from exc


async def _one_webhook_is_one_trace(t: Stack, receiver: Receiver, sink: FakeSink) -> None:
    cred = await t.credential("target key", "http", {"headers": {"Authorization": BEARER}})
    wf = await workflow(t, f"{sink.url}/orders", cred["id"])
    event_id, traceparent = await t.webhook(wf, {"id": "A-1"})
    trace_id = traceparent.split("-")[1]
    execution = await t.execution(wf["id"], "succeeded")
    assert execution["event_id"] == event_id

    spans = await _complete_trace(receiver, trace_id, {(service, name) for service, name, _ in EXPECTED})
    drawn = tree(spans)
    server, publish, process, claim, send, resolve, lookup, connector, finish = (
        one(spans, name, service, kind) for service, name, kind in EXPECTED
    )
    assert server.parent_id == "", drawn  # a new trace: the sender sent no trusted context
    assert publish.parent_id == server.span_id, drawn
    assert process.parent_id == publish.span_id, drawn
    for child in (claim, send, connector, finish):
        assert child.parent_id == process.span_id, f"{child.name}\n{drawn}"
    assert resolve.parent_id == send.span_id, drawn  # auth's span joins the event's trace
    assert lookup.parent_id == resolve.span_id, drawn
    # The reply carried auth's context back: the request span links to it.
    assert (trace_id, resolve.span_id) in [(tid, sid) for tid, sid, _ in send.links], drawn

    subject = publish.attributes["messaging.destination.name"]
    assert subject.startswith("events.") and subject.endswith(f".{wf['id']}")
    assert process.attributes["messaging.system"] == "nats"
    assert process.attributes["messaging.destination.name"] == subject
    assert process.attributes["messaging.consumer.group.name"] == "executor"
    assert process.attributes["messaging.message.id"] == publish.attributes["messaging.message.id"]
    assert process.attributes["messaging.nats.message.delivery_count"] == 1
    assert process.attributes["ipaas.execution.attempt"] == 1
    assert connector.attributes["http.response.status_code"] == 200
    assert connector.attributes["server.address"] == "127.0.0.1"
    assert claim.attributes["db.system.name"] == "postgresql"

    # The same trace id everywhere an SRE looks.
    assert execution["trace_id"] == trace_id
    received = sink.requests[0].headers["traceparent"]
    assert received.split("-")[1] == trace_id
    assert received.split("-")[2] == connector.span_id  # the target's parent is the CLIENT span
    assert sink.requests[0].headers["Authorization"] == BEARER
    lines = [json.loads(line) for line in t.executors[0].logs().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("event_id") == event_id]
    assert mine, "no executor log line names the event"
    assert {line.get("trace_id") for line in mine} == {trace_id}
    assert all(line.get("span_id") for line in mine)


@pytest.mark.timeout(120)
async def test_one_webhook_is_one_exported_trace_retries_stay_in_it_and_secrets_stay_out(
    traced: Stack, receiver: Receiver, sink: FakeSink, sinks: Any
) -> None:
    t = traced
    await _one_webhook_is_one_trace(t, receiver, sink)

    # A retried event: the target answers 500 once, with an answer that repeats secrets to us.
    cred = await t.credential("flaky key", "http", {"headers": {"Authorization": BEARER}})
    flaky = await sinks()
    wf = await workflow(t, f"{flaky.url}/flaky", cred["id"])
    whsec = wf["webhook"]["secret"]
    assert whsec.startswith("whsec_")

    def answer(seen: Any, n: int) -> Answer:
        if n > 1:
            return Answer(200, "{}")
        leak = f"upstream broke; you sent {seen.headers.get('Authorization')} from {whsec} as Bearer {t.token}"
        return Answer(500, leak)

    flaky.behaviour = answer
    event_id, traceparent = await t.webhook(wf, {"id": "B-2"})
    trace_id = traceparent.split("-")[1]
    execution = await t.execution(wf["id"], "succeeded")
    assert execution["attempts"] == 2 and execution["trace_id"] == trace_id
    assert [r.headers["traceparent"].split("-")[1] for r in flaky.requests] == [trace_id, trace_id]

    async def both_attempts() -> list[ReceivedSpan] | None:
        spans = [s for s in receiver.trace(trace_id) if s.name == "process EVENTS"]
        return spans if len(spans) == 2 else None

    processes = await wait_until(both_attempts, timeout=20, message="both attempts' process spans")
    assert sorted(s.attributes["ipaas.execution.attempt"] for s in processes) == [1, 2]
    assert all(s.attributes["messaging.nats.message.delivery_count"] >= 1 for s in processes)
    failed = [
        s
        for s in receiver.trace(trace_id)
        if s.name == "connector http_request" and s.attributes.get("http.response.status_code") == 500
    ]
    assert len(failed) == 1
    exceptions = [e for name, e in failed[0].events if name == "exception"]
    assert exceptions and REDACTED in exceptions[0]["exception.message"]  # it was there, and masked

    # A dead letter (the target refuses for good), replayed: the replay's span links to the trace it died in.
    refusing = await sinks(lambda _seen, _n: Answer(400, "no"))
    wf = await workflow(t, f"{refusing.url}/refuses", None)
    event_id, traceparent = await t.webhook(wf, {"id": "C-3"})
    died_in = traceparent.split("-")[1]
    await t.execution(wf["id"], "dead")
    await t.call("POST", f"/api/dlq/{event_id}/replay", None, expect=202)

    async def replay_span() -> ReceivedSpan | None:
        return next(
            (
                s
                for s in receiver.spans
                if s.name == "POST /api/dlq/{event_id}/replay" and any(tid == died_in for tid, _, _ in s.links)
            ),
            None,
        )

    replay = await wait_until(replay_span, timeout=20, message="the replay's span with a link to the dead trace")
    assert replay.trace_id != died_in
    await wait_until(lambda: refusing.calls >= 2, timeout=20, message="the replayed event to run")
    assert refusing.requests[1].headers["traceparent"].split("-")[1] == replay.trace_id

    # Nothing secret reached the collector, in any span of any trace.
    everything = "\n".join(s.text() for s in receiver.spans)
    for secret in (BEARER.split(" ")[1], whsec, t.token):
        assert secret not in everything


@pytest.mark.timeout(90)
@pytest.mark.parametrize("receiver", ["grpc"], indirect=True)
async def test_the_same_trace_over_grpc_export(traced: Stack, receiver: Receiver, sink: FakeSink) -> None:
    await _one_webhook_is_one_trace(traced, receiver, sink)


@pytest.mark.timeout(90)
async def test_a_scheduled_event_trace_starts_at_the_schedulers_publish(
    traced: Stack, receiver: Receiver, common: dict[str, str], service: Callable[..., ServiceProcess], sink: FakeSink
) -> None:
    t = traced
    created = await t.data("POST", "/api/workflows", every_second("every second", f"{sink.url}/tick"), expect=201)
    scheduler = service("services.scheduler", env={**common, "IPAAS_SCHEDULER_RESYNC_INTERVAL_SECONDS": "3600"})
    execution = await t.execution(created["id"], "succeeded")
    assert execution["trigger"] == "schedule"
    trace_id = execution["trace_id"]
    spans = await _complete_trace(
        receiver,
        trace_id,
        {("scheduler", "publish EVENTS"), ("executor", "process EVENTS"), ("executor", "connector http_request")},
    )
    drawn = tree(spans)
    publish = one(spans, "publish EVENTS", "scheduler", "PRODUCER")
    process = one(spans, "process EVENTS", "executor", "CONSUMER")
    assert publish.parent_id == "", drawn  # the trace starts at the scheduler's publish
    assert process.parent_id == publish.span_id, drawn
    assert publish.attributes["messaging.message.id"].startswith("sched:")
    tick = next(r for r in sink.requests if r.headers["traceparent"].split("-")[1] == trace_id)
    assert tick.path == "/tick"

    # The lateness histogram's exemplars (OpenMetrics) are traces that start at the scheduler's publish.
    text = metrics_text(scheduler.metrics_url, OPENMETRICS)
    exemplars = exemplar_trace_ids(text, "ipaas_scheduler_fire_lateness_seconds_bucket")
    assert exemplars

    async def all_known() -> bool:
        roots = {s.trace_id for s in receiver.spans if s.service == "scheduler" and s.name == "publish EVENTS"}
        return exemplars <= roots

    await wait_until(all_known, timeout=10, message="the exemplars' traces at the collector")


async def test_each_step_of_a_multi_step_workflow_is_a_span_under_the_process_span(
    traced: Stack, receiver: Receiver, sink: FakeSink
) -> None:
    t = traced
    lookup, post = (http_step(s, f"{sink.url}/{s}", {"id": "{{ payload.id }}"}) for s in ("lookup", "post"))
    check = {"id": "check", "filter": {"condition": "payload.id != ''"}}
    wf = await t.data("POST", "/api/workflows", steps_workflow([lookup, check, post]), expect=201)
    _, traceparent = await t.webhook(wf, {"id": "A-2"})
    trace_id = traceparent.split("-")[1]
    await t.execution(wf["id"], "succeeded")
    names = {("executor", f"step {s}") for s in ("lookup", "check", "post")}
    spans = await _complete_trace(receiver, trace_id, names | {("executor", "process EVENTS")})
    drawn = tree(spans)
    process = one(spans, "process EVENTS", "executor", "CONSUMER")
    steps = {s: one(spans, f"step {s}", "executor", "INTERNAL") for s in ("lookup", "check", "post")}
    for name, span in steps.items():
        assert span.parent_id == process.span_id, f"{name}\n{drawn}"
        assert span.attributes["ipaas.step.id"] == name
        assert span.attributes["ipaas.step.status"] == "succeeded"
    assert steps["check"].attributes["ipaas.step.kind"] == "filter"
    connectors = [s for s in spans if s.name == "connector http_request"]
    assert sorted(c.parent_id for c in connectors) == sorted([steps["lookup"].span_id, steps["post"].span_id]), drawn
