"""The gateway at the bus's limits (real Postgres and JetStream).

Ingest: a full stream is 503 with Retry-After (then 202 again), an oversized message 413.  The EVENTS
stream is bounded in the test (``max_bytes`` with ``discard: new``), so JetStream answers the publish
with a PubAck error; and a body whose message only goes over ``max_payload`` with its headers must be
refused by the gateway, since the server would reset the shared connection.

The outbox relay, against poison rows, big integers and a full stream: one row that can never be
published is set aside with its reason and a metric while every other tenant's rows keep flowing; a
replayed envelope with integers beyond 64 bits goes out exact; a full stream only pauses the relay,
and nothing is lost.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from nats.js import api as js_api

from libs.common.bus import Bus, StreamFull
from libs.common.models.events import WorkflowChanged, workflow_changed_subject
from services.gateway.keys import BUS
from tests.helpers.factories import insert_dead_letter
from tests.helpers.fakes import envelope
from tests.helpers.gateway_app import Gateway, create_webhook_workflow, running_gateway, tenant
from tests.helpers.services import metric
from tests.helpers.wait import equals, wait_until
from tests.helpers.webhooks import signed


@pytest.fixture
async def gw(database_url: str, nats_url: str, bus: Bus) -> AsyncIterator[Gateway]:
    async with running_gateway(
        database_url, nats_url, retry_after_seconds=3, outbox_max_backoff_seconds=0.5
    ) as gateway:
        yield gateway


async def test_a_full_stream_is_503_with_retry_after_then_202_once_there_is_room(
    gw: Gateway, tenant_id: uuid.UUID, bus: Bus
):
    wid, secret = await create_webhook_workflow(gw, tenant_id)
    first = await gw.client.post(f"/hooks/{wid}", data=b'{"n": 1}', headers=signed(secret, '{"n": 1}'))
    assert first.status == 202

    info = await bus.js.stream_info("EVENTS")
    config = info.config
    config.max_bytes, config.discard = int(info.state.bytes) + 16, js_api.DiscardPolicy.NEW
    await bus.js.update_stream(config)
    stored = int(info.state.messages)

    for _ in range(3):
        resp = await gw.client.post(f"/hooks/{wid}", data=b'{"n": 2}', headers=signed(secret, '{"n": 2}'))
        body = await resp.json()
        assert resp.status == 503, body
        assert resp.headers["Retry-After"] == "3" and body["error"]["code"] == "service_unavailable"
    run = await gw.client.post(f"/api/workflows/{wid}/run", json={"payload": {}}, headers=gw.auth(tenant_id))
    assert run.status == 503 and run.headers["Retry-After"] == "3"
    assert int((await bus.js.stream_info("EVENTS")).state.messages) == stored  # nothing half-accepted

    config.max_bytes = -1
    await bus.js.update_stream(config)
    again = await gw.client.post(f"/hooks/{wid}", data=b'{"n": 3}', headers=signed(secret, '{"n": 3}'))
    assert again.status == 202, await again.text()
    event_id = (await again.json())["data"]["event_id"]
    msg = await bus.js.get_last_msg("EVENTS", f"events.{tenant_id}.{wid}")
    assert event_id.encode() in (msg.data or b"")


async def test_a_message_over_max_payload_is_413_and_the_shared_connection_survives(gw: Gateway, database_url: str):
    wid, secret = await create_webhook_workflow(gw, await tenant(database_url))
    nc = gw.app[BUS].nc
    reconnects = nc.stats["reconnects"]
    limit = nc.max_payload
    statuses: dict[int, int] = {}
    # From comfortably under the limit to over it; a stretch of sizes in between fits the payload alone
    # but not payload plus headers: sent, those would make the server reset the connection.
    for size in range(limit - 700, limit - 149, 50):
        body = '"' + "x" * (size - 2) + '"'
        resp = await gw.client.post(f"/hooks/{wid}", data=body.encode(), headers=signed(secret, body))
        statuses[size] = resp.status
        if resp.status == 413:
            details = (await resp.json())["error"]["details"]
            assert details["limit"] == limit and details["size"] > limit
    assert set(statuses.values()) == {202, 413}, statuses
    assert nc.is_connected and nc.stats["reconnects"] == reconnects
    small = await gw.client.post(f"/hooks/{wid}", data=b"{}", headers=signed(secret, "{}"))
    assert small.status == 202


def change(tenant_id: uuid.UUID, workflow_id: uuid.UUID) -> str:
    return WorkflowChanged(
        tenant_id=tenant_id, workflow_id=workflow_id, version=1, change="created", is_active=True
    ).model_dump_json()


async def plant(conn: asyncpg.Connection, rows: list[tuple[str, str]]) -> list[int]:
    """Insert (subject, payload JSON text) rows in one transaction, as a writer would; returns their ids."""
    ids: list[int] = []
    async with conn.transaction():
        for subject, payload in rows:
            row_id: int = await conn.fetchval(
                "INSERT INTO outbox (subject, msg_id, payload) VALUES ($1, '', $2::jsonb) RETURNING id",
                subject,
                payload,
            )
            await conn.execute("UPDATE outbox SET msg_id = 'outbox:' || id WHERE id = $1", row_id)
            ids.append(row_id)
    return ids


async def row(conn: asyncpg.Connection, row_id: int) -> asyncpg.Record:
    record: asyncpg.Record = await conn.fetchrow(
        "SELECT published_at, failed_at, error, attempts FROM outbox WHERE id = $1", row_id
    )
    return record


async def stamped(conn: asyncpg.Connection, column: str, *row_ids: int) -> bool:
    """Whether every one of the outbox rows has ``column`` (``published_at`` or ``failed_at``) set."""
    return all([(await row(conn, i))[column] is not None for i in row_ids])


async def metric_of(gw: Gateway, name: str, labels: str = "") -> float:
    return metric(await (await gw.metrics.get("/metrics")).text(), name, labels)


async def test_poison_rows_are_set_aside_while_every_other_tenant_flows(
    gw: Gateway, database_url: str, bus: Bus, db: asyncpg.Connection
):
    # A stream that refuses big messages for good (a 400 PubAck error).
    await bus.js.add_stream(js_api.StreamConfig(name="SMALL", subjects=["small.>"], max_msg_size=64))
    poisoner, tenant_b, tenant_c = await tenant(database_url), await tenant(database_url), await tenant(database_url)
    wf_b, wf_c, wf_big = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    payload = {"n": 2**70, "m": -(2**65), "digits": 0}
    big_envelope = envelope(tenant_b, wf_big, payload, trigger="replay").model_dump_json()
    big_envelope = big_envelope.replace('"digits":0', '"digits":' + "9" * 5000)  # Python's json cannot read it back
    too_big, bad_subject, refused, for_b, for_c, big_ints = await plant(
        db,
        [
            (workflow_changed_subject(poisoner, uuid.uuid4()), json.dumps({"blob": "x" * 1_200_000})),
            (f"workflows.changed.{poisoner}..x", change(poisoner, uuid.uuid4())),
            ("small.x", json.dumps({"text": "y" * 200})),
            (workflow_changed_subject(tenant_b, wf_b), change(tenant_b, wf_b)),
            (workflow_changed_subject(tenant_c, wf_c), change(tenant_c, wf_c)),
            (f"events.{tenant_b}.{wf_big}", big_envelope),
        ],
    )

    async def settled() -> bool:
        flowed = await stamped(db, "published_at", for_b, for_c, big_ints)
        return flowed and await stamped(db, "failed_at", too_big, bad_subject, refused)

    await wait_until(settled, timeout=15, message="good rows published and poison rows set aside")

    # Every poison row: set aside after one try, with its reason, never published.
    reasons = {}
    for row_id in (too_big, bad_subject, refused):
        record = await row(db, row_id)
        assert record["published_at"] is None and record["attempts"] == 1
        reasons[row_id] = record["error"]
    assert "over the server's max_payload" in reasons[too_big]
    assert reasons[bad_subject] == "invalid subject"
    assert "message size exceeds maximum allowed" in reasons[refused] and "10054" in reasons[refused]
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE failed_at IS NULL AND published_at IS NULL") == 0

    # The other tenants' changes reached the change stream.
    for tenant_id, workflow_id in ((tenant_b, wf_b), (tenant_c, wf_c)):
        msg = await bus.js.get_last_msg("WORKFLOW_CHANGES", workflow_changed_subject(tenant_id, workflow_id))
        assert WorkflowChanged.model_validate_json(msg.data or b"").workflow_id == workflow_id
    # The big integers went out exact, as stored.
    msg = await bus.js.get_last_msg("EVENTS", f"events.{tenant_b}.{wf_big}")
    assert b'"n": 1180591620717411303424' in (msg.data or b"")
    assert b'"m": -36893488147419103232' in (msg.data or b"") and b"9" * 5000 in (msg.data or b"")

    assert await metric_of(gw, "ipaas_gateway_outbox_failed_total", 'reason="invalid"') == 2
    assert await metric_of(gw, "ipaas_gateway_outbox_failed_total", 'reason="rejected"') == 1

    gauge = "ipaas_gateway_outbox_set_aside"
    await wait_until(lambda: equals(metric_of(gw, gauge), 3), timeout=5, message="the set-aside gauge")


async def test_an_operator_retries_a_set_aside_row_after_fixing_the_cause(
    gw: Gateway, bus: Bus, db: asyncpg.Connection
):
    config = js_api.StreamConfig(name="SMALL", subjects=["small.>"], max_msg_size=64)
    await bus.js.add_stream(config)
    (refused,) = await plant(db, [("small.x", json.dumps({"text": "y" * 200}))])

    await wait_until(lambda: stamped(db, "failed_at", refused), timeout=10, message="the refused row set aside")
    config.max_msg_size = -1
    await bus.js.update_stream(config)
    # The documented retry (docs/gateway.md).
    await db.execute("UPDATE outbox SET failed_at = NULL, error = NULL, attempts = 0 WHERE id = $1", refused)
    await db.execute("NOTIFY ipaas_outbox")

    await wait_until(lambda: stamped(db, "published_at", refused), timeout=10, message="the retried row published")
    msg = await bus.js.get_last_msg("SMALL", "small.x")
    assert msg.headers is not None and msg.headers["Nats-Msg-Id"] == f"outbox:{refused}"


async def test_a_full_stream_pauses_the_relay_and_nothing_is_lost_or_set_aside(
    gw: Gateway, database_url: str, bus: Bus, db: asyncpg.Connection
):
    config = js_api.StreamConfig(name="TIGHT", subjects=["tight.>"], max_bytes=400, discard=js_api.DiscardPolicy.NEW)
    await bus.js.add_stream(config)
    with pytest.raises(StreamFull):  # fill it up
        for i in range(100):
            await bus.publish("tight.fill", b"f" * 100, msg_id=f"fill-{i}")
    other = await tenant(database_url)
    workflow_id = uuid.uuid4()
    stopped_before = await metric_of(gw, "ipaas_gateway_outbox_pass_failures_total")
    blocked, behind = await plant(
        db,
        [
            ("tight.x", json.dumps({"text": "z" * 100})),
            (workflow_changed_subject(other, workflow_id), change(other, workflow_id)),
        ],
    )

    async def retried_twice() -> bool:
        return await metric_of(gw, "ipaas_gateway_outbox_pass_failures_total") >= stopped_before + 2

    await wait_until(retried_twice, timeout=10, message="the relay retrying against the full stream")
    for row_id in (blocked, behind):
        record = await row(db, row_id)
        assert record["published_at"] is None and record["failed_at"] is None  # waiting, in order
    assert (await row(db, blocked))["attempts"] == 0  # the bus's trouble, not the row's

    await bus.js.purge_stream("TIGHT")

    await wait_until(
        lambda: stamped(db, "published_at", blocked, behind),
        timeout=10,
        message="both rows published once there is room",
    )
    assert (await bus.js.get_last_msg("TIGHT", "tight.x")).data == json.dumps({"text": "z" * 100}).encode()


async def test_a_dlq_replay_of_an_envelope_with_big_integers_is_published_exact(
    gw: Gateway, bus: Bus, tenant_id: uuid.UUID, db: asyncpg.Connection
):
    workflow_id = uuid.uuid4()
    payload = {"order": {"id": 2**70, "refund": -(2**64) - 1, "qty": 3}}
    event_id = await insert_dead_letter(db, tenant_id, workflow_id, payload=payload)
    resp = await gw.client.post(f"/api/dlq/{event_id}/replay", headers=gw.auth(tenant_id))
    assert resp.status == 202, await resp.text()

    async def published() -> bool:
        return bool(
            await db.fetchval(
                "SELECT bool_and(published_at IS NOT NULL AND failed_at IS NULL) FROM outbox WHERE subject = $1",
                f"events.{tenant_id}.{workflow_id}",
            )
        )

    await wait_until(published, timeout=10, message="the replay published")
    msg = await bus.js.get_last_msg("EVENTS", f"events.{tenant_id}.{workflow_id}")
    replayed = json.loads(msg.data or b"")
    assert replayed["payload"] == payload
    assert replayed["event_id"] == str(event_id)
