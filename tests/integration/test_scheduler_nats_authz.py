"""The scheduler runs on its least-privilege NATS identity: it publishes events and follows changes
(an ordered consumer on WORKFLOW_CHANGES), on streams made by the provisioning step."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from libs.common.bus import Bus
from libs.common.models.events import EventEnvelope, WorkflowChanged, workflow_changed_subject
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.secured_nats import SecuredNats
from tests.helpers.services import ServiceProcess
from tests.helpers.wait import wait_until


def loaded(svc: ServiceProcess) -> float:
    with urllib.request.urlopen(f"{svc.metrics_url}/metrics", timeout=2) as resp:  # noqa: S310 - local test server
        match = re.search(r"^ipaas_scheduler_schedules_loaded (\S+)$", resp.read().decode(), re.M)
    return float(match.group(1)) if match else -1.0


async def events_of(bus: Bus) -> list[EventEnvelope]:
    info = await bus.js.stream_info("EVENTS")
    if not info.state.messages:
        return []
    return [
        EventEnvelope.model_validate_json((await bus.js.get_msg("EVENTS", seq)).data or b"")
        for seq in range(info.state.first_seq, info.state.last_seq + 1)
    ]


@pytest.mark.slow
async def test_scheduler_fires_and_follows_changes_with_its_own_identity(
    secured_nats: SecuredNats,
    database_url: str,
    db: asyncpg.Connection,
    service: Callable[..., Any],
) -> None:
    tenant = await create_tenant(db)
    wf = await create_workflow(
        db,
        tenant,
        {
            "name": "every second",
            "trigger": {"type": "schedule", "interval_seconds": 1},
            "action": {"type": "http_request", "config": {"url": "http://127.0.0.1:9/hook"}},
        },
    )
    scheduler = service(
        "services.scheduler",
        env={
            **secured_nats.service_env("scheduler"),
            "DATABASE_URL": database_url,
            "IPAAS_SCHEDULE_MIN_INTERVAL_SECONDS": "1",
        },
    )
    gateway = await secured_nats.bus("gateway")
    admin = await secured_nats.bus("admin")  # reading EVENTS' messages is for admin only
    try:
        fired = await wait_until(lambda: events_of(admin), timeout=10, message="a scheduled event")
        assert fired[0].workflow_id == wf and fired[0].trigger == "schedule"

        await db.execute("UPDATE workflows SET is_active = false WHERE id = $1", wf)
        change = WorkflowChanged(tenant_id=tenant, workflow_id=wf, version=1, change="disabled", is_active=False)
        await gateway.publish(
            workflow_changed_subject(tenant, wf), change.model_dump_json().encode(), msg_id="outbox:1"
        )
        await wait_until(lambda: loaded(scheduler) == 0, timeout=5, message="schedule unloaded via the feed")
        assert "permissions violation" not in scheduler.logs().lower()
    finally:
        await gateway.drain()
        await admin.drain()
    assert scheduler.terminate() == 0
