"""The scheduler runs on its least-privilege NATS identity: it publishes events and follows changes
(an ordered consumer on WORKFLOW_CHANGES), on streams made by the provisioning step."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.scheduler import publish_change, schedule_definition, scheduler_env, stored_events
from tests.helpers.secured_nats import SecuredNats
from tests.helpers.services import ServiceProcess
from tests.helpers.wait import wait_until


def loaded(svc: ServiceProcess) -> float:
    with urllib.request.urlopen(f"{svc.metrics_url}/metrics", timeout=2) as resp:  # noqa: S310 - local test server
        match = re.search(r"^ipaas_scheduler_schedules_loaded (\S+)$", resp.read().decode(), re.M)
    return float(match.group(1)) if match else -1.0


@pytest.mark.slow
async def test_scheduler_fires_and_follows_changes_with_its_own_identity(
    secured_nats: SecuredNats,
    database_url: str,
    db: asyncpg.Connection,
    service: Callable[..., Any],
) -> None:
    tenant = await create_tenant(db)
    wf = await create_workflow(db, tenant, schedule_definition("every second", interval_seconds=1))
    nats_env = secured_nats.service_env("scheduler")
    scheduler = service("services.scheduler", env=scheduler_env(nats_env["NATS_URL"], database_url, **nats_env))
    # Reading EVENTS' messages is for admin only.
    async with secured_nats.connected("gateway") as gateway, secured_nats.connected("admin") as admin:
        [(_, fired), *_] = await wait_until(lambda: stored_events(admin), timeout=10, message="a scheduled event")
        assert fired.workflow_id == wf and fired.trigger == "schedule"

        await db.execute("UPDATE workflows SET is_active = false WHERE id = $1", wf)
        await publish_change(gateway, tenant, wf, 1, "disabled", is_active=False)
        await wait_until(lambda: loaded(scheduler) == 0, timeout=5, message="schedule unloaded via the feed")
        assert "permissions violation" not in scheduler.logs().lower()
    assert scheduler.terminate() == 0
