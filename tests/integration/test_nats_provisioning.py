"""The provisioning step and the services' start-up against it, on a NATS enforcing the permission table.

Before ``python -m deploy.provision`` has run, every JetStream service starts, answers
``/health/ready`` with 503, says what is missing and how to create it, and creates nothing
itself; once the step has run, each turns ready without a restart.  A service told to
provision itself without the right to (``IPAAS_NATS_PROVISION=true`` on a locked-down NATS)
is refused, says so, and carries on with what the provisioning step made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from libs.common.bus import Bus, NotProvisioned, StreamConflict
from libs.common.bus.permissions import inbox_prefix
from libs.common.bus.provision import Needs, ensure_needs, provision
from libs.common.settings import NatsSettings
from tests.helpers.auth_setup import kek_env
from tests.helpers.fakes import executor_env
from tests.helpers.secured_nats import SecuredNats
from tests.helpers.services import ServiceProcess, run_module
from tests.helpers.wait import wait_until


async def readiness(http: aiohttp.ClientSession, svc: ServiceProcess) -> tuple[int, dict[str, Any]] | None:
    try:
        async with http.get(f"{svc.url}/health/ready") as resp:
            return resp.status, await resp.json()
    except aiohttp.ClientError:
        return None  # not listening yet


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_services_wait_unready_until_the_provisioning_step_has_run(
    unprovisioned_nats: SecuredNats, database_url: str, service: Callable[..., ServiceProcess]
) -> None:
    nats = unprovisioned_nats
    started = {
        "gateway": service(
            "services.gateway",
            wait=False,
            env={**nats.service_env("gateway"), "DATABASE_URL": database_url, **kek_env()},
        ),
        "executor": service(
            "services.executor",
            wait=False,
            env=executor_env(nats.url_for("executor"), database_url, **nats.service_env("executor")),
        ),
        "scheduler": service(
            "services.scheduler", wait=False, env={**nats.service_env("scheduler"), "DATABASE_URL": database_url}
        ),
    }
    async with nats.connected("admin") as admin:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            for name, svc in started.items():

                async def answer(svc: ServiceProcess = svc) -> tuple[int, dict[str, Any]] | None:
                    return await readiness(http, svc)

                def said(svc: ServiceProcess = svc) -> bool:
                    return "not provisioned yet" in svc.logs()

                status = await wait_until(answer, timeout=60, message=f"{name} answering /health/ready")
                assert status[0] == 503, (name, status)
                if name != "scheduler":
                    assert status[1]["checks"]["nats_streams"] is False
                await wait_until(said, timeout=15, message=f"{name} saying what is missing")
                assert "deploy.provision" in svc.logs() and f"stream {admin.settings.events_stream}" in svc.logs()
            assert await admin.js.streams_info() == []  # nobody created anything on their own
            assert all(svc.alive() for svc in started.values())

            assert await nats.provision() == [
                "stream EVENTS",
                "stream DLQ",
                "stream WORKFLOW_CHANGES",
                "consumer EVENTS/executor",
            ]
            for name, svc in started.items():

                async def ready(svc: ServiceProcess = svc) -> bool:
                    answer = await readiness(http, svc)
                    return answer is not None and answer[0] == 200

                await wait_until(ready, timeout=30, interval=0.2, message=f"{name} ready after provisioning")
        for name, svc in started.items():
            assert "permissions violation" not in svc.logs().lower(), name
            assert svc.terminate() == 0, name


async def test_a_service_told_to_provision_without_the_right_falls_back_to_checking(
    secured_nats: SecuredNats, caplog: pytest.LogCaptureFixture
) -> None:
    settings = NatsSettings(NATS_URL=secured_nats.url_for("gateway"), provision=True, publish_timeout_seconds=1)
    bus = await Bus.connect(settings, name="gateway", inbox_prefix=inbox_prefix("gateway"), connect_deadline_seconds=10)
    try:
        with caplog.at_level(logging.WARNING, logger="libs.common.bus.provision"):
            await ensure_needs(bus, Needs(("EVENTS", "WORKFLOW_CHANGES")))  # refused, then found: carries on
        assert any("provisioning at start-up failed" in r.getMessage() for r in caplog.records)
    finally:
        await bus.drain()


async def test_a_missing_stream_is_named(unprovisioned_nats: SecuredNats) -> None:
    async with unprovisioned_nats.connected("executor") as bus:
        with pytest.raises(NotProvisioned) as missing:
            await ensure_needs(bus, Needs(("EVENTS", "DLQ")))
        assert missing.value.missing == ["stream EVENTS", "stream DLQ"]


async def run_provision(nats_url: str) -> tuple[int, str]:
    """``python -m deploy.provision`` as a process, as the migrate Job runs it."""
    return await run_module("deploy.provision", env={"NATS_URL": nats_url})


@pytest.mark.slow
async def test_an_old_events_stream_with_another_retention_stops_provisioning_with_the_way_out(nats_url: str) -> None:
    settings = NatsSettings(NATS_URL=nats_url, provision=False)
    bus = await Bus.connect(settings, name="old", connect_deadline_seconds=10)
    try:
        await bus.js.add_stream(name="EVENTS", subjects=["events.>"])  # an older version's: limits retention
        with pytest.raises(StreamConflict, match=r"nats stream rm EVENTS"):
            await provision(bus)
        # A service waiting for it says why the stream that is there does not count.
        with pytest.raises(NotProvisioned) as missing:
            await ensure_needs(bus, Needs(("EVENTS",)))
        assert missing.value.missing == ["stream EVENTS (retention limits, needs workqueue)"]
        # The command exits 1 and logs the reason; once the old stream is gone, it succeeds.
        code, output = await run_provision(nats_url)
        assert code == 1 and "nats stream rm EVENTS" in output and "StreamConflict" in output
        await bus.js.delete_stream("EVENTS")
        code, output = await run_provision(nats_url)
        assert code == 0 and "NATS provisioned" in output
        assert (await bus.js.consumer_info("EVENTS", "executor")).config.max_ack_pending == 4096
    finally:
        await bus.drain()
