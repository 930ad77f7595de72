"""Many schedules at once, and the fires they left in the EVENTS stream."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

import nats
from nats.js import api as js_api

from tests.helpers.factories import connection, create_tenant
from tests.helpers.scheduler import schedule_definition


@dataclass(frozen=True, slots=True)
class Fire:
    workflow_id: str
    slot: int  # whole seconds since the epoch
    stored_at: float  # the stream's timestamp of the message
    msg_id: str
    event_id: str


async def create_schedules(database_url: str, count: int, cron: str) -> list[uuid.UUID]:
    """``count`` active workflows of one new tenant, each at version 1 with a ``cron`` (UTC) schedule."""
    definition = json.dumps(schedule_definition("tick", cron=cron))
    ids = [uuid.uuid4() for _ in range(count)]
    async with connection(database_url) as conn, conn.transaction():
        tenant = await create_tenant(conn, "many schedules")
        await conn.execute(
            """INSERT INTO workflows (id, tenant_id, name, current_version, is_active, trigger_type)
                   SELECT id, $2, 'tick', 1, true, 'schedule' FROM unnest($1::uuid[]) AS t(id)""",
            ids,
            tenant,
        )
        await conn.execute(
            """INSERT INTO workflow_versions (workflow_id, version, definition)
                   SELECT id, 1, $2::jsonb FROM unnest($1::uuid[]) AS t(id)""",
            ids,
            definition,
        )
    return ids


async def stored_count(nats_url: str) -> int:
    """How many messages EVENTS holds."""
    async with await nats.connect(nats_url) as nc:
        return int((await nc.jetstream().stream_info("EVENTS")).state.messages)


async def read_fires(nats_url: str, first_slot: int, last_slot: int) -> list[Fire]:
    """Every stored schedule event whose slot is in ``[first_slot, last_slot]``, in stream order.

    Read with a pull consumer that never acks (EVENTS is a work queue: acking would delete).
    """
    found: list[Fire] = []
    async with await nats.connect(nats_url) as nc:
        js = nc.jetstream(timeout=30)
        total = (await js.stream_info("EVENTS")).state.messages
        config = js_api.ConsumerConfig(
            ack_policy=js_api.AckPolicy.EXPLICIT,
            deliver_policy=js_api.DeliverPolicy.ALL,
            max_ack_pending=-1,
            ack_wait=3600,
        )
        sub = await js.pull_subscribe(">", stream="EVENTS", config=config)
        seen = 0
        while seen < total:
            batch = await sub.fetch(2000, timeout=10)
            seen += len(batch)
            for msg in batch:
                body = json.loads(msg.data)
                if body.get("scheduled_for") is None:
                    continue
                slot = int(datetime.fromisoformat(body["scheduled_for"]).timestamp())
                if first_slot <= slot <= last_slot:
                    msg_id = (msg.headers or {}).get("Nats-Msg-Id", "")
                    found.append(
                        Fire(body["workflow_id"], slot, msg.metadata.timestamp.timestamp(), msg_id, body["event_id"])
                    )
        await sub.unsubscribe()
    return found
