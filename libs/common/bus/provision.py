"""Provisioning: create or update what the platform keeps in JetStream, or check that it is there.

One code path.  :func:`provision` creates or updates every stream of
:func:`~libs.common.bus.streams.platform_streams` and the durable consumers it is given;
the provisioning step (``python -m deploy.provision``: the Kubernetes migrate Job as
``provisioner``, ``make up`` as ``admin``) and a service allowed to do it itself
(``IPAAS_NATS_PROVISION=true``, for development and tests against an open NATS) both call it.

Invariants:
- Idempotent, and safe while services run: a stream is created, else updated in place.  A
  stream whose retention cannot change raises :class:`StreamConflict` saying how to move on.
- A service never creates or updates anything unless its settings say ``provision``.  Without
  it, it only reads ``STREAM.INFO`` / ``CONSUMER.INFO`` of what it needs (:class:`Needs`), which
  is all the permission table (:mod:`libs.common.bus.permissions`) grants it besides its run-time
  subjects.
- Until everything it needs exists, :class:`ProvisionGate` is not ready (readiness answers
  503), retries with backoff, and logs what is missing and the command that creates it; the
  process does not exit, so an orchestrator does not crash-loop it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from nats.js.errors import APIError, NotFoundError

from libs.common.bus.client import UNAVAILABLE_ERRORS, Bus
from libs.common.bus.errors import BusError, NotProvisioned, StreamConflict
from libs.common.bus.streams import ConsumerSpec, platform_streams
from libs.common.tasks import cancel_and_wait

log = logging.getLogger(__name__)

HINT = (
    "run `python -m deploy.provision` with a provisioning NATS identity "
    "(Kubernetes: the ipaas-migrate Job; `make up` runs it as admin)"
)
# What a start-up attempt may meet that a later attempt can get past.
RETRYABLE: tuple[type[BaseException], ...] = (NotProvisioned, APIError, *UNAVAILABLE_ERRORS)
_PROVISION_FAILED: tuple[type[BaseException], ...] = (BusError, *RETRYABLE)


@dataclass(frozen=True, slots=True)
class Needs:
    """What one service uses in JetStream: streams by name, and the durable consumers it reads."""

    streams: tuple[str, ...]
    consumers: tuple[ConsumerSpec, ...] = ()


async def provision(bus: Bus, consumers: Sequence[ConsumerSpec] = ()) -> list[str]:
    """Create or update every platform stream, then ``consumers``; returns what it touched."""
    await bus.ensure_streams()
    done = [f"stream {spec.name}" for spec in platform_streams(bus.settings)]
    for c in consumers:
        await bus.ensure_consumer(
            c.stream,
            c.durable,
            max_ack_pending=c.max_ack_pending,
            ack_wait_seconds=c.ack_wait_seconds,
            max_deliver=c.max_deliver,
        )
        done.append(f"consumer {c.stream}/{c.durable}")
    return done


async def missing(bus: Bus, needs: Needs) -> list[str]:
    """What of ``needs`` is absent (or a stream with the wrong retention); empty when all is there.

    A consumer whose values differ from the spec counts as present (it works); the difference is
    logged, since only the provisioning step applies new values.
    """
    specs = {s.name: s for s in platform_streams(bus.settings)}
    gaps: list[str] = []
    for name in needs.streams:
        try:
            info = await bus.js.stream_info(name)
        except NotFoundError:
            gaps.append(f"stream {name}")
            continue
        wanted = specs.get(name)
        if wanted is not None and info.config.retention != wanted.retention:
            gaps.append(f"stream {name} (retention {_text(info.config.retention)}, needs {_text(wanted.retention)})")
    for c in needs.consumers:
        try:
            consumer = await bus.js.consumer_info(c.stream, c.durable)
        except NotFoundError:
            gaps.append(f"consumer {c.stream}/{c.durable}")
            continue
        if consumer.config is not None and (diff := c.differences(consumer.config)):
            log.warning(
                "consumer settings differ from this process's; the provisioning step applies them",
                extra={"consumer": f"{c.stream}/{c.durable}", "server_vs_wanted": diff, "hint": HINT},
            )
    return gaps


def _text(value: object) -> str:
    return str(getattr(value, "value", value))


async def ensure_needs(bus: Bus, needs: Needs) -> None:
    """One start-up attempt: provision (``settings.provision``) or check; raises when not there yet.

    Raises :class:`StreamConflict` (needs an operator), :class:`NotProvisioned` naming what is
    missing, or a NATS error (not reachable, JetStream not ready): the caller retries the latter two.
    """
    if bus.settings.provision:
        try:
            await provision(bus, needs.consumers)
            return
        except StreamConflict:
            raise
        except _PROVISION_FAILED as exc:
            # No permission looks like a timeout here (nats-server drops the request): say so.
            log.warning(
                "provisioning at start-up failed (IPAAS_NATS_PROVISION=true); checking whether "
                "it is provisioned already",
                extra={"error": type(exc).__name__},
            )
    gaps = await missing(bus, needs)
    if gaps:
        log.warning(
            "NATS streams or consumers not provisioned yet; waiting for them",
            extra={"missing": ", ".join(gaps), "hint": HINT},
        )
        raise NotProvisioned(gaps)


class ProvisionGate:
    """A service's start-up step for JetStream, with a readiness check.

    :meth:`start` makes one attempt at once (so a provisioned system starts as before); if what
    the service needs is not there yet, a background task retries until it is.  Work that needs
    it runs through :meth:`then`.
    """

    def __init__(self, bus: Bus, needs: Needs, *, retry_max_seconds: float = 5.0) -> None:
        self._bus = bus
        self._needs = needs
        self._retry_max = retry_max_seconds
        self._done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Raises only :class:`StreamConflict`; anything else is retried in the background."""
        if not await self._attempt():
            self._task = asyncio.create_task(self._retry(), name="nats-provisioning")

    async def ready(self) -> bool:
        return self._done.is_set()

    async def then(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` once everything is there."""
        await self._done.wait()
        await work()

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _attempt(self) -> bool:
        try:
            await ensure_needs(self._bus, self._needs)
        except RETRYABLE as exc:
            if not isinstance(exc, NotProvisioned):
                log.warning("checking NATS streams failed; retrying", extra={"error": type(exc).__name__})
            return False
        self._done.set()
        return True

    async def _retry(self) -> None:
        delay = 0.5
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max)
            try:
                if await self._attempt():
                    log.info("NATS streams and consumers found; starting")
                    return
            except StreamConflict:
                log.exception("a NATS stream needs an operator; still not ready")
                delay = self._retry_max
