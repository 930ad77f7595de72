"""Schedules driven through the public API: gateway and scheduler as processes.

Disabling a workflow through the API stops its fires within 1 s (the change
travels gateway outbox -> WORKFLOW_CHANGES -> scheduler; the periodic resync is
set to an hour so it cannot be what did it). Re-enabling resumes, and a new
cron expression takes effect at the next slot. A schedule whose stored
definition is broken shows its error through the API while others keep firing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest

from deploy.local.infra import free_port
from libs.common.bus import Bus
from libs.common.models.events import EventEnvelope
from tests.e2e.test_scheduler_replicas import scheduled_events
from tests.helpers.auth_setup import kek_env
from tests.helpers.factories import create_tenant
from tests.helpers.scheduler import schedule_definition
from tests.helpers.services import ServiceProcess
from tests.helpers.stack_processes import Api
from tests.helpers.tokens import TokenIssuer, serve_jwks
from tests.helpers.wait import wait_until


@pytest.fixture
async def api(
    service: Callable[..., ServiceProcess], db: asyncpg.Connection, database_url: str, nats_url: str
) -> AsyncIterator[Api]:
    issuer = TokenIssuer()
    tenant = await create_tenant(db)
    # Schedules every second: the gateway and the scheduler both allow them.
    common = {"DATABASE_URL": database_url, "NATS_URL": nats_url, "IPAAS_SCHEDULE_MIN_INTERVAL_SECONDS": "1"}
    async with serve_jwks(issuer, free_port()) as jwks_url:
        gateway = service(
            "services.gateway",
            env={**common, **kek_env(), "IPAAS_JWKS_URL": jwks_url, "IPAAS_GATEWAY_OUTBOX_POLL_SECONDS": "0.2"},
        )
        service("services.scheduler", env={**common, "IPAAS_SCHEDULER_RESYNC_INTERVAL_SECONDS": "3600"})
        async with aiohttp.ClientSession() as http:
            api = Api(http, gateway.url)
            api.token = issuer.mint(tenant)
            yield api


def every_second(name: str, cron: str = "* * * * * *") -> dict[str, Any]:
    return schedule_definition(name, cron=cron, timezone="UTC")


async def envelopes(bus: Bus, workflow_id: str) -> list[EventEnvelope]:
    return [env for _, env in await scheduled_events(bus, uuid.UUID(workflow_id))]


async def test_disable_stops_fires_within_a_second_and_enable_resumes(api: Api, bus: Bus) -> None:
    wf = (await api.data("POST", "/api/workflows", every_second("ticker"), expect=201))["id"]
    await wait_until(lambda: _count_at_least(bus, wf, 2), timeout=15, message="the schedule to fire")

    await api.data("PATCH", f"/api/workflows/{wf}", {"is_active": False}, expect=200)
    disabled_at = datetime.now(UTC)
    await _sleep_real(2.5)
    after_disable = await envelopes(bus, wf)
    late = [e for e in after_disable if e.scheduled_for and e.scheduled_for > disabled_at + timedelta(seconds=1)]
    assert late == [], f"fired {len(late)} slot(s) more than 1 s after the disable"
    frozen = len(after_disable)
    await _sleep_real(1.5)
    assert len(await envelopes(bus, wf)) == frozen  # nothing more while disabled

    await api.data("PATCH", f"/api/workflows/{wf}", {"is_active": True}, expect=200)
    await wait_until(lambda: _count_at_least(bus, wf, frozen + 2), timeout=10, message="fires to resume")

    # A new cron takes effect at the next slot: every 2 s (seconds field first), version 2.
    updated = await api.data("PUT", f"/api/workflows/{wf}", every_second("ticker", "*/2 * * * * *"), expect=200)
    assert updated["version"] == 2
    changed_at = datetime.now(UTC)

    async def v2_fires() -> list[EventEnvelope]:
        fresh = [e for e in await envelopes(bus, wf) if e.workflow_version == 2]
        return fresh if len(fresh) >= 3 else []

    fresh = await wait_until(v2_fires, timeout=15, message="version 2 to fire")
    assert all(e.scheduled_for is not None and e.scheduled_for.second % 2 == 0 for e in fresh)
    v1_late = [
        e
        for e in await envelopes(bus, wf)
        if e.workflow_version == 1 and e.scheduled_for and e.scheduled_for > changed_at + timedelta(seconds=1)
    ]
    assert v1_late == []
    ids = [e.event_id for e in await envelopes(bus, wf)]
    assert len(ids) == len(set(ids))  # never two events for one slot


async def test_broken_schedule_is_visible_through_the_api_and_others_keep_firing(
    api: Api,
    bus: Bus,
    db: asyncpg.Connection,
) -> None:
    healthy = (await api.data("POST", "/api/workflows", every_second("healthy"), expect=201))["id"]
    broken = (await api.data("POST", "/api/workflows", every_second("broken"), expect=201))["id"]
    await wait_until(lambda: _count_at_least(bus, broken, 1), timeout=15, message="the second schedule to fire")
    # A stored definition goes bad behind the API's back (the API itself refuses invalid cron).
    await db.execute(
        """UPDATE workflow_versions SET definition = jsonb_set(definition, '{trigger,cron}', '"61 * * * *"')
           WHERE workflow_id = $1""",
        uuid.UUID(broken),
    )
    # Any change announces the workflow again: the scheduler re-reads it.
    await api.data("PATCH", f"/api/workflows/{broken}", {"is_active": False}, expect=200)
    await api.data("PATCH", f"/api/workflows/{broken}", {"is_active": True}, expect=200)

    async def error_shown() -> Any:
        return (await api.data("GET", f"/api/workflows/{broken}", expect=200)).get("schedule_error")

    error = await wait_until(error_shown, timeout=10, message="schedule_error through the API")
    assert "cron" in error.lower()
    before = len(await envelopes(bus, healthy))
    await wait_until(
        lambda: _count_at_least(bus, healthy, before + 2), timeout=10, message="the healthy schedule to keep firing"
    )


async def _count_at_least(bus: Bus, workflow_id: str, n: int) -> bool:
    return len(await envelopes(bus, workflow_id)) >= n


async def _sleep_real(seconds: float) -> None:
    """A wall-clock wait is the point here: we watch that nothing happens for a while."""
    await asyncio.sleep(seconds)
