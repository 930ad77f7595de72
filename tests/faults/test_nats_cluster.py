"""A three-node NATS cluster (streams at R3) loses a node under a webhook burst, then gets it back.

The gateway and two executors connect with the cluster's seed list.  The node killed
(``kill -9``) leads both ``EVENTS`` and its consumer ``executor``, the worst one to lose:
until the two survivors elect new leaders nothing can be stored or fetched, so ingest
answers 503 with ``Retry-After`` (never 500, never a 202 for an event that was not
stored), then goes on through them, and the executors' fetches are refused (503) and
retried.
The ledger holds: every 202 is exactly one final execution row, no row without a
202, nothing left in the consumer or parked, and no action ran twice.  The node comes
back, catches up (every replica of the stream and of the consumer current), and the
consumers go on with new webhooks.

A second, shorter test checks the seed list itself against a cluster that enforces the
identities: one entry carries the credentials, the client reconnects as the same identity
to a server it only learned from the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import orjson
import pytest

from deploy.local.nats_authz import render_authorization
from libs.common.bus import Bus
from libs.common.bus.permissions import ALL_IDENTITIES, inbox_prefix
from libs.common.settings import NatsSettings
from tests.helpers.bus_publish import published
from tests.helpers.ledger import Ledger, burst_with_outage, fault_stack, http_workflow
from tests.helpers.nats_cluster import NatsCluster, wait_for_jetstream
from tests.helpers.wait import wait_until

BURST = 3000
# The survivors elect new leaders 4 to 9 s after the kill (nats-server's randomised Raft election timeout),
# and 503s stop with it: about 5 s in our runs on a loaded 2-core machine.  The bound allows one full
# timeout, a second round after a split vote, and the time to answer.
MAX_REFUSAL_WINDOW_S = 20.0


async def _all_current(bus: Bus, stream: str, consumer: str | None = None) -> bool:
    """Whether the stream (or its consumer) has a leader and every other replica is online and current."""
    try:
        info = await (bus.js.consumer_info(stream, consumer) if consumer else bus.js.stream_info(stream))
    except Exception:
        return False
    cluster = info.cluster
    return bool(
        cluster is not None
        and cluster.leader
        and len(cluster.replicas or []) == 2
        and all(r.current and not r.offline for r in cluster.replicas or [])
    )


async def _lead_consumer_on(bus: Bus, stream: str, consumer: str, server: str) -> None:
    """Move the consumer's leadership to ``server`` (a stepdown naming the preferred server)."""

    async def leads() -> bool:
        info = await bus.js.consumer_info(stream, consumer)
        if info.cluster is not None and info.cluster.leader == server:
            return True
        with contextlib.suppress(Exception):  # an election under way: ask again on the next poll
            await bus.nc.request(
                f"$JS.API.CONSUMER.LEADER.STEPDOWN.{stream}.{consumer}",
                orjson.dumps({"placement": {"preferred": server}}),
                timeout=2,
            )
        return False

    await wait_until(leads, timeout=30, interval=0.5, message=f"consumer {consumer} led by {server}")


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_events_leader_killed_mid_burst_then_back(db, database_url, nats_cluster: NatsCluster, service, sink):
    seeds = nats_cluster.seed_url
    bus = await Bus.connect(NatsSettings(NATS_URL=seeds, replicas=3), name="ledger", connect_deadline_seconds=10)
    try:
        await bus.ensure_streams()
        r3 = {"IPAAS_NATS_REPLICAS": "3"}  # self-provisioning services must not scale the streams down
        async with fault_stack(service, db, seeds, database_url) as stack:
            stack.start_gateway(IPAAS_GATEWAY_PUBLISH_TIMEOUT_SECONDS="1", **r3)
            for _ in range(2):
                stack.start_executor(**r3)
            tenant = await stack.tenant(http_workflow(f"{sink.url}/c"))
            for name in ("EVENTS", "DLQ", "WORKFLOW_CHANGES"):
                assert (await bus.js.stream_info(name)).config.num_replicas == 3
            await wait_until(lambda: _all_current(bus, "EVENTS", "executor"), timeout=20, message="consumer at R3")
            cluster = (await bus.js.stream_info("EVENTS")).cluster
            assert cluster is not None and cluster.leader
            leader = cluster.leader
            await _lead_consumer_on(bus, "EVENTS", "executor", leader)
            victim = nats_cluster.node_named(leader)

            ledger = Ledger()
            killed: list[float] = []

            def kill() -> None:
                victim.kill()  # kill -9
                killed.append(time.monotonic())

            await burst_with_outage(lambda: stack.send(ledger, tenant, BURST, concurrency=16), ledger, 600, kill)
            # 503s are quick (nothing answers for the stream), so the burst may end before the election
            # does: go on sending until ingest is back, as a sender retrying would.
            while (
                any(a.status == 503 for a in ledger.answers[-100:])
                and time.monotonic() < killed[0] + MAX_REFUSAL_WINDOW_S + 5
            ):
                await stack.send(ledger, tenant, 100, concurrency=16)

            statuses = ledger.statuses()
            assert set(statuses) <= {202, 503}, statuses  # never a 500, never a dropped connection
            assert not ledger.refused_without_retry_after()
            # The first and last answer time of the 503s, relative to the kill.
            refused = [a.answered_at - killed[0] for a in ledger.answers if a.status == 503]
            first, last = (min(refused), max(refused)) if refused else (0.0, 0.0)
            assert first >= -1.0, "503s before the node was killed"
            assert last <= MAX_REFUSAL_WINDOW_S, f"503s went on for {last:.1f} s after the kill"
            # Ingest went on through the two survivors: only 202s after the last 503.
            later = [a for a in ledger.answers if a.answered_at > killed[0] + last]
            assert len(later) >= 100 and all(a.status == 202 for a in later), Ledger(later).statuses()

            # The node comes back and catches up; the consumers go on.
            await asyncio.to_thread(victim.start)
            await wait_until(lambda: _all_current(bus, "EVENTS"), timeout=30, message="EVENTS replicas current")
            await wait_until(
                lambda: _all_current(bus, "EVENTS", "executor"), timeout=30, message="consumer replicas current"
            )
            await stack.send_accepted(ledger, tenant, 200, concurrency=8)
            await stack.every_event_once(ledger, tenant, bus, sink, timeout=60)
    finally:
        await bus.drain()


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_seed_list_reconnects_as_the_same_identity_to_a_learned_server(tmp_path: Path):
    passwords = {name: f"pw-{name}" for name in ALL_IDENTITIES}
    cluster = NatsCluster(tmp_path / "cluster", extra_config=render_authorization(passwords))
    cluster.start()
    try:
        admin = [u.replace("nats://", f"nats://admin:{passwords['admin']}@") for u in cluster.urls]
        await wait_for_jetstream(admin)
        provisioner = await Bus.connect(
            NatsSettings(NATS_URL=admin[0], replicas=3), name="provision", connect_deadline_seconds=10
        )
        await provisioner.ensure_streams()
        await provisioner.drain()
        # Only the first entry carries the credentials; the gateway is told of one more server.
        first, second, _ = cluster.urls
        url = f"{first.replace('nats://', 'nats://gateway:' + passwords['gateway'] + '@')},{second}"
        bus = await Bus.connect(
            NatsSettings(NATS_URL=url),
            name="gateway",
            inbox_prefix=inbox_prefix("gateway"),
            connect_deadline_seconds=10,
        )
        try:
            assert (await bus.publish("events.t.w", b"{}", msg_id="one")).duplicate is False
            # Kill both servers of the seed list: the third is known only from the cluster's announcement.
            for node in (cluster.nodes[0], cluster.nodes[1]):
                node.kill()
            third_port = cluster.nodes[2].port
            await wait_until(
                lambda: (
                    bus.is_connected and bus.nc.connected_url is not None and bus.nc.connected_url.port == third_port
                ),
                timeout=20,
                message="connected as gateway to the server it learned of",
            )
            cluster.nodes[0].start()  # a quorum again (two of three) for the stream
            await wait_until(
                lambda: published(bus, "events.t.w", b"{}", msg_id="two"),
                timeout=30,
                message="a publish as gateway after the seeds died",
            )
            assert (await bus.js.stream_info("EVENTS")).state.messages == 2
        finally:
            await bus.drain()
    finally:
        cluster.kill()
