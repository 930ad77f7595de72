"""SIGTERM each service type under load: the ledger holds, each process exits inside its grace period, and no
event waits longer than 5 s for another replica.  (The scheduler: ``test_scheduler_sigterm.py``.)

Executor: a gateway, two executor replicas and a steady webhook load; one replica gets SIGTERM mid-load.
Both run with ``ack_wait`` and the lease at 60 s, so an event that was left to JetStream's redelivery or to
a lease's expiry would wait tens of seconds.  The wait is measured per event: from its 202 (or, for an
event the dying replica claimed and then released, from the ``event released`` log line it wrote) to the
claim that ran it (``executions.started_at``, set by every claim).  Once with a grace longer than every
action (nothing released, no extra receipt), once with a grace shorter than the actions (in-flight work is
cancelled; each such event is claimed by the other replica within 5 s, and an extra receipt is only ever an
event whose call was under way when it was cancelled: the documented window).

Gateway: two replicas, the test client sends to both; one gets SIGTERM mid-burst.  Every request it read
got an answer (202, or 503 with ``Retry-After``); a request that got no answer at all is sent again by the
client (same ``webhook-id``), as a sender would, and must not be a duplicate: the replica never published
it, so it never read it.  Connections refused after the listener closed are not requests it accepted.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp
import asyncpg
import pytest

from libs.common.bus import Bus
from tests.helpers.fakes import Answer, FakeSink, Seen
from tests.helpers.ledger import Answer as Reply
from tests.helpers.ledger import FaultStack, Ledger, Tenant, http_workflow
from tests.helpers.services import ServiceProcess, metric, metrics_text
from tests.helpers.wait import wait_until
from tests.helpers.webhooks import signed

HANDOVER_LIMIT = 5.0  # no event waits longer than this for the other replica
# An executor exits within its grace plus: the fetch under way when fetching stops (the 1 s long poll),
# releasing the leases of cancelled work (one statement, bounded at 1 s) and closing NATS and Postgres.
EXECUTOR_EXIT_MARGIN = 3.0
SLOW_TIMEOUTS = {"IPAAS_EXECUTOR_ACK_WAIT_SECONDS": "60", "IPAAS_EXECUTOR_LEASE_SECONDS": "60"}


def _quick_or_slowish(_req: Seen, n: int) -> Answer:
    """A few ms to 0.2 s, spread over the calls."""
    return Answer(200, "ok", delay=0.003 + (n * 7919 % 198) / 1000)


async def _steady(send: Callable[[int], Awaitable[None]], total: int, rate: float, tick: float = 0.1) -> None:
    """Start ``send(k)`` every ``tick`` seconds (``rate`` requests per second in all) without waiting for answers."""
    per_tick = max(1, round(rate * tick))
    start, sent, ticks = time.monotonic(), 0, 0
    sending: list[asyncio.Future[None]] = []
    while sent < total:
        k = min(per_tick, total - sent)
        sending.append(asyncio.ensure_future(send(k)))
        sent, ticks = sent + k, ticks + 1
        await asyncio.sleep(max(0.0, start + ticks * tick - time.monotonic()))  # pacing the load, not a sync
    await asyncio.gather(*sending)


def _in_flight(executor: ServiceProcess) -> float:
    return metric(metrics_text(executor.metrics_url), "ipaas_executor_in_flight")


def _log_lines(proc: ServiceProcess, msg: str) -> list[dict[str, Any]]:
    lines = proc.logs().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{") and f'"msg":"{msg}"' in line]


def _released(proc: ServiceProcess) -> dict[str, float]:
    """Event id -> wall time at which ``proc`` released its lease (its message is NAKed right after)."""
    return {r["event_id"]: datetime.fromisoformat(r["ts"]).timestamp() for r in _log_lines(proc, "event released")}


async def _claims_none_waited_long(
    db: asyncpg.Connection, ledger: Ledger, workflow: uuid.UUID, released: dict[str, float], wall: float
) -> dict[str, asyncpg.Record]:
    """Event id -> the claim that ran it (``attempts``, ``claimed``: its wall time), once checked that per event,
    from its 202 (or its release by the dying replica, if later) to that claim is at most ``HANDOVER_LIMIT``."""
    rows = await db.fetch(
        "SELECT event_id, attempts, extract(epoch FROM started_at)::float8 AS claimed "
        "FROM executions WHERE workflow_id = $1",
        workflow,
    )
    claims = {str(r["event_id"]): r for r in rows}
    waits = {
        e: claims[e]["claimed"] - max(a.answered_at + wall, released.get(e, 0.0)) for e, a in ledger.accepted.items()
    }
    late = {e: round(w, 2) for e, w in waits.items() if w > HANDOVER_LIMIT}
    assert not late, f"{len(late)} events waited more than {HANDOVER_LIMIT}s: {list(late.items())[:5]}"
    return claims


async def _stop(proc: ServiceProcess, budget: float) -> float:
    """SIGTERM, and the seconds it took ``proc`` to exit 0 (``terminate`` blocks: off the loop serving the sink)."""
    started = time.monotonic()
    code = await asyncio.to_thread(proc.terminate, budget + 15)
    assert code == 0, proc.logs()[-3000:]
    return time.monotonic() - started


async def _executor_setup(
    stack: FaultStack, sink: FakeSink, grace: str, **env: str
) -> tuple[Tenant, ServiceProcess, ServiceProcess]:
    stack.start_gateway()
    victim = stack.start_executor(IPAAS_EXECUTOR_GRACE_SECONDS=grace, **SLOW_TIMEOUTS, **env)
    survivor = stack.start_executor(IPAAS_EXECUTOR_GRACE_SECONDS=grace, **SLOW_TIMEOUTS, **env)
    return await stack.tenant(http_workflow(f"{sink.url}/load")), victim, survivor


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_executor_sigterm_mid_load_finishes_its_work_and_hands_over_nothing_late(
    bus: Bus, db: asyncpg.Connection, stack: FaultStack, sinks: Any
) -> None:
    grace = 5.0
    sink = await sinks(_quick_or_slowish)
    tenant, victim, survivor = await _executor_setup(stack, sink, str(grace))
    ledger, wall = Ledger(), time.time() - time.monotonic()
    # A rate one replica absorbs even on a busy machine: a wait measured is the hand-over's, not a backlog's.
    load = asyncio.ensure_future(_steady(lambda k: stack.send(ledger, tenant, k, concurrency=k), total=1000, rate=100))

    async def victim_busy() -> bool:
        return len(ledger.answers) >= 300 and await asyncio.to_thread(_in_flight, victim) >= 5

    await wait_until(victim_busy, timeout=30, interval=0.02, message="the victim working mid-load")
    took = await _stop(victim, grace + EXECUTOR_EXIT_MARGIN)
    exited = time.monotonic() + wall
    await load

    assert took <= grace + EXECUTOR_EXIT_MARGIN, f"exit took {took:.1f}s"
    draining = _log_lines(victim, "draining: fetching stopped")
    assert draining and draining[0]["in_flight"] > 0 and _log_lines(victim, "executor stopped")
    assert ledger.statuses() == {202: 1000}
    await stack.every_event_once(ledger, tenant, bus, sink, timeout=40)
    # Every action in flight fitted in the grace: nothing was cancelled, nothing ran twice.
    released = _released(victim)
    assert released == {}
    claims = await _claims_none_waited_long(db, ledger, tenant.workflow_id, released, wall)
    assert sum(1 for r in claims.values() if r["claimed"] > exited) > 100  # the survivor took over
    assert survivor.alive()


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_executor_sigterm_with_actions_longer_than_the_grace_releases_them_to_the_other_replica(
    bus: Bus, db: asyncpg.Connection, stack: FaultStack, sinks: Any
) -> None:
    grace, action = 1.0, 3.0
    sink = await sinks(lambda _r, _n: Answer(200, "ok", delay=action))
    # The survivor alone holds every call (about 3 s x 40/s, plus the released ones): room for all of
    # them in its connection pool, and a timeout no call reaches, so nothing is retried.
    tenant, victim, survivor = await _executor_setup(
        stack,
        sink,
        str(grace),
        IPAAS_EXECUTOR_CONNECTIONS_PER_HOST="256",
        IPAAS_EXECUTOR_ACTION_TIMEOUT_SECONDS="20",
    )
    ledger, wall = Ledger(), time.time() - time.monotonic()
    load = asyncio.ensure_future(_steady(lambda k: stack.send(ledger, tenant, k, concurrency=k), total=240, rate=40))

    async def victim_busy() -> bool:
        return await asyncio.to_thread(_in_flight, victim) >= 20

    await wait_until(victim_busy, timeout=30, interval=0.05, message="the victim mid-action")
    took = await _stop(victim, grace + EXECUTOR_EXIT_MARGIN)
    await load

    assert took <= grace + EXECUTOR_EXIT_MARGIN, f"exit took {took:.1f}s"
    assert ledger.statuses() == {202: 240}
    await ledger.settle(db, bus, timeout=40)
    released = _released(victim)
    assert len(released) >= 10, "the grace was meant to cut actions short"
    figures = await ledger.check(db, bus, [tenant.workflow_id], sink, extra_receipts_allowed=len(released))
    assert figures["rows"] == {"succeeded": 240}
    claims = await _claims_none_waited_long(db, ledger, tenant.workflow_id, released, wall)
    # Each released event was claimed again (by the survivor) after its release, within the limit:
    # its lease was given up, not left to expire (60 s), and its message NAKed, not left to ack_wait.
    for event_id, at in released.items():
        claim = claims[event_id]
        assert claim["attempts"] >= 2 and claim["claimed"] > at, (event_id, dict(claim), at)
    # The one window: an event whose call had reached the target when it was cancelled runs again on
    # the survivor, so the target sees it twice (same Idempotency-Key).  Nothing else is repeated.
    receipts: dict[str, list[float]] = {}
    for r in sink.requests:
        receipts.setdefault(r.headers["Idempotency-Key"], []).append(r.at + wall)
    twice = {e: at for e, at in receipts.items() if len(at) > 1}
    assert set(twice) <= set(released), "an event that was not cancelled reached the target twice"
    assert all(len(at) == 2 and at[0] < released[e] < at[1] for e, at in twice.items())
    assert figures["extra_receipts"] == len(twice) > 0
    assert survivor.alive()


# --- gateway --------------------------------------------------------------------------------------------


class Sender:
    """Signed webhooks to one gateway; every answer goes to the ledger, and a request without one is kept.

    A connection that could not be made (the listener is closed) is ``refused``; any other failure (a reset
    or a disconnect after connecting) is a request that got no answer, kept to be sent again.
    """

    def __init__(self, http: aiohttp.ClientSession, tenant: Tenant, gateway: ServiceProcess) -> None:
        self._http, self._tenant = http, tenant
        self.url = f"{gateway.url}/hooks/{tenant.workflow_id}"
        self.refused = 0
        self.unanswered: list[tuple[str, str]] = []  # webhook id, the error's type
        self.closing: list[tuple[float, float, bool]] = []  # sent, answered, whether it said Connection: close

    async def post(self, ledger: Ledger, n: int, webhook_id: str | None = None) -> dict[str, Any] | None:
        webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
        body = json.dumps({"n": n})
        headers = signed(self._tenant.secret, body, msg_id=webhook_id)
        sent = time.monotonic()
        try:
            async with self._http.post(self.url, data=body, headers=headers) as resp:
                data = await resp.read()
                answered = time.monotonic()
                reply = json.loads(data) if resp.status == 202 else None
                event_id = reply["data"]["event_id"] if reply else None
                ledger.answers.append(Reply(resp.status, event_id, resp.headers.get("Retry-After"), sent, answered))
                self.closing.append((sent, answered, resp.headers.get("Connection", "").lower() == "close"))
                return reply
        except aiohttp.ClientConnectorError:
            self.refused += 1
        except (aiohttp.ClientError, OSError) as exc:
            self.unanswered.append((webhook_id, type(exc).__name__))
        return None

    async def send(self, ledger: Ledger, count: int) -> None:
        await asyncio.gather(*(self.post(ledger, i) for i in range(count)))


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_gateway_sigterm_mid_burst_answers_what_it_accepted(
    bus: Bus, db: asyncpg.Connection, stack: FaultStack, sink: FakeSink
) -> None:
    drain_delay, grace = 2.0, 5.0
    shutdown = {
        "IPAAS_GATEWAY_DRAIN_DELAY_SECONDS": str(drain_delay),
        "IPAAS_HTTP_SHUTDOWN_GRACE_SECONDS": str(grace),
    }
    victim, survivor = stack.start_gateway(**shutdown), stack.start_gateway(**shutdown)
    stack.start_executor()
    tenant = await stack.tenant(http_workflow(f"{sink.url}/gw"))
    to_victim, to_survivor = Sender(stack.http, tenant, victim), Sender(stack.http, tenant, survivor)
    on_victim, on_survivor, wall = Ledger(), Ledger(), time.time() - time.monotonic()
    load = asyncio.ensure_future(
        asyncio.gather(
            _steady(lambda k: to_victim.send(on_victim, k), total=1200, rate=200),
            _steady(lambda k: to_survivor.send(on_survivor, k), total=1200, rate=200),
        )
    )
    await wait_until(lambda: len(on_victim.answers) >= 300, timeout=30, message="the burst under way")
    sigterm = time.monotonic()
    took = await _stop(victim, drain_delay + grace)
    await load

    # Inside the drain delay plus the HTTP grace, so no request handler was cut short by the grace.
    assert took < drain_delay + grace, f"exit took {took:.1f}s"
    assert _log_lines(victim, "stopped")
    # When SHUTTING_DOWN was set (readiness 503 from then on: tests/e2e/test_gateway_process.py).
    draining = datetime.fromisoformat(_log_lines(victim, "shutdown requested; draining")[0]["ts"]).timestamp()
    statuses = on_victim.statuses()
    assert set(statuses) <= {202, 503} and not on_victim.refused_without_retry_after(), statuses
    # It went on serving while draining, and from then on every answer closed its connection, so
    # keep-alive clients left before the listener closed.
    assert all(closes for sent, _, closes in to_victim.closing if sent + wall > draining + 0.001)
    assert any(closes for _, _, closes in to_victim.closing)
    assert not any(closes for _, answered, closes in to_victim.closing if answered < sigterm)
    assert to_victim.refused > 0, "the burst was meant to outlast the listener"
    assert on_survivor.statuses() == {202: 1200} and not to_survivor.refused and not to_survivor.unanswered
    # A request that got no answer was never read: sent again with the same webhook-id (as a sender
    # does), it is new, not a duplicate of an event the replica published without answering.
    retried = Ledger()
    for webhook_id, error in to_victim.unanswered:
        reply = await to_survivor.post(retried, 0, webhook_id=webhook_id)
        assert reply is not None and reply["data"]["duplicate"] is False, (webhook_id, error, reply)
    ledger = Ledger(on_victim.answers + on_survivor.answers + retried.answers)
    await ledger.settle(db, bus, timeout=40)
    figures = await ledger.check(db, bus, [tenant.workflow_id], sink)
    assert figures["rows"] == {"succeeded": len(ledger.accepted)} and figures["extra_receipts"] == 0
    assert len(ledger.accepted) == len(ledger.answers) - statuses[503]
