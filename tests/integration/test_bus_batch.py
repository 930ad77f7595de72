"""``Bus.publish_batch`` against a real JetStream: every message answered once, dedup, a small window, no stream."""

from __future__ import annotations

import uuid

from prometheus_client import CollectorRegistry

from libs.common.bus import Bus, BusError, BusUnavailable, PublishResult
from libs.common.bus.batch import Outgoing
from libs.common.bus.client import MSG_ID_HEADER
from libs.common.models.events import EventEnvelope
from services.scheduler.clock import SystemClock
from services.scheduler.firing import Publisher
from services.scheduler.metrics import SchedulerMetrics
from services.scheduler.slots import slot_datetime
from services.scheduler.store import ScheduleSpec
from tests.unit.test_scheduler_versions import spec


def _messages(count: int, prefix: str) -> list[Outgoing]:
    return [
        Outgoing(f"events.t1.w{i % 7}", f'{{"n": {i}}}'.encode(), {MSG_ID_HEADER: f"{prefix}:{i}"})
        for i in range(count)
    ]


async def _publish(bus: Bus, messages: list[Outgoing], window: int) -> dict[int, list[PublishResult | BusError]]:
    outcomes: dict[int, list[PublishResult | BusError]] = {}
    await bus.publish_batch(messages, lambda i, outcome: outcomes.setdefault(i, []).append(outcome), window=window)
    return outcomes


async def test_every_message_is_stored_and_answered_once_even_with_a_small_window(bus: Bus) -> None:
    messages = _messages(250, "batch")
    outcomes = await _publish(bus, messages, window=7)

    assert sorted(outcomes) == list(range(250))
    assert all(len(answers) == 1 for answers in outcomes.values())
    results = [answers[0] for answers in outcomes.values()]
    assert all(isinstance(r, PublishResult) and not r.duplicate for r in results)
    assert len({r.seq for r in results if isinstance(r, PublishResult)}) == 250
    assert (await bus.js.stream_info("EVENTS")).state.messages == 250
    stored = await bus.js.get_msg("EVENTS", seq=1)
    assert stored.headers is not None and stored.headers[MSG_ID_HEADER].startswith("batch:")


async def test_a_batch_sent_again_is_all_duplicates(bus: Bus) -> None:
    messages = _messages(40, "again")
    await _publish(bus, messages, window=1000)
    outcomes = await _publish(bus, messages, window=1000)

    assert all(isinstance(o[0], PublishResult) and o[0].duplicate for o in outcomes.values())
    assert (await bus.js.stream_info("EVENTS")).state.messages == 40


async def test_a_subject_no_stream_takes_fails_each_message_as_unavailable(bus: Bus) -> None:
    messages = [Outgoing("nowhere.at.all", b"{}", {MSG_ID_HEADER: f"x:{i}"}) for i in range(5)]
    outcomes = await _publish(bus, messages, window=2)

    assert sorted(outcomes) == list(range(5))
    assert all(isinstance(o[0], BusUnavailable) for o in outcomes.values())


async def test_a_prepared_schedule_event_is_the_envelope_the_executor_reads(bus: Bus) -> None:
    held: ScheduleSpec = spec(3, cron="* * * * *")
    publisher = Publisher(bus, SystemClock(), SchedulerMetrics(CollectorRegistry()))
    slot = 1_800_000_000
    prepared = publisher.prepare(held, slot, 3)
    env = EventEnvelope.model_validate_json(prepared.message.payload)

    assert env == publisher.envelope(held, slot, 3, received_at=slot_datetime(slot))
    assert env.workflow_version == 3 and env.scheduled_for == slot_datetime(slot)
    assert env.received_at == slot_datetime(slot)
    assert prepared.message.headers[MSG_ID_HEADER] == env.dedup_key == publisher.dedup_key(held.workflow_id, slot)
    assert prepared.message.subject == f"events.{held.tenant_id}.{held.workflow_id}"
    assert env.event_id == publisher.event_id(held, slot)
    assert isinstance(env.event_id, uuid.UUID)
