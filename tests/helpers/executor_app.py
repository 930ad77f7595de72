"""Run the executor in-process: the same service app as ``python -m services.executor``, in the test's loop.

The settings are read from the same environment a subprocess would get (the harness's defaults, then
``env``; any other ``IPAAS_``/``OTEL_`` variable of the test process is left out), and the executor
connects to Postgres as its own role.  The app serves ``/health`` on a free port; it is handed over
once ``/health/ready`` answers 200, and stopped (drained) when the context ends.

A test that kills the executor, signals it or reads its process logs starts it as a process instead.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from unittest import mock

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from deploy.local.infra import free_port
from libs.common import kit
from libs.common.http.keys import METRICS
from services.executor import provisioning
from services.executor.app import start
from services.executor.settings import ExecutorSettings
from tests.helpers.pg_roles import as_role, is_superuser_url
from tests.helpers.services import HARNESS_ENV, outside_env
from tests.helpers.wait import wait_until


@dataclass
class InProcessExecutor:
    app: web.Application
    settings: ExecutorSettings
    client: TestClient[web.Request, web.Application]

    def metrics(self) -> str:
        """What ``/metrics`` would answer (the process serves it on its own port)."""
        return self.app[METRICS].render().decode()


# The ``executor`` fixture: ``await executor(**env_overrides)``.
ExecutorFactory = Callable[..., Awaitable[InProcessExecutor]]


async def _ready(client: TestClient[web.Request, web.Application]) -> bool:
    async with client.get("/health/ready") as resp:
        return resp.status == 200


@asynccontextmanager
async def running_executor(env: Mapping[str, str]) -> AsyncIterator[InProcessExecutor]:
    """``env`` as for the subprocess (``executor_env``); a superuser ``DATABASE_URL`` becomes the executor's role."""
    port = free_port()
    full = {**env, "IPAAS_HTTP_PORT": str(port), "IPAAS_HTTP_METRICS_PORT": "0"}
    if is_superuser_url(full.get("DATABASE_URL", "")):
        full["DATABASE_URL"] = as_role(full["DATABASE_URL"], "executor")
    with mock.patch.dict(os.environ, {**outside_env(), **HARNESS_ENV, **full}, clear=True):
        settings = ExecutorSettings()
        app = kit.service_app(settings, start, streams=provisioning.needs(settings))
    async with TestClient(TestServer(app, host="127.0.0.1", port=port)) as client:
        await wait_until(lambda: _ready(client), timeout=30, interval=0.05, message="executor ready")
        yield InProcessExecutor(app=app, settings=settings, client=client)
