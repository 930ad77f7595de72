"""Fixtures shared by the e2e tests: launched stacks (``make up``) and the platform as service processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.helpers.fakes import executor_env
from tests.helpers.launcher import REPO_ROOT, Run, launcher_env, start
from tests.helpers.services import ServiceProcess
from tests.helpers.stack_processes import Api, start_auth_and_gateway


class Stack(Api):
    """Auth, a gateway and executors as processes, and a signed-up user's client of the gateway."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        auth: ServiceProcess,
        gateway: ServiceProcess,
        executors: list[ServiceProcess],
    ) -> None:
        super().__init__(http, gateway.url)
        self.auth, self.gateway, self.executors = auth, gateway, executors


# The ``platform`` fixture: ``await platform(executors=1, common=..., gateway=..., executor=...)``.
Platform = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def platform(
    service: Callable[..., ServiceProcess], database_url: str, nats_url: str, tmp_path: Path
) -> AsyncIterator[Platform]:
    """Factory: auth and a gateway (``start_auth_and_gateway`` with ``common`` and ``gateway``), then
    ``executors`` executor processes (``executor_env`` with ``executor``); returns a signed-up user's client."""
    async with aiohttp.ClientSession() as http:

        async def _start(
            *,
            executors: int = 1,
            common: dict[str, str] | None = None,
            gateway: dict[str, str] | None = None,
            executor: dict[str, str] | None = None,
        ) -> Stack:
            auth, gw = start_auth_and_gateway(service, database_url, nats_url, tmp_path, common=common, gateway=gateway)
            env = executor_env(nats_url, database_url, **(executor or {}))
            stack = Stack(http, auth, gw, [service("services.executor", env=env) for _ in range(executors)])
            await stack.sign_up()
            return stack

        yield _start


@pytest.fixture
def local_dir(tmp_path: Path) -> Path:
    """Where this test's launcher keeps its data."""
    return tmp_path / "local"


@pytest.fixture
def launch(tmp_path: Path, local_dir: Path) -> Iterator[Callable[..., Run]]:
    """``launch(**settings)`` starts ``python -m deploy.local`` with ``launcher_env(local_dir, **settings)``
    (``launch(env=...)``: with that environment); whatever is still running at the end is killed."""
    runs: list[Run] = []

    def _launch(env: dict[str, str] | None = None, **settings: str) -> Run:
        run = start(tmp_path / f"launcher-{len(runs)}.log", local_dir, env or launcher_env(local_dir, **settings))
        runs.append(run)
        return run

    yield _launch
    for run in runs:
        run.kill_all()


def launch_to_the_end(env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """``python -m deploy.local`` with ``env``, run until it exits (a launcher that refuses to start)."""
    return subprocess.run(
        [sys.executable, "-m", "deploy.local"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
