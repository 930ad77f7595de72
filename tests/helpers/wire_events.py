"""A webhook event built the way the gateway's ingest builds it: a ``WireEvent`` around the request body."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from libs.common.models.events import WireEvent, event_id_text
from services.gateway.hooks.ingest import payload_json


def webhook_event(
    tenant_id: uuid.UUID | str,
    workflow_id: uuid.UUID | str,
    body: bytes,
    *,
    content_type: str = "application/json",
    version: int = 1,
    dedup_key: str = "k",
    received_at: datetime | None = None,
) -> WireEvent:
    """The event of ``body`` (read as ``content_type``), its id derived from the workflow and ``dedup_key``
    as ingest derives it, received now unless ``received_at`` says otherwise."""
    return WireEvent(
        event_id=event_id_text(workflow_id, dedup_key),
        dedup_key=dedup_key,
        tenant_id=tenant_id,
        workflow_id=workflow_id,
        workflow_version=version,
        trigger="webhook",
        payload_json=payload_json(body, content_type),
        received_at=received_at or datetime.now(UTC),
    )
