"""A NATS connection that never gives up, with JetStream publish and stream/consumer management.

Servers: ``NATS_URL`` is one URL or a seed list (several, comma-separated: the servers of a
cluster); see :mod:`libs.common.bus.seeds`.  The client starts from a random seed, learns the
cluster's other servers from it, and on losing its server reconnects to any live one, seeds
and announced servers alike, with the same identity.

TLS: a ``tls://`` ``NATS_URL`` connects over TLS and verifies the server's
certificate and name; nats-py would trust the system's CAs only, so
``IPAAS_NATS_TLS_CA_FILE`` names the CA (bundle) of a private one, such as the
cluster's issuer in Kubernetes, for this connection alone (``SSL_CERT_FILE`` would
change it for every outgoing HTTPS call of the process as well).

The only door: services reach NATS through this class alone (publish, request and
respond, core and queue-group subscriptions, ordered change feeds, stream and consumer
info, reconnect listeners; pull consumers in :mod:`libs.common.bus.consumer`), so the
trace context and headers are set in one place.  ``nc`` and ``js`` stay public for
tests and tools; ``tests/unit/test_bus_only_door.py`` fails if a module outside this
package imports nats-py or reaches for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import ssl
from collections.abc import Sequence
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError, NoRespondersError, NoServersError, OutboundBufferLimitError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import NoStreamResponseError
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from libs.common.bus.batch import BatchPublisher, OnOutcome, Outgoing, pub_ack_outcome
from libs.common.bus.errors import (
    CLIENT_REFUSALS,
    BusMisconfigured,
    BusUnavailable,
    MessageTooLarge,
    NoResponders,
    RequestTimeout,
    StreamConflict,
    send_failure,
)
from libs.common.bus.messages import ConsumerInfo, MessageHandler, ReconnectListener, StreamInfo, Subscription
from libs.common.bus.reconnects import ReconnectListeners
from libs.common.bus.results import PublishResult
from libs.common.bus.seeds import parse_seed_list, redact
from libs.common.bus.streams import StreamSpec, platform_streams
from libs.common.bus.tracing import TRACER_NAME as PRODUCER_TRACER
from libs.common.bus.tracing import StreamNames, extracted, link_reply, producer_span, request_span
from libs.common.bus.wire import message_size
from libs.common.models.events import EventEnvelope, WireEvent, envelope_json
from libs.common.settings import NatsSettings
from libs.common.telemetry import ActiveSpan, root_traceparent

log = logging.getLogger(__name__)

MSG_ID_HEADER = "Nats-Msg-Id"
TRACEPARENT = "traceparent"

# Errors that mean "the server is not reachable right now".
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    NatsTimeoutError,
    asyncio.TimeoutError,
    ConnectionClosedError,
    NoServersError,
    NoStreamResponseError,
    OutboundBufferLimitError,
    ConnectionError,
    OSError,
)
# Errors of a send: the server is away, or the client refused the message (see send_failure).
SEND_ERRORS: tuple[type[BaseException], ...] = (*UNAVAILABLE_ERRORS, *CLIENT_REFUSALS)


class Bus:
    """One NATS connection per process, with unlimited reconnects.

    nats-py gives up after about two minutes by default; here the client
    reconnects forever, and the initial connect also retries until the
    server answers, so a service can start before NATS does.
    """

    def __init__(self, nc: NatsClient, settings: NatsSettings, *, reconnects: ReconnectListeners | None = None) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=settings.publish_timeout_seconds)
        self.settings = settings
        self.streams = StreamNames(settings)
        self._batches = BatchPublisher(nc, settings.publish_timeout_seconds)
        # Called by the client on every reconnect when the bus was made by :meth:`connect`.
        self._reconnects = reconnects if reconnects is not None else ReconnectListeners()

    @classmethod
    async def connect(
        cls,
        settings: NatsSettings,
        *,
        name: str = "ipaas",
        connect_deadline_seconds: float | None = None,
        user: str | None = None,
        password: str | None = None,
        inbox_prefix: str | None = None,
    ) -> Bus:
        loop = asyncio.get_running_loop()
        deadline = None if connect_deadline_seconds is None else loop.time() + connect_deadline_seconds
        delay = 0.2
        tls = tls_context(settings)
        seeds = parse_seed_list(settings.url)
        if user is None and password is None:
            user, password = seeds.user, seeds.password
        reconnects = ReconnectListeners()
        while True:
            nc = NatsClient()
            # A per-identity inbox prefix lets NATS authorization keep replies private.
            extra: dict[str, Any] = {"inbox_prefix": inbox_prefix} if inbox_prefix else {}
            if tls is not None:
                extra["tls"] = tls
            if seeds.token is not None:
                extra["token"] = seeds.token
            try:
                connecting = nc.connect(
                    servers=list(seeds.servers),
                    name=name,
                    user=user,
                    password=password,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=1,
                    connect_timeout=2,
                    ping_interval=5,
                    max_outstanding_pings=3,
                    error_cb=_on_error,
                    disconnected_cb=_on_disconnect,
                    reconnected_cb=reconnects.fire,
                    **extra,
                )
                if deadline is None:
                    await connecting
                else:
                    # nats-py retries a server that answers but refuses (a TLS certificate it cannot
                    # verify, say) for ever: the deadline bounds that too.
                    await asyncio.wait_for(connecting, timeout=max(0.1, deadline - loop.time()))
                return cls(nc, settings, reconnects=reconnects)
            except (TimeoutError, NoServersError, OSError, NatsTimeoutError) as exc:
                if not nc.is_closed:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(nc.close(), timeout=2)
                if deadline is not None and loop.time() + delay > deadline:
                    raise BusUnavailable(f"cannot reach NATS at {redact(settings.url)}") from exc
                log.warning("nats not reachable, retrying", extra={"retry_in_s": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    @property
    def is_connected(self) -> bool:
        return bool(self.nc.is_connected)

    @property
    def max_payload(self) -> int:
        """The largest message (headers and payload) the server accepts, as it announced on connect."""
        return int(self.nc.max_payload)

    def on_reconnect(self, listener: ReconnectListener) -> None:
        """Await ``listener()`` after every reconnect, in the order added; one that raises is logged."""
        self._reconnects.add(listener)

    async def subscribe(
        self, subject: str, cb: MessageHandler, *, queue: str | None = None, pending_msgs_limit: int | None = None
    ) -> Subscription:
        """A core NATS subscription (one of ``queue``'s members when given): ``cb`` gets each message.

        ``pending_msgs_limit`` bounds the messages waiting for ``cb`` (nats-py's default when ``None``).
        """
        if pending_msgs_limit is None:
            return await self.nc.subscribe(subject, queue=queue or "", cb=cb)
        return await self.nc.subscribe(subject, queue=queue or "", cb=cb, pending_msgs_limit=pending_msgs_limit)

    async def subscribe_ordered(
        self, subject: str, cb: MessageHandler, *, stream: str, idle_heartbeat: float = 2.0
    ) -> Subscription:
        """An ordered push consumer on ``stream`` for new messages only (every subscriber sees every one).

        nats-py recreates it after a gap or missed heartbeats, resuming after the last sequence delivered.
        """
        return await self.js.subscribe(
            subject,
            stream=stream,
            cb=cb,
            ordered_consumer=True,
            idle_heartbeat=idle_heartbeat,
            deliver_policy=js_api.DeliverPolicy.NEW,
        )

    async def stream_info(self, name: str, *, subjects_filter: str | None = None) -> StreamInfo:
        """``STREAM.INFO``: the stream's config and state (with its subjects matching ``subjects_filter``)."""
        return await self.js.stream_info(name, subjects_filter=subjects_filter)

    async def consumer_info(self, stream: str, durable: str) -> ConsumerInfo:
        """``CONSUMER.INFO`` of a durable consumer."""
        info: ConsumerInfo = await self.js.consumer_info(stream, durable)
        return info

    async def ensure_streams(self) -> None:
        """Create or update EVENTS, DLQ and WORKFLOW_CHANGES. Safe to run from every replica.

        Only an identity allowed to manage streams may call this (the provisioning step, or a
        service with ``IPAAS_NATS_PROVISION=true``); see :mod:`libs.common.bus.provision`.
        """
        for spec in platform_streams(self.settings):
            await self.ensure_stream(spec)

    async def ensure_stream(self, spec: StreamSpec) -> None:
        config = js_api.StreamConfig(
            name=spec.name,
            subjects=list(spec.subjects),
            retention=spec.retention,
            discard=spec.discard,
            storage=js_api.StorageType.FILE,
            duplicate_window=spec.duplicate_window,
            num_replicas=self.settings.replicas,
            max_age=spec.max_age,
            max_bytes=spec.max_bytes,
        )
        try:
            await self.js.add_stream(config)
        except nats.js.errors.BadRequestError as exc:
            # 10058: a stream with this name exists with another config; update it.
            if exc.err_code != 10058:
                raise
            try:
                await self.js.update_stream(config)
            except nats.js.errors.APIError as update_exc:
                existing = await self.js.stream_info(spec.name)
                if existing.config.retention != spec.retention:
                    has = getattr(existing.config.retention, "value", existing.config.retention)
                    raise StreamConflict(
                        f"stream {spec.name} exists with retention {has}, "
                        f"this version needs {spec.retention.value}: drain it (let the consumers empty it), delete it "
                        f"(`nats stream rm {spec.name}`) and start again"
                    ) from update_exc
                raise

    async def ensure_consumer(
        self,
        stream: str,
        durable: str,
        *,
        max_ack_pending: int = 1024,
        ack_wait_seconds: float = 30.0,
        max_deliver: int = 20,
    ) -> None:
        """Create or update a durable pull consumer (explicit ack). Idempotent.

        The defaults are for tools and tests; the executor's consumer takes its values from
        ``ExecutorSettings`` (``services/executor/provisioning.py``), the only settings that shape it.
        """
        config = js_api.ConsumerConfig(
            durable_name=durable,
            ack_policy=js_api.AckPolicy.EXPLICIT,
            deliver_policy=js_api.DeliverPolicy.ALL,
            max_ack_pending=max_ack_pending,
            ack_wait=ack_wait_seconds,
            max_deliver=max_deliver,
            max_waiting=512,
        )
        await self.js.add_consumer(stream, config)

    async def publish(
        self,
        subject: str,
        payload: bytes,
        *,
        msg_id: str | None = None,
        timeout: float | None = None,
    ) -> PublishResult:
        """Publish to JetStream and wait for the PubAck, inside a PRODUCER ``publish <stream>`` span.

        Adds ``Nats-Msg-Id`` and the span's W3C trace context (so a message
        published outside any span starts its own trace here).  Returns
        whether the server called the message a duplicate, and the trace id
        when the span is sampled.  Raises :class:`BusUnavailable` if NATS
        cannot store it now.
        """
        hdrs = {} if msg_id is None else {MSG_ID_HEADER: msg_id}
        span = producer_span(self.streams.of(subject), subject, msg_id)
        return await self._publish_in(span, subject, payload, hdrs, timeout=timeout)

    async def publish_event(self, event: EventEnvelope | WireEvent, *, timeout: float | None = None) -> PublishResult:
        """Publish one event to EVENTS, its JSON written by :func:`~libs.common.models.events.envelope_json`.

        As :meth:`publish`, with the event's subject and ``Nats-Msg-Id``; the result also
        carries the ``traceparent`` sent (for a response header).  Raises
        :class:`MessageTooLarge` before sending when the message with its headers is over
        :attr:`max_payload` (sent anyway, the server would reset the shared connection).
        """
        wire = event if isinstance(event, WireEvent) else event.wire()
        subject, msg_id = wire.subject, wire.msg_id
        tp = root_traceparent(PRODUCER_TRACER)
        if tp is not None:
            # Nothing records and nothing is current: the PRODUCER span would be a bare new root,
            # so its traceparent is sent without making the span (the same headers, for less work).
            headers = {MSG_ID_HEADER: msg_id, TRACEPARENT: tp}
            payload = envelope_json(wire)
            size = message_size(payload, headers)
            if size > self.nc.max_payload:
                raise MessageTooLarge(subject, size=size, limit=self.nc.max_payload)
            result = await self.publish_prepared(subject, payload, headers, timeout=timeout)
            return PublishResult(result.stream, result.seq, result.duplicate, None, tp)
        span = producer_span(self.streams.of(subject), subject, msg_id)
        return await self._publish_in(
            span, subject, envelope_json(wire), {MSG_ID_HEADER: msg_id}, timeout=timeout, check_size=True
        )

    async def _publish_in(
        self,
        span: trace.Span,
        subject: str,
        payload: bytes,
        headers: dict[str, str],
        *,
        timeout: float | None,
        check_size: bool = False,
    ) -> PublishResult:
        """Publish inside ``span``, whose context goes into ``headers`` (in place); the result names its trace."""
        with ActiveSpan(span):
            propagate.inject(headers)
            if check_size:
                size = message_size(payload, headers)
                if size > self.nc.max_payload:
                    raise MessageTooLarge(subject, size=size, limit=self.nc.max_payload)
            result = await self.publish_prepared(subject, payload, headers, timeout=timeout)
        context = span.get_span_context()
        trace_id = format(context.trace_id, "032x") if context.trace_flags.sampled else None
        return PublishResult(result.stream, result.seq, result.duplicate, trace_id, headers.get("traceparent"))

    async def publish_continued(
        self, subject: str, payload: bytes, headers: dict[str, str], *, timeout: float | None = None
    ) -> PublishResult:
        """Publish a stored message whose ``headers`` hold the trace context it was stored under.

        For messages put back later (parked events, outbox rows): the PRODUCER span is a child
        of that stored context, and its own context replaces it in ``headers`` (changed in
        place), so the consumer's span continues the original trace through this publish.
        """
        stored = extracted(headers)
        span = producer_span(
            self.streams.of(subject),
            subject,
            headers.get(MSG_ID_HEADER),
            parent=stored if stored is not None else otel_context.Context(),
        )
        return await self._publish_in(span, subject, payload, headers, timeout=timeout)

    async def publish_prepared(
        self,
        subject: str,
        payload: bytes,
        headers: dict[str, str],
        *,
        timeout: float | None = None,
    ) -> PublishResult:
        """:meth:`publish` with ``headers`` sent exactly as given, for hot paths.

        The caller has already put ``Nats-Msg-Id`` and the trace context in
        ``headers`` (e.g. to reuse the ``traceparent`` in an HTTP response),
        usually inside its own :func:`~libs.common.bus.tracing.producer_span`;
        nothing is added or copied.
        """
        if not self.nc.is_connected:
            raise BusUnavailable("not connected to NATS")
        # What JetStreamContext.publish does (a request to the subject, a PubAck back), with the
        # PubAck read by orjson: the stdlib decoder and the PubAck dataclass cost more than the rest.
        try:
            msg = await self.nc.request(
                subject,
                payload,
                timeout=timeout if timeout is not None else self.settings.publish_timeout_seconds,
                headers=headers,
            )
        except NoRespondersError as exc:
            raise BusUnavailable(f"publish to {subject} failed: NoStreamResponseError") from exc
        except SEND_ERRORS as exc:
            raise send_failure(subject, exc) from exc
        outcome = pub_ack_outcome(subject, msg)
        if isinstance(outcome, PublishResult):
            return outcome
        # A BusUnavailable: unreadable, StreamFull (retry later) or MessageRejected (never as is).
        raise outcome

    async def publish_core(
        self,
        subject: str,
        payload: bytes,
        *,
        headers: dict[str, str] | None = None,
        flush: bool = True,
    ) -> None:
        """A core NATS publish (no stream, no PubAck) with the trace context, flushed to the server.

        Returns once the server has the message (a flush round trip), or, with ``flush=False``, once
        the client has buffered it (fire and forget); :class:`BusUnavailable` otherwise.
        """
        if not self.nc.is_connected:
            raise BusUnavailable("not connected to NATS")
        hdrs = dict(headers or {})
        propagate.inject(hdrs)
        try:
            await self.nc.publish(subject, payload, headers=hdrs or None)
            if flush:
                # nats-py takes whole seconds
                await self.nc.flush(timeout=max(1, math.ceil(self.settings.publish_timeout_seconds)))
        except SEND_ERRORS as exc:
            raise send_failure(subject, exc) from exc

    async def request(self, subject: str, payload: bytes, *, timeout: float) -> Msg:
        """A NATS request inside a CLIENT ``send <subject>`` span that the request's headers carry.

        The responder's span comes back in the reply's headers and is kept as a link.  Raises
        :class:`NoResponders` (nobody listens), :class:`RequestTimeout` (no reply in time) or
        :class:`BusUnavailable` (NATS away); each is a ``BusUnavailable``.
        """
        span = request_span(subject)
        with ActiveSpan(span):
            headers: dict[str, str] = {}
            propagate.inject(headers)
            try:
                reply = await self.nc.request(subject, payload, timeout=timeout, headers=headers)
            except NoRespondersError as exc:
                raise NoResponders(f"request to {subject}: no responders") from exc
            except (NatsTimeoutError, TimeoutError) as exc:
                raise RequestTimeout(f"request to {subject}: no reply within {timeout} s") from exc
            except UNAVAILABLE_ERRORS as exc:
                raise BusUnavailable(f"request to {subject} failed: {type(exc).__name__}") from exc
            link_reply(span, reply)
            return reply

    async def respond(self, msg: Msg, payload: bytes) -> None:
        """Answer a request, with the current span's trace context in the reply's headers."""
        if not msg.reply:
            return
        headers: dict[str, str] = {}
        propagate.inject(headers)
        await self.nc.publish(msg.reply, payload, headers=headers or None)

    async def publish_batch(self, messages: Sequence[Outgoing], on_outcome: OnOutcome, *, window: int) -> None:
        """Publish many messages with up to ``window`` PubAcks outstanding (see :mod:`libs.common.bus.batch`).

        ``on_outcome(index, outcome)`` is called once per message, as its PubAck arrives:
        a :class:`PublishResult`, or the :class:`BusError` :meth:`publish` would raise.
        Headers are sent as given (``Nats-Msg-Id`` and trace context included by the caller).
        """
        await self._batches.publish(messages, on_outcome, window=window)

    async def drain(self) -> None:
        """Flush pending publishes and close; never raises."""
        if self.nc.is_closed:
            return
        try:
            await self.nc.drain()
        except Exception:
            log.warning("nats drain failed; closing", exc_info=True)
            await self.nc.close()


def tls_context(settings: NatsSettings) -> ssl.SSLContext | None:
    """Certificate and host-name checks against ``IPAAS_NATS_TLS_CA_FILE``; ``None`` without one (system CAs)."""
    if not settings.tls_ca_file:
        return None
    try:
        return ssl.create_default_context(cafile=settings.tls_ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise BusMisconfigured(f"IPAAS_NATS_TLS_CA_FILE {settings.tls_ca_file}: {exc}") from exc


async def _on_error(exc: Exception) -> None:
    log.warning("nats error", extra={"error": repr(exc)})


async def _on_disconnect() -> None:
    log.warning("nats disconnected")
