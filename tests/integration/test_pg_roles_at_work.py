"""Each service's own statements succeed under its own Postgres role (real Postgres, real NATS).

The grants are exactly what the services use (test_pg_least_privilege.py); these tests run the
services' store code with a pool connected as the service's role, through the statements where a
missing grant would only show at run time: the executor's claim (a share lock on workflows), its
park, wake and dead letters; the gateway's workflow writes (a foreign key into auth's tenants),
the DLQ replay (row locks on another service's tables), the outbox relay and its NOTIFY/LISTEN;
the scheduler's schedule reads, errors, progress and skipped slots; auth's users and credentials.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
from prometheus_client import CollectorRegistry

from libs.common.bus import Bus
from libs.common.db import create_pool
from libs.common.keyring import KeyHolder
from libs.common.models.queries import ExecutionQuery
from libs.common.models.workflows import WorkflowCreate
from libs.common.settings import DatabaseSettings
from services.executor.deferred import Waker
from services.executor.store import ExecutionStore, Outcome, Parcel, Parking
from services.executor.workflows import WorkflowReader
from services.gateway.hooks.cache import pool_loader
from services.gateway.outbox import CHANNEL, OutboxRelay
from services.gateway.store import executions as gw_executions
from services.gateway.store import pages as gw_pages
from services.gateway.store import workflows as gw_workflows
from services.scheduler.store import ScheduleStore, SkippedSlot
from tests.helpers.auth_setup import add_credential, auth_client, auth_settings, bearer, kek_ring, register_and_login
from tests.helpers.factories import create_tenant, create_workflow, insert_dead_letter
from tests.helpers.fakes import definition, envelope
from tests.helpers.scheduler import schedule_definition
from tests.helpers.wait import wait_until

WORKFLOW = definition("http_request", {"method": "POST", "url": "https://example.invalid/x"})  # webhook-triggered


@asynccontextmanager
async def pool_as(url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(DatabaseSettings(DATABASE_URL=url, pool_max=4), connect_deadline_seconds=10)
    try:
        assert await pool.fetchval("SELECT current_user") == url.split("://", 1)[1].split(":", 1)[0]
        yield pool
    finally:
        await pool.close()


async def test_the_executor_claims_parks_wakes_and_dead_letters_as_its_role(
    db: asyncpg.Connection, role_url: Callable[[str], str], bus: Bus
) -> None:
    tenant = await create_tenant(db)
    wf = await create_workflow(db, tenant, WORKFLOW, webhook_secret="whsec_c2VjcmV0")
    async with pool_as(role_url("executor")) as pool:
        store = ExecutionStore(pool, owner="replica-1", lease_seconds=30, max_items=16, linger=0.001)
        reader = WorkflowReader(pool, cache_size=8, max_items=16, linger=0.001)
        try:
            event = envelope(tenant, wf, {"n": 1})
            parcel = Parcel(event.subject, event.model_dump_json().encode())
            view = await store.claim(event, "0af7651916cd43dd8448eb211c80319c")
            assert view.attempt == 1 and view.workflow_tenant == tenant and view.workflow_active  # type: ignore[union-attr]
            assert (await reader.load(wf, 1)).definition is not None
            assert await store.overlapping_run(wf, event.event_id) is False
            await store.renew([event.event_id])
            # A failed try parks the event (due at once); the waker puts it back on EVENTS.
            park = Parking(event.event_id, tenant, parcel, seconds=0, reason="retry", deferrals=0)
            written = await store.finish(Outcome(event, "failed", parcel, attempts=1, error="503", park=park))
            assert written.stored
            waker = Waker(pool, bus, batch=8, poll_seconds=0.1, publish_timeout=5)
            assert (await waker.wake_once())[0] == 1
            # The second try is the last: the execution is dead, with its dead letter.
            again = await store.claim(event, None)
            assert again.attempt == 2  # type: ignore[union-attr]
            assert (await store.finish(Outcome(event, "dead", parcel, attempts=2, error="gave up"))).stored
            raw = uuid.uuid4()
            await store.dead_letter_raw(raw, tenant, wf, "not an envelope", b"\x00garbage")
            other = envelope(tenant, wf, {"n": 1})
            await store.claim(other, None)
            await store.release([other.event_id])
        finally:
            await store.close()
    assert await db.fetchval("SELECT status FROM executions WHERE event_id = $1", event.event_id) == "dead"
    assert (
        await db.fetchval("SELECT count(*) FROM dead_letters WHERE event_id = ANY($1::uuid[])", [event.event_id, raw])
        == 2
    )
    assert await db.fetchval("SELECT lease_owner FROM executions WHERE event_id = $1", other.event_id) is None
    assert await db.fetchval("SELECT count(*) FROM deferred_events") == 0


async def test_the_gateway_writes_workflows_replays_and_relays_as_its_role(
    db: asyncpg.Connection, role_url: Callable[[str], str], bus: Bus
) -> None:
    tenant = await create_tenant(db)
    notified = asyncio.Event()
    listener = await asyncpg.connect(role_url("gateway"))
    await listener.add_listener(CHANNEL, lambda *_: notified.set())
    try:
        async with pool_as(role_url("gateway")) as pool:
            body = WorkflowCreate.model_validate(WORKFLOW)
            ring = kek_ring()
            created = await gw_workflows.create(
                pool,
                tenant,
                body,
                max_workflows=10,  # the tenant is auth's: an FK
                ring=ring,
            )
            wf = created["id"]
            await wait_until(notified.is_set, timeout=5, message="NOTIFY ipaas_outbox to reach the gateway")
            await gw_workflows.rotate_secret(pool, tenant, wf, 60, ring=ring)
            await gw_workflows.replace(pool, tenant, wf, body, ring=ring)
            await gw_workflows.rollback(pool, tenant, wf, 1, ring=ring)
            _, page = await gw_pages.versions_page(pool, tenant, wf, 10, 0, 1 << 20)
            assert len(page.rows) == 3
            target = await pool_loader(pool, KeyHolder(ring))(wf)
            assert target is not None and len(target.keys(datetime.now(UTC).timestamp())) == 2
            # A secret still in the plaintext column (written before it was sealed) is sealed by the look-up.
            legacy = await create_workflow(db, tenant, WORKFLOW, webhook_secret="whsec_c2VjcmV0")
            assert await pool_loader(pool, KeyHolder(ring))(legacy) is not None
            assert await db.fetchval("SELECT webhook_secret FROM workflows WHERE id = $1", legacy) is None
            await gw_workflows.set_active(pool, tenant, wf, False)
            assert await gw_workflows.wait_for_runs(pool, wf, 0.1) == 0
            # A dead run is replayed: the dead letter is marked, the run is non-final again, the envelope queued.
            event_id = await insert_dead_letter(db, tenant, wf)
            letters = await gw_executions.list_dead_letters(
                pool, tenant, workflow_id=wf, include_replayed=False, limit=10, before=None
            )
            assert len(letters) == 1
            await gw_executions.replay(pool, tenant, event_id)
            rows = await gw_executions.list_executions(pool, tenant, ExecutionQuery(workflow_id=wf), limit=10)
            assert await gw_executions.get_execution(pool, tenant, rows[0]["id"])
            await gw_workflows.delete(pool, tenant, wf)
            relay = OutboxRelay(
                pool,
                bus,
                role_url("gateway"),
                batch=100,
                poll_seconds=1,
                max_backoff_seconds=1,
                publish_timeout=5,
                max_attempts=3,
                registry=CollectorRegistry(),
            )
            await relay.relay_once()
    finally:
        await listener.close()
    assert await db.fetchval("SELECT status FROM executions WHERE event_id = $1", event_id) == "failed"
    assert await db.fetchval("SELECT replayed_at IS NOT NULL FROM dead_letters WHERE event_id = $1", event_id)
    assert relay.published == 7  # created, secret rotated, updated, rolled back, disabled, replayed, deleted
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0


async def test_the_scheduler_reads_schedules_and_records_progress_as_its_role(
    db: asyncpg.Connection, role_url: Callable[[str], str]
) -> None:
    tenant = await create_tenant(db)
    wf = await create_workflow(db, tenant, schedule_definition("tick", interval_seconds=60))
    slot = int(datetime.now(UTC).timestamp()) // 60 * 60
    skipped = SkippedSlot(uuid.uuid4(), tenant, wf, 1, slot, "missed")
    async with pool_as(role_url("scheduler")) as pool:
        store = ScheduleStore(pool, min_interval_seconds=10)
        assert [r["id"] for r in await store.load_active()] == [wf]
        assert (await store.load_one(wf)) is not None
        assert (await store.versions_at([(wf, slot + 3600)]))[0] is not None
        await store.set_error(wf, "cannot run")
        await store.save_progress({wf: slot})
        await store.record_skipped([skipped])
        await store.record_skipped([skipped])  # idempotent on event_id
    assert await db.fetchval("SELECT schedule_error FROM workflows WHERE id = $1", wf) == "cannot run"
    assert await db.fetchval("SELECT last_slot FROM scheduler_state WHERE workflow_id = $1", wf) is not None
    rows = await db.fetch("SELECT status FROM executions WHERE event_id = $1", skipped.event_id)
    assert [r["status"] for r in rows] == ["skipped"]


async def test_auth_registers_logs_in_and_keeps_credentials_as_its_role(
    db: asyncpg.Connection, role_url: Callable[[str], str], nats_url: str
) -> None:
    async with auth_client(auth_settings(role_url("auth"), nats_url)) as client:
        user = await register_and_login(client)
        resp = await add_credential(client, user, "key", "http", {"headers": {"X-Key": "k"}})
        assert resp.status == 201, await resp.text()
        credential = (await resp.json())["data"]["id"]
        listing = await client.get("/api/credentials", headers=bearer(user["token"]))
        assert [c["id"] for c in (await listing.json())["data"]] == [credential]
        resp = await client.delete(f"/api/credentials/{credential}", headers=bearer(user["token"]))
        assert resp.status == 200, await resp.text()
    assert await db.fetchval("SELECT count(*) FROM users WHERE id = $1", uuid.UUID(user["user_id"])) == 1
    assert await db.fetchval("SELECT count(*) FROM credentials") == 0
