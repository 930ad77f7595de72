"""Waiting for a NATS cluster to be able to hold R3 streams."""

from __future__ import annotations

import asyncio

import nats
import nats.js.api


async def wait_for_jetstream(urls: list[str], timeout: float = 30.0) -> None:
    """Until the cluster can place a stream on every server (a meta leader, and every peer known online)."""
    nc = await nats.connect(urls, connect_timeout=2)
    try:
        js = nc.jetstream(timeout=2)
        probe = nats.js.api.StreamConfig(
            name="CLUSTER_READY",
            subjects=["cluster.ready"],
            num_replicas=len(urls),
            storage=nats.js.api.StorageType.MEMORY,
        )
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                await js.add_stream(probe)
                await js.delete_stream("CLUSTER_READY")
                return
            except (nats.errors.Error, TimeoutError):
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.1)
    finally:
        await nc.close()
