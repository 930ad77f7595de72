"""The executor's parts, wired on the service kit: what runs an event, and the loops around it.

:func:`start` builds them on a :class:`libs.common.kit.Kit` that already holds the pool, the
bus and the provisioning gate; the kit stops them in its drain order: at SIGTERM the consumer
stops fetching, then the dry-run responder stops and the events in flight get
``IPAAS_EXECUTOR_GRACE_SECONDS`` to finish (then are released), then the loops end, the
write-behind batches flush, and the bus and the pool close.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid

from libs.common.bus import Bus
from libs.common.bus.consumer import BoundedPullConsumer
from libs.common.http.keys import METRICS
from libs.common.kit import Kit
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
from services.executor.worker import EventWorker
from services.executor.workflows import WorkflowReader

log = logging.getLogger(__name__)

RELEASE_SECONDS = 5.0


def replica_id(port: int) -> str:
    """Who holds a lease: this process, distinguishable from its restarts and from other replicas."""
    return f"{socket.gethostname()}:{os.getpid()}:{port}:{uuid.uuid4().hex[:8]}"


def action_runner(settings: ExecutorSettings, sessions: ClientSessions, bus: Bus) -> ActionRunner:
    credentials = CredentialResolver(
        bus, timeout_seconds=settings.credential_timeout_seconds, cache_seconds=settings.credential_cache_seconds
    )
    return ActionRunner(
        build_connectors(settings, sessions, bus),
        credentials,
        timeout_seconds=settings.action_timeout_seconds,
        max_output_bytes=settings.max_output_bytes,
        max_input_bytes=settings.max_input_bytes,
        templates=engine_for(settings.templates),
        propagate_to=settings.propagating_connectors(),
    )


async def start(kit: Kit[ExecutorSettings]) -> None:
    settings, bus, pool, nats = kit.settings, kit.bus, kit.pool, kit.settings.nats
    metrics = ExecutorMetrics(kit.app[METRICS])
    sessions = ClientSessions(
        connections_per_host=settings.connections_per_host, timeout_seconds=settings.action_timeout_seconds
    )
    runner = action_runner(settings, sessions, bus)
    owner = replica_id(settings.http.port)
    most, linger = settings.batch_max, settings.batch_linger_seconds
    store = ExecutionStore(pool, owner=owner, lease_seconds=settings.lease_seconds, max_items=most, linger=linger)
    workflows = WorkflowReader(pool, cache_size=settings.workflow_cache_size, max_items=most, linger=linger)
    waker = Waker(
        pool,
        bus,
        batch=settings.deferred_batch,
        poll_seconds=settings.deferred_poll_seconds,
        publish_timeout=nats.publish_timeout_seconds,
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
    backoff = Backoff(settings.backoff_base_seconds, settings.backoff_max_seconds)
    worker = EventWorker(
        bus=bus,
        store=store,
        workflows=workflows,
        runner=runner,
        breakers=breakers,
        slots=slots,
        backoff=backoff,
        metrics=metrics,
        waker=waker,
        settings=settings,
    )
    consumer = BoundedPullConsumer(
        bus,
        stream=nats.events_stream,
        durable=settings.consumer,
        handler=worker.handle,
        max_in_flight=settings.max_in_flight,
        max_batch=settings.fetch_batch,
        min_fetch=max(1, settings.max_in_flight // 8),
    )
    stats = StatsReader(
        bus,
        waker,
        metrics,
        streams=[nats.events_stream, nats.dlq_stream],
        events_stream=nats.events_stream,
        consumer=settings.consumer,
        interval=settings.stats_interval_seconds,
    )
    backlog = BacklogView(
        bus,
        slots,
        stream=nats.events_stream,
        subjects=nats.events_subjects,
        interval=settings.fairness_refresh_seconds,
        busy=lambda: consumer.in_flight > 0,
    )
    pruner = Pruner(
        pool,
        retention_days=settings.retention_days,
        batch=settings.retention_batch,
        interval_seconds=settings.retention_interval_seconds,
    )
    dry_run = DryRunResponder(
        bus, runner, subject=settings.dry_run_subject, limits=DryRunLimits.from_settings(settings)
    )
    await dry_run.start()

    def stop_fetching() -> None:
        log.info("draining: fetching stopped", extra={"in_flight": consumer.in_flight})
        consumer.stop()

    assert kit.gate is not None
    kit.task(kit.gate.then(consumer.run), name="events-consumer")
    kit.task(waker.run(), name="deferred-waker", stop=waker.stop, wait=5.0)  # a pass under way ends (within 5 s)
    kit.task(stats.run(), name="stream-stats")
    kit.task(backlog.run(), name="backlog-view")
    kit.task(pruner.run(), name="execution-retention", stop=pruner.stop)
    kit.on_sigterm(stop_fetching)
    kit.on_drain(dry_run.stop)
    # What has not finished within the grace is released (lease freed, NAKed): a few seconds more for that.
    kit.on_drain(lambda: consumer.drain(settings.grace_seconds), grace=settings.grace_seconds + RELEASE_SECONDS)
    for close in (store.close, workflows.close, worker.close, sessions.close):
        kit.on_close(close)
    kit.on_close(lambda: log.info("executor stopped"))  # its work is done; the bus and the pool close next
    log.info(
        "executor consuming",
        extra={"consumer": settings.consumer, "max_in_flight": settings.max_in_flight, "lease_owner": owner},
    )
