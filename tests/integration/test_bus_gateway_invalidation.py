"""The gateway's webhook cache on a real NATS: a change drops its entry, a reconnect clears it all.

Both through the bus (a core subscription and a reconnect listener), not the raw client.
"""

from __future__ import annotations

import uuid

from deploy.local.infra import NatsServer
from libs.common.bus import Bus
from libs.common.models.events import workflow_changed_subject
from services.gateway.hooks.cache import WebhookTarget, WorkflowCache
from services.gateway.hooks.invalidation import clear_on_reconnect, subscribe_invalidations
from tests.helpers.wait import wait_until


def _counting_cache() -> tuple[WorkflowCache, list[uuid.UUID]]:
    loads: list[uuid.UUID] = []

    async def loader(workflow_id: uuid.UUID) -> WebhookTarget | None:
        loads.append(workflow_id)
        return WebhookTarget(workflow_id, uuid.uuid4(), len(loads), b"k")

    return WorkflowCache(loader, ttl=600, negative_ttl=1, max_entries=100), loads


async def test_a_change_drops_the_entry_and_a_reconnect_clears_the_cache(
    private_nats: NatsServer, private_bus: Bus
) -> None:
    bus = private_bus
    cache, loads = _counting_cache()
    changed, kept = uuid.uuid4(), uuid.uuid4()
    sub = await subscribe_invalidations(bus, cache)
    clear_on_reconnect(bus, cache)
    try:
        await cache.get(changed)
        await cache.get(kept)
        assert loads == [changed, kept]

        await bus.publish_core(workflow_changed_subject(uuid.uuid4(), changed), b"{}")

        async def read_again(workflow_id: uuid.UUID) -> bool:
            """Whether a look-up of ``workflow_id`` (made now) was its second load."""
            await cache.get(workflow_id)
            return loads.count(workflow_id) == 2

        await wait_until(lambda: read_again(changed), message="the changed workflow to be read again")
        await cache.get(kept)
        assert loads.count(kept) == 1  # untouched by another workflow's change

        private_nats.kill()
        await wait_until(lambda: not bus.is_connected, timeout=15, message="client to notice the outage")
        private_nats.start()
        await wait_until(lambda: bus.is_connected, timeout=20, message="client to reconnect")
        await wait_until(lambda: read_again(kept), timeout=10, message="the whole cache cleared after the reconnect")
    finally:
        await sub.unsubscribe()
