"""What the executor needs in JetStream: EVENTS, DLQ, and its durable consumer with its settings' values.

The provisioning step (``python -m deploy.provision``) creates the consumer from
:func:`consumer_spec`, so ``IPAAS_EXECUTOR_MAX_ACK_PENDING``, ``_ACK_WAIT_SECONDS``,
``_MAX_DELIVER`` and ``_MAX_ATTEMPTS`` take effect when it runs; a replica started with other
values logs the difference at start-up.
"""

from __future__ import annotations

from libs.common.bus.provision import Needs
from libs.common.bus.streams import ConsumerSpec
from services.executor.settings import ExecutorSettings


def consumer_spec(settings: ExecutorSettings) -> ConsumerSpec:
    """The durable pull consumer every executor replica shares."""
    return ConsumerSpec(
        stream=settings.nats.events_stream,
        durable=settings.consumer,
        max_ack_pending=settings.max_ack_pending,
        ack_wait_seconds=settings.ack_wait_seconds,
        max_deliver=settings.effective_max_deliver(),
    )


def needs(settings: ExecutorSettings) -> Needs:
    """EVENTS (consumed, and parked events go back to it), DLQ (dead letters) and the consumer."""
    return Needs(streams=(settings.nats.events_stream, settings.nats.dlq_stream), consumers=(consumer_spec(settings),))
