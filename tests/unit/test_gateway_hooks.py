"""Webhook ingest: signatures, the per-tenant bucket, the envelope (the cache: test_gateway_cache_stale.py).

The publish histogram counts every observation, with a trace-id exemplar per bucket at most once a second.
``hook_span``: the webhook route's SERVER span is started when spans are recorded, or when a trusted
inbound ``traceparent`` must continue; otherwise the route runs without one (its PRODUCER span roots the trace).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from standardwebhooks.webhooks import Webhook

from libs.common.http.app import base_app
from libs.common.http.errors import NotFound
from libs.common.http.middleware import direct
from libs.common.models.events import EventEnvelope, Trigger, envelope_json
from services.gateway import middleware
from services.gateway.hooks import ingest, publish_metrics
from services.gateway.hooks.cache import WebhookTarget
from services.gateway.hooks.ingest import sender_key
from services.gateway.hooks.publish_metrics import PublishLatency
from services.gateway.hooks.ratelimit import TenantRateLimiter
from services.gateway.hooks.signature import SignatureError, new_secret, secret_key, verify
from services.gateway.keys import SETTINGS
from tests.helpers.fake_clock import ManualClock
from tests.helpers.wire_events import webhook_event


def test_signature_from_the_official_library_verifies_and_tampering_does_not():
    secret = new_secret()
    at = datetime.now(UTC)
    sig = Webhook(secret).sign("msg_1", at, '{"a":1}')
    ts = str(int(at.timestamp()))
    keys = (secret_key(secret),)
    verify(keys, "msg_1", ts, sig, b'{"a":1}', now=at.timestamp(), tolerance=300)
    for msg_id, timestamp, signature, body, now in (
        ("msg_2", ts, sig, b'{"a":1}', at.timestamp()),
        ("msg_1", ts, sig, b'{"a":2}', at.timestamp()),
        ("msg_1", ts, sig, b'{"a":1}', at.timestamp() + 301),
        ("msg_1", ts, sig, b'{"a":1}', at.timestamp() - 301),
        ("msg_1", ts, "v2," + sig[3:], b'{"a":1}', at.timestamp()),
        ("msg_1", "12abc", sig, b'{"a":1}', at.timestamp()),
    ):
        with pytest.raises(SignatureError):
            verify(keys, msg_id, timestamp, signature, body, now=now, tolerance=300)


def test_any_of_several_signatures_and_any_valid_key_is_enough():
    old, new = new_secret(), new_secret()
    at = datetime.now(UTC)
    ts = str(int(at.timestamp()))
    header = f"v1,bm9wZQ== v1,!!! {Webhook(old).sign('m', at, 'x')}"
    verify((secret_key(new), secret_key(old)), "m", ts, header, b"x", now=at.timestamp(), tolerance=300)
    with pytest.raises(SignatureError):
        verify((secret_key(new),), "m", ts, header, b"x", now=at.timestamp(), tolerance=300)


def test_previous_keys_expire_each_at_its_own_end():
    target = WebhookTarget(uuid.uuid4(), uuid.uuid4(), 1, b"new", previous=((b"mid", 3000.0), (b"old", 2000.0)))
    assert target.keys(1999.0) == (b"new", b"mid", b"old")
    assert target.keys(2000.5) == (b"new", b"mid")
    assert target.keys(3000.5) == (b"new",)


def test_token_bucket_is_per_tenant_and_refills():
    clock = ManualClock()
    limiter = TenantRateLimiter(burst=3, per_minute=120, max_keys=100, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.acquire("a")
    assert wait == pytest.approx(0.5)
    assert limiter.acquire("b") == 0.0
    clock.now += 0.5
    assert limiter.acquire("a") == 0.0
    clock.now += 100
    assert [limiter.acquire("a") for _ in range(4)][-1] > 0  # never more than the burst


def test_replicas_share_a_tenants_limit_so_together_they_accept_it_and_no_more():
    clock = ManualClock()
    replicas = [TenantRateLimiter.share(100.0, 50.0, replicas=3, clock=clock) for _ in range(3)]
    assert replicas[0].rate == pytest.approx(100 / 3) and replicas[0].burst == pytest.approx(50 / 3)
    accepted = 0
    for step in range(10_000):  # 10 s of 1,000 requests/s, spread over the replicas in turn
        clock.now += 0.001
        accepted += replicas[step % 3].acquire("t") == 0.0
    assert 100 * 10 + 50 - 3 <= accepted <= 100 * 10 + 50
    # All on one replica (a sender pinned to it): a third of the limit, never more than the whole.
    alone = TenantRateLimiter.share(100.0, 50.0, replicas=3, clock=clock)
    taken = 0
    for _ in range(10_000):
        clock.now += 0.001
        taken += alone.acquire("t") == 0.0
    assert taken == pytest.approx((100 * 10 + 50) / 3, abs=2)


def test_one_replica_has_the_whole_limit_and_a_share_has_at_least_one_token():
    whole = TenantRateLimiter.share(10.0, 20.0, replicas=1)
    assert (whole.rate, whole.burst) == (10.0, 20.0)
    assert TenantRateLimiter.share(10.0, 2.0, replicas=4).burst == 1.0
    with pytest.raises(ValueError, match="replicas"):
        TenantRateLimiter.share(10.0, 2.0, replicas=0)


def test_bucket_table_is_bounded():
    limiter = TenantRateLimiter(burst=1, per_minute=60, max_keys=10, clock=ManualClock())
    for i in range(1000):
        limiter.acquire(i)
    assert len(limiter) == 10


def test_envelope_splices_the_raw_payload_and_parses_as_the_contract_model():
    wid, tid = uuid.uuid4(), uuid.uuid4()
    for body, expected in (
        (b'{"big": 123456789012345678901234567890}', {"big": 123456789012345678901234567890}),
        (b"", None),
        (b"  ", None),
        (b"[1, 2]", [1, 2]),
    ):
        data = envelope_json(webhook_event(tid, wid, body, version=3))
        env = EventEnvelope.model_validate_json(data)
        assert env.payload == expected and env.workflow_version == 3 and env.trigger is Trigger.WEBHOOK


def test_sender_keys_cannot_enter_the_schedule_namespace():
    assert sender_key("sched:abc:1:2026") == "ext:sched:abc:1:2026"
    assert sender_key("msg_1") == "msg_1"
    assert sender_key(None) is None


def test_a_paths_workflow_id_is_parsed_as_the_canonical_text_and_bad_ones_are_404() -> None:
    wid = uuid.uuid4()
    for text in (str(wid), str(wid).upper(), wid.hex, f"{{{wid}}}", f"urn:uuid:{wid}"):
        assert ingest._workflow_id(text) == (wid, str(wid))
    for bad in ("nope", str(wid)[:-1], str(wid) + "0", ""):
        with pytest.raises(NotFound):
            ingest._workflow_id(bad)


TRACE_A, TRACE_B = "a" * 32, "b" * 32


def _tp(trace_id: str) -> str:
    return f"00-{trace_id}-00f067aa0ba902b7-00"


def _buckets(registry: CollectorRegistry) -> dict[str, tuple[float, str | None]]:
    """``le`` -> (cumulative count, exemplar trace id)."""
    out: dict[str, tuple[float, str | None]] = {}
    for metric in registry.collect():
        for s in metric.samples:
            if s.name == "ipaas_gateway_publish_duration_seconds_bucket":
                out[s.labels["le"]] = (s.value, s.exemplar.labels["trace_id"] if s.exemplar else None)
    return out


def test_one_exemplar_per_bucket_per_second(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = {"now": 100.0}
    monkeypatch.setattr(time, "monotonic", lambda: clock["now"])  # the module reads time.monotonic
    registry = CollectorRegistry()
    latency = PublishLatency(registry)
    latency.observe(0.001, _tp(TRACE_A))  # exactly on a bound: counted in le=0.001
    latency.observe(0.0009, _tp(TRACE_B))  # same bucket within the second: counted, exemplar kept
    latency.observe(0.02, _tp(TRACE_B))  # another bucket: its own exemplar
    buckets = _buckets(registry)
    assert buckets["0.001"] == (2.0, TRACE_A)
    assert buckets["0.025"] == (3.0, TRACE_B)
    assert buckets["0.0005"] == (0.0, None)
    clock["now"] += publish_metrics.EXEMPLAR_EVERY_SECONDS
    latency.observe(0.0008, _tp(TRACE_B))  # a second later: the bucket takes a new one
    assert _buckets(registry)["0.001"] == (3.0, TRACE_B)
    latency.observe(9.0, None)  # +Inf, no traceparent and no current span: counted, no exemplar
    assert _buckets(registry)["+Inf"] == (5.0, None)


INBOUND_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INBOUND = {"traceparent": f"00-{INBOUND_TRACE}-00f067aa0ba902b7-01"}

Client = TestClient[web.Request, web.Application]


async def current_trace(request: web.Request) -> web.Response:
    ctx = trace.get_current_span().get_span_context()
    return web.json_response({"trace": format(ctx.trace_id, "032x") if ctx.is_valid else None})


@pytest.fixture
async def make_client(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Callable[[bool], Any]]:
    # A real tracer (a started span has valid ids), without touching the process's provider.
    tracer = TracerProvider().get_tracer("test")
    monkeypatch.setattr(middleware, "direct_tracer", lambda name: tracer)
    async with contextlib.AsyncExitStack() as stack:

        async def make(trusted: bool) -> Client:
            app = base_app("test")
            app[SETTINGS] = cast(Any, SimpleNamespace(trust_trace_context=trusted))
            app.router.add_post("/hooks/{workflow_id}", direct(middleware.hook_span(current_trace)))
            client: Client = await stack.enter_async_context(TestClient(TestServer(app)))
            return client

        yield make


async def _trace_of(client: Client, headers: dict[str, str]) -> str | None:
    resp = await client.post("/hooks/x", headers=headers)
    assert resp.status == 200
    return cast(str | None, (await resp.json())["trace"])


@pytest.mark.parametrize("trusted", [False, True])
async def test_no_span_when_nothing_records_and_only_a_trusted_inbound_trace_continues(
    make_client: Callable[[bool], Any], monkeypatch: pytest.MonkeyPatch, trusted: bool
) -> None:
    monkeypatch.setattr(middleware, "spans_recorded", lambda: False)
    client = await make_client(trusted)
    assert await _trace_of(client, {}) is None
    # An untrusted inbound context is only a link: nothing to continue; a trusted one continues, unrecorded.
    assert await _trace_of(client, INBOUND) == (INBOUND_TRACE if trusted else None)


async def test_the_server_span_is_started_when_spans_are_recorded(
    make_client: Callable[[bool], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(middleware, "spans_recorded", lambda: True)
    client = await make_client(False)
    started = await _trace_of(client, INBOUND)
    assert started is not None and started != INBOUND_TRACE
