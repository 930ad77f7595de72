"""Wiring: the aiohttp app (health, metrics) and the consumer's lifetime."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from libs.common.bus import Bus
from libs.common.bus.consumer import BoundedPullConsumer
from libs.common.bus.provision import ProvisionGate
from libs.common.db import create_pool
from libs.common.http.app import base_app
from libs.common.http.keys import METRICS, READINESS_CHECKS, SHUTTING_DOWN
from libs.common.logs import configure_logging
from libs.common.tasks import cancel_until_done
from libs.common.telemetry import setup_tracing, shutdown_tracing
from services.executor import provisioning
from services.executor.breakers import Breakers
from services.executor.connectors import ClientSessions, build_connectors
from services.executor.credentials import CredentialResolver
from services.executor.deferred import Waker
from services.executor.dry_run import DryRunResponder
from services.executor.dry_run_limits import DryRunLimits
from services.executor.fairness import BacklogView, TenantSlots
from services.executor.metrics import ExecutorMetrics
from services.executor.retention import Pruner
from services.executor.retry import Backoff
from services.executor.runner import ActionRunner
from services.executor.settings import ExecutorSettings
from services.executor.stats import StatsReader
from services.executor.store import ExecutionStore
from services.executor.templates import engine_for
from services.executor.worker import EventWorker, WorkerOptions
from services.executor.workflows import WorkflowReader

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("executor_settings", ExecutorSettings)
CONSUMER = web.AppKey("executor_consumer", BoundedPullConsumer)


def replica_id(port: int) -> str:
    """Who holds a lease: this process, distinguishable from its restarts and from other replicas."""
    return f"{socket.gethostname()}:{os.getpid()}:{port}:{uuid.uuid4().hex[:8]}"


async def executor_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    metrics = ExecutorMetrics(app[METRICS])
    bus = await Bus.connect(
        settings.nats, name=f"executor:{settings.http.port}", inbox_prefix=settings.nats_inbox_prefix
    )
    # Provisioned by the provisioning step (or here, with IPAAS_NATS_PROVISION=true); until then not ready.
    nats_setup = ProvisionGate(bus, provisioning.needs(settings))
    await nats_setup.start()
    pool: asyncpg.Pool = await create_pool(settings.db)
    sessions = ClientSessions(
        connections_per_host=settings.connections_per_host, timeout_seconds=settings.action_timeout_seconds
    )
    runner = ActionRunner(
        build_connectors(settings, sessions, bus),
        CredentialResolver(
            bus, timeout_seconds=settings.credential_timeout_seconds, cache_seconds=settings.credential_cache_seconds
        ),
        timeout_seconds=settings.action_timeout_seconds,
        max_output_bytes=settings.max_output_bytes,
        max_input_bytes=settings.max_input_bytes,
        templates=engine_for(settings.templates),
        propagate_to=settings.propagating_connectors(),
    )
    store = ExecutionStore(
        pool,
        owner=replica_id(settings.http.port),
        lease_seconds=settings.lease_seconds,
        max_items=settings.batch_max,
        linger=settings.batch_linger_seconds,
    )
    workflows = WorkflowReader(
        pool,
        cache_size=settings.workflow_cache_size,
        max_items=settings.batch_max,
        linger=settings.batch_linger_seconds,
    )
    waker = Waker(
        pool,
        bus,
        batch=settings.deferred_batch,
        poll_seconds=settings.deferred_poll_seconds,
        publish_timeout=settings.nats.publish_timeout_seconds,
    )
    slots = TenantSlots(
        settings.max_in_flight, headroom=settings.headroom_slots(), patience=settings.fairness_patience_seconds
    )
    breakers = Breakers(
        fail_max=settings.breaker_fail_max,
        reset_seconds=settings.breaker_reset_seconds,
        on_transition=metrics.on_breaker_transition,
    )
    metrics.watch_breakers(breakers)
    worker = EventWorker(
        bus=bus,
        store=store,
        workflows=workflows,
        runner=runner,
        breakers=breakers,
        slots=slots,
        backoff=Backoff(settings.backoff_base_seconds, settings.backoff_max_seconds),
        metrics=metrics,
        waker=waker,
        options=WorkerOptions(
            consumer=settings.consumer,
            max_attempts=settings.max_attempts,
            heartbeat_seconds=settings.heartbeat_seconds,
            fairness_delay_seconds=settings.fairness_delay_seconds,
            lease_seconds=settings.lease_seconds,
            ack_sync=settings.ack_sync,
            step_output_max_bytes=settings.step_output_max_bytes,
        ),
    )
    consumer = BoundedPullConsumer(
        bus,
        stream=settings.nats.events_stream,
        durable=settings.consumer,
        handler=worker.handle,
        max_in_flight=settings.max_in_flight,
        max_batch=settings.fetch_batch,
        min_fetch=max(1, settings.max_in_flight // 8),
    )
    app[CONSUMER] = consumer
    stats = StatsReader(
        bus,
        waker,
        metrics,
        streams=[settings.nats.events_stream, settings.nats.dlq_stream],
        events_stream=settings.nats.events_stream,
        consumer=settings.consumer,
        interval=settings.stats_interval_seconds,
    )
    backlog = BacklogView(
        bus,
        slots,
        stream=settings.nats.events_stream,
        subjects=settings.nats.events_subjects,
        interval=settings.fairness_refresh_seconds,
        busy=lambda: consumer.in_flight > 0,
    )
    dry_run = DryRunResponder(
        bus, runner, subject=settings.dry_run_subject, limits=DryRunLimits.from_settings(settings)
    )
    await dry_run.start()

    async def nats_ready() -> bool:
        return bus.is_connected

    async def db_ready() -> bool:
        return bool(await pool.fetchval("SELECT 1"))

    app[READINESS_CHECKS]["nats"] = nats_ready
    app[READINESS_CHECKS]["postgres"] = db_ready
    app[READINESS_CHECKS]["nats_streams"] = nats_setup.ready
    run_task = asyncio.create_task(nats_setup.then(consumer.run))
    waker_task = asyncio.create_task(waker.run())
    stats_task = asyncio.create_task(stats.run())
    backlog_task = asyncio.create_task(backlog.run())
    pruner = Pruner(
        pool,
        retention_days=settings.retention_days,
        batch=settings.retention_batch,
        interval_seconds=settings.retention_interval_seconds,
    )
    prune_task = asyncio.create_task(pruner.run(), name="execution-retention")

    async def stop_on_signal() -> None:
        await app[SHUTTING_DOWN].wait()
        log.info("draining: fetching stopped", extra={"in_flight": consumer.in_flight})
        consumer.stop()

    watcher = asyncio.create_task(stop_on_signal())
    log.info(
        "executor started",
        extra={"consumer": settings.consumer, "max_in_flight": settings.max_in_flight, "lease_owner": store.owner},
    )
    try:
        yield
    finally:
        consumer.stop()
        await nats_setup.stop()
        await dry_run.stop()
        await consumer.drain(settings.grace_seconds)
        waker.stop()  # a pass under way ends (within 5 s), then the loop does
        pruner.stop()
        # The loops are cancelled together, and again if one goes on (see libs/common/tasks.py).
        left = await cancel_until_done((run_task, watcher, stats_task, backlog_task, prune_task), every=0.5, rounds=4)
        _, waking = await asyncio.wait({waker_task}, timeout=5.0)
        left |= await cancel_until_done(waking, every=0.5, rounds=4)
        if left:
            log.warning("background tasks still running at shutdown", extra={"tasks": len(left)})
        await store.close()
        await workflows.close()
        await worker.close()
        await bus.drain()
        await sessions.close()
        await pool.close()
        shutdown_tracing()
        log.info("executor stopped")


async def create_app(settings: ExecutorSettings | None = None) -> web.Application:
    settings = settings or ExecutorSettings()
    configure_logging("executor", settings.log_level, settings.trace_url_template)
    setup_tracing("executor")
    app = base_app("executor")
    app[SETTINGS] = settings
    app.cleanup_ctx.append(executor_ctx)
    return app
