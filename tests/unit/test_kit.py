"""The service kit's drain order and the settings every service shares (no infrastructure needed)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer

from libs.common.http.keys import SHUTTING_DOWN
from libs.common.kit import Kit, service_app
from libs.common.settings import ServiceSettings
from services.auth.settings import AuthSettings
from services.executor.settings import ExecutorSettings
from services.gateway.settings import GatewaySettings
from services.scheduler.settings import SchedulerSettings
from tests.helpers.wait import wait_until


class ProbeSettings(ServiceSettings):
    service = "probe"


async def test_drain_runs_in_the_documented_order() -> None:
    steps: list[str] = []
    loop_stop = asyncio.Event()

    async def patient() -> None:
        await loop_stop.wait()
        steps.append("patient loop ended")

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            steps.append("quick loop cancelled")

    async def finish_in_flight() -> None:
        await asyncio.sleep(0)
        steps.append("drain")

    def broken() -> None:
        raise RuntimeError("a failing step does not stop the drain")

    async def start(kit: Kit[ProbeSettings]) -> None:
        kit.task(patient(), name="patient", stop=loop_stop.set, wait=5.0)
        kit.task(forever(), name="quick")
        kit.on_sigterm(lambda: steps.append("sigterm"))
        kit.on_drain(finish_in_flight)
        kit.on_drain(broken)
        kit.on_close(lambda: steps.append("close"))

    app = service_app(ProbeSettings(), start, pool=False, bus=False)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/health/ready")).status == 200
        app[SHUTTING_DOWN].set()  # what SIGTERM does
        await wait_until(lambda: steps, timeout=1, interval=0.01, message="the SIGTERM step")
        assert steps == ["sigterm"], "new work stops at the signal, before the server closes"
        assert (await client.get("/health/ready")).status == 503
    assert steps[:2] == ["sigterm", "drain"]
    assert sorted(steps[2:4]) == ["patient loop ended", "quick loop cancelled"]
    assert steps[4:] == ["close"]


async def test_a_service_without_a_pool_or_bus_has_neither() -> None:
    seen: list[Kit[ProbeSettings]] = []

    async def start(kit: Kit[ProbeSettings]) -> None:
        seen.append(kit)

    app = service_app(ProbeSettings(), start, pool=False, bus=False)
    async with TestClient(TestServer(app)) as client:
        body = await (await client.get("/health/ready")).json()
        assert body == {"status": "ready", "checks": {}}
        with pytest.raises(AssertionError, match="pool"):
            _ = seen[0].pool
        with pytest.raises(AssertionError, match="bus"):
            _ = seen[0].bus


@pytest.mark.parametrize(
    ("cls", "port", "metrics_port"),
    [
        (GatewaySettings, 8080, 9080),
        (AuthSettings, 8081, 9081),
        (SchedulerSettings, 8082, 9082),
        (ExecutorSettings, 8083, 9083),
    ],
)
def test_each_service_has_its_documented_ports_and_its_own_inbox_prefix_under_its_own_variable(
    cls: type[ServiceSettings], port: int, metrics_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    http = cls().http
    assert (http.port, http.metrics_port) == (port, metrics_port)
    variable = f"IPAAS_{cls.service.upper()}_NATS_INBOX_PREFIX"
    monkeypatch.delenv(variable, raising=False)
    assert cls().nats_inbox_prefix == f"_INBOX_{cls.service}"
    monkeypatch.setenv(variable, "_INBOX_custom")
    assert cls().nats_inbox_prefix == "_INBOX_custom"


async def test_a_drain_step_past_its_grace_is_cut_and_the_drain_goes_on() -> None:
    steps: list[str] = []

    async def stuck() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            steps.append("stuck step cut")

    async def start(kit: Kit[ProbeSettings]) -> None:
        kit.on_drain(stuck, grace=0.05)
        kit.on_close(lambda: steps.append("close"))

    app = service_app(ProbeSettings(), start, pool=False, bus=False)
    async with TestClient(TestServer(app)):
        pass
    assert steps == ["stuck step cut", "close"]
