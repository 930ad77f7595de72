"""The real-infrastructure harness.

Session fixtures start a private ``nats-server`` (JetStream) and a private
Postgres on free ports in temp dirs.  Each test gets its own database, made
from a migrated template, and a JetStream with no streams left over from the
test before.  Fault tests take ``private_nats`` / ``private_pg`` to kill and
restart servers nobody else uses, and ``nats_cluster`` for three clustered
JetStream servers (R3 streams) whose nodes they kill and restart.

The outside world of an action has fixtures too: ``sink`` (a fake HTTP target that records every
request; set ``sink.behaviour`` to script its answers), ``sinks`` (more of them), ``creds`` (the
credential resolver on the test NATS), ``slack_tenant`` (a tenant with a Slack credential aimed at
``sink``), ``gw`` (the gateway in-process) and ``executor`` (the executor in-process;
``service`` starts it as a process).  ``auth_app`` is auth in-process, ``tenant_id`` a new tenant, and
``schedulers`` starts scheduler replicas in-process (tests/helpers/scheduler.py has what their tests share),
``scheduler_processes`` as processes.

Postgres is set up as in a deployment (``tests/helpers/pg_roles.py``): the
platform's roles exist, databases belong to the owner ``ipaas`` and are
migrated as ``ipaas``.  ``database_url`` is the superuser's URL, for tests to
arrange and inspect anything; a service started as a process connects as its
own role (``role_url`` gives those URLs to a test).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
from aiohttp.test_utils import TestClient
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from deploy.local.infra import NatsServer, PostgresServer, free_port
from libs.common.bus import Bus
from libs.common.db import create_pool
from libs.common.db.roles import OWNER
from libs.common.settings import DatabaseSettings, NatsSettings
from libs.common.telemetry import setup_tracing
from services.executor.connectors import ClientSessions
from services.scheduler.runtime import SchedulerRuntime
from services.scheduler.settings import SchedulerOptions
from tests.helpers.auth_setup import auth_client, auth_settings
from tests.helpers.executor_app import InProcessExecutor, running_executor
from tests.helpers.factories import create_tenant, execute_once
from tests.helpers.fakes import Behaviour, CredentialResponder, FakeSink, SlackTenant, executor_env
from tests.helpers.gateway_app import Gateway, running_gateway, tenant
from tests.helpers.nats_cluster import NatsCluster, wait_for_jetstream
from tests.helpers.pg_roles import as_role, prepare
from tests.helpers.scheduler import scheduler_env
from tests.helpers.secured_nats import SecuredNats, start_secured_nats
from tests.helpers.services import ServiceProcess, start_service
from tests.helpers.wait import wait_until
from tests.helpers.wall_clock import ManualClock

TEMPLATE_DB = "ipaas_template"
# The free room in /dev/shm below which the shared servers keep their data on disk instead.
MEMORY_DIR_ROOM = 2 << 30
# In-process services and runtimes run against the open test NATS, where nobody else provisions the
# streams: they do it themselves (development mode).  Tests of the secured NATS pass false explicitly.
os.environ.setdefault("IPAAS_NATS_PROVISION", "true")


def _alive(pid: int) -> bool:
    """Whether a process with this pid exists (the runtime-only test environment has no psutil)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        pass
    return True


@contextlib.contextmanager
def _session_data_dir(factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """Where a shared server keeps its data: in memory when ``/dev/shm`` has room, else the test temp dir.

    Every test makes a database and streams, which is file work: a database from the template
    takes about 150 ms of the kernel's time on disk here and about 50 ms in memory.  A small
    ``/dev/shm`` (a container's 64 MB) is not used.  Nothing rotates ``/dev/shm``, so the dirs of
    a run that was killed (named after its process, which is gone) are removed here.
    """
    memory = Path("/dev/shm")
    if memory.is_dir() and os.access(memory, os.W_OK) and shutil.disk_usage(memory).free >= MEMORY_DIR_ROOM:
        for left in memory.glob("ipaas-test-*"):
            pid = left.name.split("-")[2]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(left, ignore_errors=True)
        path = Path(tempfile.mkdtemp(prefix=f"ipaas-test-{os.getpid()}-{name}-", dir=memory))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
    else:
        yield factory.mktemp(name)


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with _session_data_dir(tmp_path_factory, "nats") as data:
        server = NatsServer(data, free_port())
        server.start()
        yield server
        server.stop()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with _session_data_dir(tmp_path_factory, "pg") as data:
        server = PostgresServer(data / "data", free_port(), durable=False)
        server.start()
        asyncio.run(prepare(server, TEMPLATE_DB))
        yield server
        server.stop()


@pytest.fixture
def database_url(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh, migrated database for this test alone (owned by ``ipaas``), as the superuser.

    It is dropped after the test (connections still open to it are ended), so the shared
    server holds one test's databases at a time, not the whole run's.
    """
    name = f"t_{uuid.uuid4().hex[:16]}"
    asyncio.run(execute_once(pg_server.dsn(), f'CREATE DATABASE "{name}" TEMPLATE {TEMPLATE_DB} OWNER {OWNER}'))
    yield pg_server.dsn(name)
    asyncio.run(execute_once(pg_server.dsn(), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def role_url(database_url: str) -> Callable[[str], str]:
    """``role_url("gateway")``: this test's database as that service's own Postgres role."""
    return lambda service: as_role(database_url, service)


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    """The shared private NATS, with every stream deleted before the test."""
    asyncio.run(_delete_all_streams(nats_server.url))
    return nats_server.url


async def _delete_all_streams(url: str) -> None:
    async with await nats.connect(url) as nc:
        js = nc.jetstream()
        for info in await js.streams_info():
            await js.delete_stream(info.config.name or "")


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A NATS server of this test's own, to stop, kill and restart."""
    server = NatsServer(tmp_path / "nats", free_port())
    server.start()
    yield server
    server.kill()


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """Three JetStream servers of this test's own in one cluster, ready for R3 streams (``seed_url``)."""
    cluster = NatsCluster(tmp_path / "nats-cluster")
    cluster.start()
    try:
        asyncio.run(wait_for_jetstream(cluster.urls))
        yield cluster
    finally:
        cluster.kill()


@pytest.fixture
def private_pg(tmp_path: Path) -> Iterator[PostgresServer]:
    """A Postgres of this test's own (the roles, an ``ipaas`` database migrated as ``ipaas``), to kill and restart."""
    server = PostgresServer(tmp_path / "pg", free_port(), durable=False)
    server.start()
    asyncio.run(prepare(server, "ipaas"))
    yield server
    server.kill()


@pytest.fixture
def secured_nats(tmp_path: Path) -> Iterator[SecuredNats]:
    """A NATS of this test's own that enforces the identities' permissions, provisioned as ``provisioner``."""
    with start_secured_nats(tmp_path) as secured:
        yield secured


@pytest.fixture
def unprovisioned_nats(tmp_path: Path) -> Iterator[SecuredNats]:
    """Like ``secured_nats``, before the provisioning step has run: no stream, no consumer."""
    with start_secured_nats(tmp_path, provision=False) as secured:
        yield secured


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    """A connected bus with EVENTS, DLQ and WORKFLOW_CHANGES provisioned."""
    b = await Bus.connect(NatsSettings(NATS_URL=nats_url), name="test", connect_deadline_seconds=10)
    await b.ensure_streams()
    yield b
    await b.drain()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on this test's database, as the superuser."""
    p = await create_pool(DatabaseSettings(DATABASE_URL=database_url))
    yield p
    await p.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Factory: ``service("services.gateway", env={...})`` starts it and waits for ready (the options of
    :func:`~tests.helpers.services.start_service`: ``port`` a free one unless given, ``wait``, ``timeout``, ``args``).

    The service connects to Postgres as its own role (a superuser ``DATABASE_URL`` is replaced;
    ``own_role=False`` keeps it).  Every process it started is killed at teardown.
    """
    started: list[ServiceProcess] = []

    def _start(module: str, **options: Any) -> ServiceProcess:
        started.append(start_service(module, log_dir=tmp_path, **options))
        return started[-1]

    yield _start
    for svc in started:
        svc.kill()


@pytest.fixture
async def gw(database_url: str, nats_url: str, bus: Bus) -> AsyncIterator[Gateway]:
    """The gateway in-process (tests/helpers/gateway_app.py), the streams provisioned by ``bus``."""
    async with running_gateway(database_url, nats_url) as gateway:
        yield gateway


@pytest.fixture
async def auth_app(database_url: str, nats_url: str) -> AsyncIterator[TestClient[Any, Any]]:
    """Auth in-process with the test settings (``auth_client(auth_settings(...))``, tests/helpers/auth_setup.py)."""
    async with auth_client(auth_settings(database_url, nats_url)) as client:
        yield client


@pytest.fixture
async def tenant_id(database_url: str) -> uuid.UUID:
    """A new tenant in this test's database."""
    return await tenant(database_url)


@pytest.fixture
async def sinks() -> AsyncIterator[Callable[..., Awaitable[FakeSink]]]:
    """Factory: ``await sinks(behaviour, host=...)`` starts a :class:`FakeSink`; all are stopped at teardown."""
    started: list[FakeSink] = []

    async def _start(behaviour: Behaviour | None = None, *, host: str = "127.0.0.1") -> FakeSink:
        sink = await FakeSink(behaviour, host=host).start()
        started.append(sink)
        return sink

    yield _start
    for sink in started:
        await sink.stop()


@pytest.fixture
async def sink(sinks: Callable[..., Awaitable[FakeSink]]) -> FakeSink:
    """A started fake HTTP target answering 200 until ``sink.behaviour`` says otherwise."""
    return await sinks()


@pytest.fixture
async def creds(nats_url: str) -> AsyncIterator[CredentialResponder]:
    """Answers credential resolution on the test NATS; ``creds.add(tenant, type, secret)`` stores one."""
    responder = await CredentialResponder(nats_url).start()
    yield responder
    await responder.stop()


@pytest.fixture
async def slack_tenant(db: asyncpg.Connection, creds: CredentialResponder, sink: FakeSink) -> SlackTenant:
    """A new tenant with a Slack credential whose webhook URL is ``sink``."""
    tenant = await create_tenant(db)
    return SlackTenant(tenant, creds.add(tenant, "slack", {"webhook_url": f"{sink.url}/services/T/B/X"}))


@pytest.fixture
async def executor(nats_url: str, database_url: str) -> AsyncIterator[Callable[..., Awaitable[InProcessExecutor]]]:
    """Factory: ``await executor(**env_overrides)`` runs the executor in-process (see tests/helpers/executor_app.py)."""
    async with contextlib.AsyncExitStack() as stack:

        async def _start(**overrides: str) -> InProcessExecutor:
            return await stack.enter_async_context(running_executor(executor_env(nats_url, database_url, **overrides)))

        yield _start


@pytest.fixture
async def schedulers(bus: Bus, pool: asyncpg.Pool) -> AsyncIterator[Callable[..., Awaitable[SchedulerRuntime]]]:
    """Factory: ``await schedulers(clock, registry=None, **options)`` starts a scheduler replica in this process
    on ``bus`` and ``pool`` (``SchedulerOptions(**options)``, resync hourly unless given) and waits until it is
    ready; all are stopped at teardown."""
    started: list[SchedulerRuntime] = []

    async def _start(clock: ManualClock, registry: Any = None, **options: Any) -> SchedulerRuntime:
        rt = SchedulerRuntime(
            bus, pool, clock, SchedulerOptions(**{"resync_interval_seconds": 3600.0, **options}), registry
        )
        started.append(rt)
        await rt.start()
        await wait_until(lambda: rt.ready, timeout=10, message="scheduler ready")
        return rt

    yield _start
    for rt in started:
        await rt.stop()


@pytest.fixture
def scheduler_processes(
    service: Callable[..., ServiceProcess], nats_url: str, database_url: str
) -> Callable[..., list[ServiceProcess]]:
    """Factory: ``scheduler_processes(*overrides)`` starts a scheduler process per dict of environment overrides
    (on ``scheduler_env``), every one before waiting for any to be ready, so they come up together.  It blocks:
    a test whose loop serves something meanwhile calls it through ``asyncio.to_thread``."""

    def _start(*overrides: dict[str, str], timeout: float = 30.0) -> list[ServiceProcess]:
        envs = [scheduler_env(nats_url, database_url, **extra) for extra in overrides]
        replicas = [service("services.scheduler", env=env, wait=False) for env in envs]
        for replica in replicas:
            replica.wait_ready(timeout)
        return replicas

    return _start


@pytest.fixture
async def sessions() -> AsyncIterator[ClientSessions]:
    """The executor's HTTP sessions, for a test calling connectors directly."""
    s = ClientSessions(connections_per_host=10, timeout_seconds=5)
    yield s
    await s.close()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """Tracing set up for this test: every span it finishes, kept in memory."""
    exporter = InMemorySpanExporter()
    setup_tracing("test", processor=SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
async def private_bus(private_nats: NatsServer) -> AsyncIterator[Bus]:
    """A bus connected to ``private_nats`` (no streams provisioned), drained after the test."""
    b = await Bus.connect(NatsSettings(NATS_URL=private_nats.url), name="test", connect_deadline_seconds=10)
    yield b
    await b.drain()
