"""Many JetStream publishes at once: send them all, collect the PubAcks as they come.

``JetStreamContext.publish`` (and :meth:`Bus.publish`) sends one message and awaits
its PubAck, so a caller with ten thousand messages to store either waits ten
thousand round trips or keeps ten thousand tasks.  Here every message goes out
with its own reply subject under one inbox subscription, with at most ``window``
PubAcks outstanding; each PubAck is matched to its message when it arrives and
reported through a callback.  No task per message, no timer per message: one
deadline covers whatever is outstanding.

Each message gets the same answer :meth:`Bus.publish` would give: a
:class:`PublishResult`, or a :class:`BusUnavailable` (not connected, a timeout,
no stream) or a :class:`PublishRejected` subclass from the PubAck's ``error``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from libs.common.bus.errors import BusError, BusUnavailable, rejection, send_failure
from libs.common.bus.results import PublishResult

# PubAck status header nats-server sets when no stream listens on the subject.
_STATUS = "Status"
_NO_RESPONDERS = "503"


@dataclass(frozen=True, slots=True)
class Outgoing:
    subject: str
    payload: bytes
    headers: dict[str, str]


Outcome = PublishResult | BusError
OnOutcome = Callable[[int, Outcome], None]


class _Batch:
    __slots__ = ("done", "messages", "on_outcome", "outstanding", "room", "window")

    def __init__(self, messages: Sequence[Outgoing], on_outcome: OnOutcome, window: int) -> None:
        self.messages = messages
        self.on_outcome = on_outcome
        self.window = window
        self.outstanding: dict[str, int] = {}  # reply token -> message index
        self.room = asyncio.Event()  # set when fewer than ``window`` are outstanding
        self.done = asyncio.Event()  # set when none is outstanding

    def settle(self, token: str, msg: Msg) -> None:
        index = self.outstanding.pop(token, None)
        if index is None:
            return  # answered after its deadline: already reported as a timeout
        left = len(self.outstanding)
        if left == self.window - 1:
            self.room.set()
        if not left:
            self.done.set()
        self.on_outcome(index, pub_ack_outcome(self.messages[index].subject, msg))

    def fail_outstanding(self, error: BusError) -> None:
        pending, self.outstanding = self.outstanding, {}
        self.room.set()
        self.done.set()
        for index in pending.values():
            self.on_outcome(index, error)


class BatchPublisher:
    """One reply subscription (made on first use) shared by every batch of one connection."""

    def __init__(self, nc: NatsClient, timeout_seconds: float) -> None:
        self._nc = nc
        self._timeout = timeout_seconds
        self._prefix = ""
        self._tokens = itertools.count()
        self._batches: dict[str, _Batch] = {}  # reply token -> its batch
        self._lock = asyncio.Lock()

    async def _subscribe(self) -> None:
        async with self._lock:
            if not self._prefix:
                prefix = self._nc.new_inbox()
                await self._nc.subscribe(f"{prefix}.*", cb=self._on_ack)
                self._prefix = prefix

    async def _on_ack(self, msg: Msg) -> None:
        token = msg.subject.rpartition(".")[2]
        batch = self._batches.pop(token, None)
        if batch is not None:
            batch.settle(token, msg)

    async def publish(self, messages: Sequence[Outgoing], on_outcome: OnOutcome, *, window: int) -> None:
        """Publish ``messages``; ``on_outcome(index, outcome)`` is called once per message.

        Returns when every message has its outcome.  At most ``window`` PubAcks are
        awaited at a time; a PubAck not back within the publish timeout (counted from
        the last progress) is reported as :class:`BusUnavailable`.
        """
        if not messages:
            return
        if not self._prefix:
            try:
                await self._subscribe()
            except Exception as exc:  # noqa: BLE001 - NATS away: every message fails alike
                error = BusUnavailable(f"publish failed: {type(exc).__name__}")
                for i in range(len(messages)):
                    on_outcome(i, error)
                return
        batch = _Batch(messages, on_outcome, max(1, window))
        try:
            for index, out in enumerate(messages):
                while len(batch.outstanding) >= batch.window:
                    await self._wait(batch, batch.room)
                await self._send(batch, index, out)
            if batch.outstanding:
                await self._wait(batch, batch.done)
        finally:
            # Cancelled (a shutdown): forget the tokens; late PubAcks are ignored.
            for token in batch.outstanding:
                self._batches.pop(token, None)

    async def _send(self, batch: _Batch, index: int, out: Outgoing) -> None:
        if not self._nc.is_connected:
            batch.on_outcome(index, BusUnavailable(f"publish to {out.subject} failed: not connected to NATS"))
            return
        token = format(next(self._tokens), "x")
        batch.outstanding[token] = index
        self._batches[token] = batch
        try:
            await self._nc.publish(out.subject, out.payload, reply=f"{self._prefix}.{token}", headers=out.headers)
        except Exception as exc:  # noqa: BLE001 - one refused send fails that message only
            self._batches.pop(token, None)
            batch.outstanding.pop(token, None)
            batch.on_outcome(index, send_failure(out.subject, exc))

    async def _wait(self, batch: _Batch, event: asyncio.Event) -> None:
        """Wait for ``event`` (cleared first); past the publish timeout, what is outstanding fails."""
        event.clear()
        try:
            async with asyncio.timeout(self._timeout):
                await event.wait()
        except TimeoutError:
            for token in batch.outstanding:
                self._batches.pop(token, None)
            batch.fail_outstanding(BusUnavailable("no PubAck within the publish timeout"))


def pub_ack_outcome(subject: str, msg: Msg) -> Outcome:
    """What a PubAck says: the :class:`PublishResult`, or the :class:`BusUnavailable` to raise."""
    if msg.headers and msg.headers.get(_STATUS) == _NO_RESPONDERS:
        return BusUnavailable(f"publish to {subject} failed: NoStreamResponseError")
    try:
        ack = orjson.loads(msg.data)
    except orjson.JSONDecodeError:
        return BusUnavailable(f"publish to {subject} got an unreadable acknowledgement")
    if "error" in ack:
        return rejection(subject, ack["error"])
    return PublishResult(
        stream=ack.get("stream", ""), seq=int(ack.get("seq", 0)), duplicate=bool(ack.get("duplicate", False))
    )
