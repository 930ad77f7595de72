"""A pull-consume loop with a hard bound on the work in flight.

The loop only fetches as many messages as it has free slots, so a replica
never holds more than ``max_in_flight`` unacked messages, whatever the
backlog.  The consumer's ``max_ack_pending`` bounds all replicas together.

Latency and batching: with no backlog the loop long-polls for a single
message, which is handed over the moment it is stored (a batch pull would
hold the first message until the batch filled or the poll expired).  Each
message says how many more are waiting (``num_pending``); while that is
above zero the loop pulls batches of at most that many, which the server
fills at once.

Outages: a fetch that fails (NATS away) or that the server answers with a status instead
of messages (503 while a cluster elects the consumer's new leader) is retried with a backoff
up to 2 s; the loop ends only when it is stopped.

Stop: a long poll under way is woken at once (a shutdown does not wait out the fetch timeout).
The poll is cancelled, but its pull stays open on the server until it expires: a message the
poll had already taken is NAKed, what reached the subscription since is NAKed by
:meth:`drain`, which then unsubscribes at once, before the grace; the server hands a pull
whose subscription is gone nothing more.  A batch pull is
never cut short (it could drop messages it had half-read); it ends within its short timeout.

Drain: what is still running when the grace ends is cancelled, and cancelled
again if it goes on: on Python 3.11 ``asyncio.wait_for`` (inside nats-py and
asyncpg) returns the result instead of raising when the awaited operation
completes as the cancellation lands, so one cancellation can be lost.  Each
round waits long enough for a handler's own release to finish (the
executor's: the claim under way, then the lease, each bounded at 1 s).
After the last round, the message of a task that still runs is NAKed from
here and the drain moves on: a shutdown is never held by one task.
"""

from __future__ import annotations

import asyncio
import logging

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.client import JetStreamContext
from nats.js.errors import APIError

from libs.common.bus.client import UNAVAILABLE_ERRORS, Bus
from libs.common.bus.messages import MessageHandler
from libs.common.tasks import cancel_until_done, wait_at_most

log = logging.getLogger(__name__)

# After the grace: cancel, wait this long for the tasks to end, cancel what goes on; this many rounds.
CANCEL_ROUNDS = 2
CANCEL_WAIT_SECONDS = 2.5


class BoundedPullConsumer:
    """Runs ``handler`` for each message of a durable pull consumer.

    The handler owns the message's fate (ack, nak, term).  If it raises,
    the message is NAKed so that it is redelivered.
    """

    def __init__(
        self,
        bus: Bus,
        *,
        stream: str,
        durable: str,
        handler: MessageHandler,
        max_in_flight: int,
        max_batch: int = 64,
        fetch_timeout: float = 1.0,
        min_fetch: int = 1,
        batch_fetch_timeout: float = 0.02,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._bus = bus
        self._stream = stream
        self._durable = durable
        self._handler = handler
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        self._fetch_timeout = fetch_timeout
        # A batch pull is only made when messages are known to be waiting, so it answers at once; the
        # short timeout bounds how long a pull that lost them to another replica can hold a late one.
        self._batch_fetch_timeout = min(batch_fetch_timeout, fetch_timeout)
        # With a backlog, wait until this many slots are free before fetching: fewer, fuller fetches.
        self._min_fetch = max(1, min(min_fetch, max_in_flight, max_batch))
        self._backlog = False
        self._pending = 0  # messages the consumer had waiting at the last delivery
        self._tasks: dict[asyncio.Task[None], Msg] = {}  # work in flight and its message
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop_done = asyncio.Event()
        self._sub: JetStreamContext.PullSubscription | None = None

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def stop(self) -> None:
        """Stop fetching; work in flight goes on until :meth:`drain`."""
        self._stopping.set()
        self._slot_freed.set()

    async def run(self) -> None:
        """Fetch and dispatch until :meth:`stop` is called. Survives NATS outages.

        A long poll under way when :meth:`stop` is called is woken (see the module's docstring);
        a batch fetch returns within its short timeout.  What either brought is NAKed at once.
        """
        try:
            self._sub = await self._bus.js.pull_subscribe_bind(self._durable, stream=self._stream)
            await self._fetch_loop()
        finally:
            self._loop_done.set()

    async def _fetch_loop(self) -> None:
        assert self._sub is not None
        backoff = 0.1
        while not self._stopping.is_set():
            free = self._max_in_flight - len(self._tasks)
            # With a backlog, wait for enough free slots to make a full pull (or take all that waits).
            if free < (min(self._min_fetch, self._pending) if self._backlog else 1):
                await self._wait_for_slot()
                continue
            want = min(free, self._max_batch, self._pending) if self._backlog else 1
            timeout = self._batch_fetch_timeout if want > 1 else self._fetch_timeout
            try:
                msgs = await self._fetch(want, timeout)
            except (NatsTimeoutError, TimeoutError):
                # An empty stream answers with a timeout; that is normal (nats-py raises its own
                # TimeoutError from a single fetch and asyncio's from a batch fetch that found nothing).
                self._backlog = False
                continue
            except UNAVAILABLE_ERRORS as exc:
                log.warning("fetch failed, retrying", extra={"error": type(exc).__name__})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            except APIError as exc:
                # A status instead of messages: 503 while the consumer has no leader (a cluster node
                # lost, an election under way), or another refusal.  The loop must outlive it.
                log.warning("fetch refused, retrying", extra={"error": type(exc).__name__, "status": exc.code})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.1
            self._pending = _pending_after(msgs[-1]) if msgs else 0
            self._backlog = self._pending > 0
            for msg in msgs:
                if self._stopping.is_set():
                    await _nak_quietly(msg)
                    continue
                task = asyncio.create_task(self._handle(msg))
                self._tasks[task] = msg
                task.add_done_callback(self._task_done)

    async def _fetch(self, want: int, timeout: float) -> list[Msg]:
        """``fetch``, except that :meth:`stop` wakes a single-message long poll (it then returns what it took)."""
        assert self._sub is not None
        if want > 1:
            return await self._sub.fetch(batch=want, timeout=timeout)
        fetch = asyncio.ensure_future(self._sub.fetch(batch=1, timeout=timeout))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not fetch.done():
                fetch.cancel()
        # Cancelled, the poll may still end with the message it had taken (a cancellation can be lost
        # on Python 3.11): it is returned, and the loop NAKs it since it is stopping.
        done = await asyncio.gather(fetch, return_exceptions=True)
        if isinstance(done[0], list):
            return done[0]
        if isinstance(done[0], asyncio.CancelledError):
            return []
        raise done[0]

    async def drain(self, grace_seconds: float) -> None:
        """Release everything this replica holds or has pulled, finishing what it can within the grace.

        Fetching stops; messages pulled but not started are NAKed at once; work in
        flight gets up to ``grace_seconds`` to finish; what remains is cancelled and
        NAKed, so another replica takes it at once instead of after ``ack_wait``.
        """
        self.stop()
        await wait_at_most(self._loop_done, self._fetch_timeout + 2.0)
        await self._nak_buffered()
        # Unsubscribe before the grace: the server then hands a woken poll's pull nothing more, and
        # work in flight still acks (an ack goes to the message's reply subject, not through this one).
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:
                log.debug("unsubscribe failed", exc_info=True)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace_seconds)
            if pending:
                log.info("grace over: cancelling work in flight", extra={"tasks": len(pending)})
                await self._cancel(pending)

    async def _cancel(self, tasks: set[asyncio.Task[None]]) -> None:
        """Cancel until the tasks end, for at most ``CANCEL_ROUNDS`` rounds; then NAK what still runs."""
        pending = await cancel_until_done(tasks, every=CANCEL_WAIT_SECONDS, rounds=CANCEL_ROUNDS)
        if not pending:
            return
        for task in pending:
            msg = self._tasks.get(task)
            if msg is not None:
                await _nak_quietly(msg)
        log.error("work in flight left running; its messages were released", extra={"tasks": len(pending)})

    async def _nak_buffered(self) -> None:
        """Messages the server delivered after the last fetch returned wait in the subscription: NAK them."""
        sub = self._sub
        if sub is None or not self._loop_done.is_set():
            return
        try:
            waiting = sub.pending_msgs
            if waiting > 0:
                msgs = await sub.fetch(batch=waiting + 1, timeout=0.2)
                for msg in msgs:
                    await _nak_quietly(msg)
                log.info("drain: released messages delivered after the last fetch", extra={"messages": len(msgs)})
        except Exception:
            log.debug("could not release buffered messages", exc_info=True)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        self._slot_freed.set()

    async def _wait_for_slot(self) -> None:
        # One event for all tasks: O(1) per completion, however many are in flight.
        self._slot_freed.clear()
        try:
            await asyncio.wait_for(self._slot_freed.wait(), timeout=1.0)
        except TimeoutError:
            self._backlog = False  # work is slow to finish: take what is free rather than wait longer

    async def _handle(self, msg: Msg) -> None:
        try:
            await self._handler(msg)
        except asyncio.CancelledError:
            await _nak_quietly(msg)
            raise
        except Exception:
            log.exception("handler failed; message will be redelivered")
            await _nak_quietly(msg)


def _pending_after(msg: Msg) -> int:
    """How many more messages the consumer had waiting when ``msg`` was delivered."""
    try:
        return int(msg.metadata.num_pending or 0)
    except Exception:  # noqa: BLE001 - not a JetStream reply subject
        return 1  # unknown: assume a backlog; a batch pull that finds less just returns what it finds


async def _nak_quietly(msg: Msg) -> None:
    try:
        await msg.nak()
    except Exception:
        log.debug("nak failed", exc_info=True)
