"""The webhook envelope's serialiser: the one writer against the hand-written one it replaced.

Before, ingest wrote its envelope JSON itself (``orjson`` over the head fields with an
``isoformat()`` timestamp, then the raw body joined on).  Now it builds a ``WireEvent``
and :func:`~libs.common.models.events.envelope_json` writes it, the body spliced in as an
``orjson.Fragment``.  Both are timed side by side, interleaved, in CPU time (a busy
machine's other processes do not count), for a small and a 4 KiB body; the fastest of
``BENCH_ENVELOPE_ROUNDS`` rounds counts.

Target: the writer is no slower than the one it replaced (within 5 %, the noise of one round).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import orjson

from libs.common.models.events import WireEvent, envelope_json
from tests.bench.harness import free_cpu_note, report

ROUNDS = int(os.environ.get("BENCH_ENVELOPE_ROUNDS", "40"))
PER_ROUND = 20_000
TOLERANCE = 1.05


def before(ids: tuple[str, str, str], body: bytes) -> bytes:
    """The serialiser ingest had before the one writer (kept here as the baseline)."""
    event_id, tenant_id, workflow_id = ids
    head = orjson.dumps(
        {
            "event_id": event_id,
            "dedup_key": "msg_2aLk",
            "tenant_id": tenant_id,
            "workflow_id": workflow_id,
            "workflow_version": 3,
            "trigger": "webhook",
            "received_at": datetime.now(UTC).isoformat(),
            "scheduled_for": None,
        }
    )
    return b"".join((head[:-1], b',"payload":', body, b"}"))


def now(ids: tuple[str, str, str], body: bytes) -> bytes:
    event_id, tenant_id, workflow_id = ids
    return envelope_json(
        WireEvent(
            event_id=event_id,
            dedup_key="msg_2aLk",
            tenant_id=tenant_id,
            workflow_id=workflow_id,
            workflow_version=3,
            trigger="webhook",
            payload_json=body,
            received_at=datetime.now(UTC),
        )
    )


def _cpu_ns(fn: Callable[[tuple[str, str, str], bytes], bytes], ids: tuple[str, str, str], body: bytes) -> float:
    started = time.process_time_ns()
    for _ in range(PER_ROUND):
        fn(ids, body)
    return (time.process_time_ns() - started) / PER_ROUND


def test_the_envelope_writer_is_no_slower_than_the_hand_written_one() -> None:
    ids = (str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()))
    bodies = {
        "small": b'{"order":{"id":17,"total":12.5}}',
        "4KiB": orjson.dumps({"items": [{"id": i, "name": "x" * 20} for i in range(100)]}),
    }
    best: dict[tuple[str, str], float] = {}
    for _ in range(ROUNDS):
        for label, body in bodies.items():
            for name, fn in (("before", before), ("writer", now)):
                key = (label, name)
                best[key] = min(best.get(key, float("inf")), _cpu_ns(fn, ids, body))
    rows: list[dict[str, object]] = [
        {"body": label, "before_ns": round(best[(label, "before")]), "writer_ns": round(best[(label, "writer")])}
        for label in bodies
    ]
    rows.append({"body": "machine", "before_ns": "", "writer_ns": free_cpu_note()})
    verdicts = {
        f"{label}: the writer within {TOLERANCE:.2f}x of before": best[(label, "writer")]
        <= best[(label, "before")] * TOLERANCE
        for label in bodies
    }
    report("envelope", rows, verdicts)
    assert all(verdicts.values()), verdicts
