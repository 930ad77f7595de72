"""Pure logic of webhook ingest: signatures, the per-tenant bucket, the envelope (cache: test_gateway_cache_stale)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from libs.common.http.errors import NotFound
from libs.common.models.events import EventEnvelope, Trigger, envelope_json
from services.gateway.hooks import ingest
from services.gateway.hooks.cache import WebhookTarget
from services.gateway.hooks.ingest import sender_key
from services.gateway.hooks.ratelimit import TenantRateLimiter
from services.gateway.hooks.signature import SignatureError, new_secret, secret_key, verify
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
