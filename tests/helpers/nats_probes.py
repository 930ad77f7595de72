"""Asking a secured NATS for what an identity must not do, and seeing nats-server refuse it.

nats-server drops a publish (or a subscription) outside a user's permissions and tells the
client with ``-ERR 'Permissions Violation ...'``, which nats-py hands to ``error_cb``: a
refused JetStream API request therefore gets no answer, and the error names its subject.
A probe counts as refused only when both happen, so a request that simply timed out does
not pass for a refusal.  The same probes, sent as ``admin``, are answered: see
:func:`answered`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import nats
from nats.aio.client import Client

from tests.helpers.wait import wait_until

API = "$JS.API"
ATTACK_STREAM = "SNOOP"


def _violation(errors: list[str], kind: str, subject: str) -> bool:
    wanted = f'{kind} to "{subject}"'.lower()
    return any("permissions violation" in e.lower() and wanted in e.lower() for e in errors)


async def _reported(errors: list[str], kind: str, subjects: list[str]) -> None:
    """Until every one of ``subjects`` has its permissions violation in ``errors`` (at most 5 s; no error then)."""
    with contextlib.suppress(AssertionError):
        await wait_until(lambda: all(_violation(errors, kind, s) for s in subjects), timeout=5, message=kind)


async def _unanswered(nc: Client, subject: str, body: bytes) -> bool:
    try:
        await nc.request(subject, body, timeout=0.5)
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
        return True
    return False


async def refused_requests(nc: Client, errors: list[str], requests: dict[str, bytes]) -> list[str]:
    """The subjects of ``requests`` the server did NOT refuse (empty: every one was refused).

    Refused means: no answer came, and a permissions violation naming the subject was reported.
    """
    unanswered = await asyncio.gather(*(_unanswered(nc, s, b) for s, b in requests.items()))
    quiet = [s for s, q in zip(requests, unanswered, strict=True) if q]
    await _reported(errors, "publish", quiet)
    return [s for s in requests if s not in quiet or not _violation(errors, "publish", s)]


async def refused_subscriptions(nc: Client, errors: list[str], subjects: list[str]) -> list[str]:
    """The ``subjects`` the server let this connection subscribe to (empty: all refused)."""
    for subject in subjects:
        await nc.subscribe(subject)
    await nc.flush()
    await _reported(errors, "subscription", subjects)
    return [s for s in subjects if not _violation(errors, "subscription", s)]


async def answered(nc: Client, subject: str, body: bytes = b"") -> dict[str, Any]:
    """A JetStream API answer (to an identity allowed to ask), as JSON."""
    return dict(json.loads((await nc.request(subject, body, timeout=5)).data))


def _body(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode()


def management_probes(victim_inbox: str) -> dict[str, bytes]:
    """Create or change streams and consumers, including the attack: a stream capturing ``victim_inbox``."""
    capture = {"name": ATTACK_STREAM, "subjects": [f"{victim_inbox}.>"], "storage": "memory"}
    widened = {"name": "EVENTS", "subjects": ["events.>", f"{victim_inbox}.>"], "retention": "workqueue"}
    consumer = {"ack_policy": "explicit", "max_ack_pending": 1}
    return {
        f"{API}.STREAM.CREATE.{ATTACK_STREAM}": _body(capture),
        f"{API}.STREAM.UPDATE.EVENTS": _body(widened),
        f"{API}.STREAM.DELETE.EVENTS": b"",
        f"{API}.STREAM.PURGE.EVENTS": b"",
        f"{API}.CONSUMER.DURABLE.CREATE.EVENTS.executor": _body(
            {"stream_name": "EVENTS", "config": {**consumer, "durable_name": "executor"}}
        ),
        f"{API}.CONSUMER.CREATE.EVENTS.executor": _body(
            {"stream_name": "EVENTS", "config": {**consumer, "name": "executor"}}
        ),
        f"{API}.CONSUMER.DELETE.EVENTS.executor": b"",
        f"{API}.CONSUMER.DURABLE.CREATE.WORKFLOW_CHANGES.mine": _body(
            {"stream_name": "WORKFLOW_CHANGES", "config": {**consumer, "durable_name": "mine"}}
        ),
    }


def reading_probes(streams: list[str]) -> dict[str, bytes]:
    """Get messages of, or create a consumer on, each of ``streams``, or take the executor's work."""
    probes: dict[str, bytes] = {}
    for stream in streams:
        probes[f"{API}.STREAM.MSG.GET.{stream}"] = _body({"seq": 1})
        probes[f"{API}.DIRECT.GET.{stream}"] = _body({"seq": 1})
        probes[f"{API}.CONSUMER.CREATE.{stream}"] = _body({"stream_name": stream, "config": {"ack_policy": "none"}})
        probes[f"{API}.CONSUMER.CREATE.{stream}.peek"] = _body(
            {"stream_name": stream, "config": {"name": "peek", "ack_policy": "none"}}
        )
    probes[f"{API}.CONSUMER.MSG.NEXT.EVENTS.executor"] = _body({"batch": 1, "expires": 100_000_000})
    probes["$JS.ACK.EVENTS.executor.1.1.1.1.0"] = b"+TERM"
    return probes
