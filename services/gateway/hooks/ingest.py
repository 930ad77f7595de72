"""``POST /hooks/{workflow_id}``: verify, rate-limit, publish, answer 202 after the PubAck.

Order of checks, cheapest first: the source's bad-signature bucket (429),
``Content-Length`` (413), the cached workflow (404), the body read under a
size and time limit (413/408), the signature (401, and a token from the
source's bucket), the tenant's bucket (429, only authentic traffic spends
tokens), the whole message against the server's ``max_payload`` (413), then
the publish (503 with ``Retry-After`` if JetStream did not store it, never
202: NATS away, or any PubAck error, a full stream among them).

The source is the client address behind ``IPAAS_GATEWAY_TRUSTED_PROXIES``
(IPv6 by /64).  A source that sent too many bad signatures gets 429 with
``Retry-After`` for every webhook until its bucket refills, before its body
is read or any HMAC computed; other sources are not affected, and good
signatures never spend tokens.

While Postgres is away, the cache serves known workflows stale (see
:mod:`services.gateway.hooks.cache`); a look-up it cannot answer raises,
and the error middleware turns that into 503 with ``Retry-After``.

The envelope goes to :meth:`Bus.publish_event` as a ``WireEvent`` (no model
validated), and its JSON is written by the envelope's one writer with the raw
body spliced in: a JSON payload is parsed once (to validate it) and never
re-serialised.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime

import orjson
from aiohttp import web

from libs.common.bus import BusUnavailable, MessageTooLarge
from libs.common.http.client_ip import client_key
from libs.common.http.errors import BadRequest, NotFound, PayloadTooLarge, RateLimited, ServiceUnavailable, Unauthorized
from libs.common.models.api import DEDUP_KEY_MAX
from libs.common.models.events import SCHEDULE_KEY_PREFIX, WireEvent, event_id_text
from services.gateway.body import check_length, read_raw
from services.gateway.hooks.authenticate import authenticate
from services.gateway.hooks.senders import slack_challenge
from services.gateway.hooks.signature import SignatureError
from services.gateway.keys import BAD_SIGNATURES, BUS, CACHE, LIMITER, PUBLISH_LATENCY, SETTINGS, TRUSTED_PROXIES

log = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
_NOT_FOUND = "workflow not found"
_ACCEPTED_HEADERS = {"Content-Type": "application/json"}


def _workflow_id(text: str) -> tuple[uuid.UUID, str]:
    """The path's workflow id and its canonical text; 404 when it is not a UUID."""
    try:
        parsed = uuid.UUID(text)
    except ValueError as exc:
        raise NotFound(_NOT_FOUND) from exc
    return parsed, str(parsed)


def sender_key(key: str | None) -> str | None:
    """A sender-chosen dedup key, kept apart from the scheduler's ``sched:`` namespace.

    ``msg_id_for`` uses ``sched:`` keys unscoped, so a sender must never be able to pick one.
    """
    if not key:
        return None
    if len(key) > DEDUP_KEY_MAX:
        raise BadRequest(f"dedup key is longer than {DEDUP_KEY_MAX} characters", code="invalid_dedup_key")
    return "ext:" + key if key.startswith(SCHEDULE_KEY_PREFIX) else key


def payload_json(body: bytes, content_type: str) -> bytes:
    """The payload as JSON text: the body itself if it is JSON, else the body as a JSON string.

    ``content_type`` may be the raw header (parameters are ignored); it only
    matters when the body is not JSON, so the usual request never parses it.
    """
    if not body.strip():
        return b"null"
    try:
        orjson.loads(body)
        return body
    except orjson.JSONDecodeError:
        pass
    mime = content_type.partition(";")[0].strip().lower()
    if mime == "application/json" or mime.endswith("+json"):
        raise BadRequest("request body is not valid JSON", code="invalid_json")
    try:
        return orjson.dumps(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadRequest("request body is neither JSON nor UTF-8 text", code="invalid_encoding") from exc


async def ingest(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    source = client_key(request, app[TRUSTED_PROXIES])
    bad_signatures = app[BAD_SIGNATURES]
    refused_for = bad_signatures.retry_after(source)
    if refused_for > 0:
        raise RateLimited("too many requests with bad signatures from this address", retry_after=refused_for)
    workflow_id, wid = _workflow_id(request.match_info["workflow_id"])
    limit = settings.max_body_bytes
    check_length(request, limit)
    target = await app[CACHE].get(workflow_id)
    if target is None:
        raise NotFound(_NOT_FOUND)
    body = await read_raw(request, limit, settings.body_read_timeout_seconds)
    headers = request.headers
    now = time.time()
    try:
        sender_id = authenticate(target, headers, body, now=now, tolerance=settings.webhook_tolerance_seconds)
    except SignatureError as exc:
        bad_signatures.take(source)
        if bad_signatures.retry_after(source) > 0:
            log.warning("webhook source throttled after bad signatures", extra={"source": source})
        raise Unauthorized(str(exc), code="invalid_signature") from exc
    if target.verify == "slack":
        challenge = slack_challenge(body)
        if challenge is not None:  # Slack's url_verification: answered, never published
            return web.json_response({"challenge": challenge})
    wait = app[LIMITER].acquire(target.tenant_id)
    if wait > 0:
        raise RateLimited("tenant is over its webhook rate", retry_after=wait)
    dedup_key = sender_key(sender_id) or sender_key(headers.get(IDEMPOTENCY_HEADER)) or uuid.uuid4().hex
    event_id = event_id_text(wid, dedup_key)
    event = WireEvent(
        event_id=event_id,
        dedup_key=dedup_key,
        tenant_id=str(target.tenant_id),
        workflow_id=wid,
        workflow_version=target.version,
        trigger="webhook",
        payload_json=payload_json(body, headers.get("Content-Type", "")),
        received_at=datetime.now(UTC),
    )
    started = time.perf_counter()
    result = None
    try:
        result = await app[BUS].publish_event(event, timeout=settings.publish_timeout_seconds)
    except MessageTooLarge as exc:
        # Refused before sending: sent anyway, the server would reset the connection every publish shares.
        raise PayloadTooLarge(
            "the event is over the bus's message size limit", details={"limit": exc.limit, "size": exc.size}
        ) from exc
    except BusUnavailable as exc:  # NATS away, no stream, or a PubAck error (a full stream among them)
        raise ServiceUnavailable(
            "event bus unavailable; retry later", retry_after=settings.retry_after_seconds
        ) from exc
    finally:
        app[PUBLISH_LATENCY].observe(time.perf_counter() - started, None if result is None else result.traceparent)
    out = b'{"success":true,"data":{"event_id":"%s","duplicate":%s}}' % (
        event_id.encode(),
        b"true" if result.duplicate else b"false",
    )
    tp = result.traceparent
    return web.Response(
        body=out, status=202, headers=_ACCEPTED_HEADERS if tp is None else {**_ACCEPTED_HEADERS, "traceparent": tp}
    )
