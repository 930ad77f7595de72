"""The NATS identities and what each may publish and subscribe to: one table for every deployment.

``make up`` renders it into the embedded server's ``authorization`` block
(:mod:`deploy.local.nats_authz`), the test fixture does the same, and the Kubernetes NATS
Helm values declare the same users (:mod:`deploy.k8s.nats_auth` renders and checks them).

Invariants:
- Each identity may subscribe only to its own reply inbox ``_INBOX_<identity>.>`` (and to the
  subjects of its contract), so a reply (a PubAck, a credential, a pulled message) is readable
  by the identity that asked and no other.  Services connect with that inbox prefix.
- ``svc.auth.>`` (decrypted credentials): only the executor publishes, only auth subscribes;
  auth publishes nothing but replies (``allow_responses``).
- No service may create, update or delete a stream or a durable consumer.  Each gets only the
  JetStream API subjects it uses at run time, on its own streams and consumers: stream info
  for its start-up check and gauges, and
  - executor: pull (``CONSUMER.MSG.NEXT``), ack and info of its durable consumer on EVENTS;
  - scheduler: ephemeral consumers on WORKFLOW_CHANGES only, for its ordered change feed
    (``CONSUMER.CREATE.<stream>`` with no name after it: nats-server refuses a durable name
    there), and their flow-control replies;
  - gateway and auth: no consumer at all.
  Nobody but ``admin`` may read stream messages directly (``STREAM.MSG.GET``, ``DIRECT.GET``).
- ``provisioner`` (the Kubernetes migrate Job) may create, update and inspect the platform's
  streams and its durable consumers, and nothing else: no deletes, no purges, no messages.
- ``admin`` exists only in local runs (people and tools: the ``nats`` CLI, test inspection):
  everything except the credential subject and the other identities' inboxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from libs.common.models.api import DRY_RUN_SUBJECT
from libs.common.settings import NatsSettings

SERVICES = ("auth", "gateway", "executor", "scheduler")
PROVISIONER = "provisioner"
ADMIN = "admin"
# The users a deployment (Kubernetes) declares, and the users ``make up`` creates.
IDENTITIES = (*SERVICES, PROVISIONER)
LOCAL_IDENTITIES = (*SERVICES, ADMIN)
ALL_IDENTITIES = (*SERVICES, PROVISIONER, ADMIN)

PRIVATE = "svc.auth.>"
# Where nats_publish actions send: ``out.<tenant_id>.<subject>`` (a tenant names only what follows its id).
OUTBOUND_PREFIX = "out"
# Identities that answer requests: they may publish to the requester's reply subject.
RESPONDERS = ("auth", "executor")
JS_API = "$JS.API"


def inbox_prefix(identity: str) -> str:
    return f"_INBOX_{identity}"


@dataclass(frozen=True, slots=True)
class Layout:
    """Stream, subject and consumer names the permissions are written for (the settings' defaults)."""

    events: str
    events_subjects: str
    dlq: str
    dlq_subjects: str
    changes: str
    changes_subjects: str
    consumer: str = "executor"
    dry_run_subject: str = DRY_RUN_SUBJECT

    @classmethod
    def of(cls, s: NatsSettings, *, consumer: str = "executor") -> Layout:
        return cls(
            s.events_stream,
            s.events_subjects,
            s.dlq_stream,
            s.dlq_subjects,
            s.changes_stream,
            s.changes_subjects,
            consumer,
        )

    @property
    def streams(self) -> tuple[str, str, str]:
        return self.events, self.dlq, self.changes


def default_layout() -> Layout:
    """The layout of the settings' defaults (the environment is not read)."""
    return Layout.of(NatsSettings.model_construct())


def _stream_info(*streams: str) -> list[str]:
    return [f"{JS_API}.STREAM.INFO.{s}" for s in streams]


def _jetstream(identity: str, lay: Layout) -> list[str]:
    """The JetStream API (and ack/flow-control) subjects ``identity`` publishes to."""
    durable = f"{lay.events}.{lay.consumer}"
    if identity == "gateway":
        return _stream_info(lay.events, lay.changes)
    if identity == "scheduler":
        return [
            *_stream_info(lay.events, lay.changes),
            f"{JS_API}.CONSUMER.CREATE.{lay.changes}",
            f"$JS.FC.{lay.changes}.>",
        ]
    if identity == "executor":
        return [
            *_stream_info(lay.events, lay.dlq),
            f"{JS_API}.CONSUMER.INFO.{durable}",
            f"{JS_API}.CONSUMER.MSG.NEXT.{durable}",
            f"$JS.ACK.{durable}.>",
        ]
    if identity == PROVISIONER:
        streams = [f"{JS_API}.STREAM.{verb}.{s}" for s in lay.streams for verb in ("CREATE", "UPDATE", "INFO")]
        # Both forms nats clients use to create or update a named durable consumer.
        return [
            *streams,
            f"{JS_API}.CONSUMER.DURABLE.CREATE.{durable}",
            f"{JS_API}.CONSUMER.CREATE.{durable}",
            f"{JS_API}.CONSUMER.CREATE.{durable}.>",
            f"{JS_API}.CONSUMER.INFO.{durable}",
        ]
    return []


def publish_allow(identity: str, lay: Layout) -> list[str]:
    """Subjects ``identity`` may publish to (its inbox excluded)."""
    contract: dict[str, list[str]] = {
        "auth": [],
        "gateway": [lay.events_subjects, lay.changes_subjects, lay.dry_run_subject],
        # events: parked events (retries, deferrals) go back to EVENTS when due; out: nats_publish actions.
        "executor": [PRIVATE, lay.dlq_subjects, lay.events_subjects, f"{OUTBOUND_PREFIX}.>"],
        "scheduler": [lay.events_subjects],
        PROVISIONER: [],
        ADMIN: [">"],
    }
    return [*contract[identity], *_jetstream(identity, lay)]


def subscribe_allow(identity: str, lay: Layout) -> list[str]:
    """Subjects ``identity`` may subscribe to (its inbox excluded)."""
    contract: dict[str, list[str]] = {
        "auth": [PRIVATE],
        "gateway": [lay.changes_subjects],  # webhook cache invalidation (core NATS)
        "executor": [lay.dry_run_subject],  # dry-run requests from the gateway
        "scheduler": [],  # its ordered consumer delivers to its inbox
        PROVISIONER: [],
        ADMIN: [">"],
    }
    return contract[identity]


def _other_inboxes(identity: str) -> list[str]:
    return [f"{inbox_prefix(i)}.>" for i in ALL_IDENTITIES if i != identity]


def deny_publish(identity: str) -> list[str]:
    if identity == ADMIN:  # may not forge replies to a service, nor ask for credentials
        return [PRIVATE, *_other_inboxes(identity)]
    return [] if identity == "executor" else [PRIVATE]


def deny_subscribe(identity: str) -> list[str]:
    if identity == ADMIN:  # may watch anything but the credential traffic and others' replies
        return [PRIVATE, *_other_inboxes(identity)]
    return [] if identity == "auth" else [PRIVATE]


def permissions(identity: str, layout: Layout | None = None) -> dict[str, Any]:
    """The ``permissions`` of one identity, as data (also the shape the NATS Helm chart takes)."""
    if identity not in ALL_IDENTITIES:
        raise ValueError(f"unknown NATS identity: {identity}")
    lay = layout or default_layout()
    inbox = f"{inbox_prefix(identity)}.>"
    publish: dict[str, Any] = {"allow": [*publish_allow(identity, lay), inbox]}
    subscribe: dict[str, Any] = {"allow": [*subscribe_allow(identity, lay), inbox]}
    if deny_publish(identity):
        publish["deny"] = deny_publish(identity)
    if deny_subscribe(identity):
        subscribe["deny"] = deny_subscribe(identity)
    perms: dict[str, Any] = {"publish": publish, "subscribe": subscribe}
    if identity in RESPONDERS:
        perms["allow_responses"] = {"max": 1, "expires": "1m"}
    return perms
