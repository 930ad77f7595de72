"""A key rollout seen end to end: auth answers ``key_unavailable`` for a KEK it has not loaded yet,
the executor retries instead of dead-lettering, and the event succeeds once auth has the key.
A tampered credential, by contrast, is ``decrypt_failed`` and dead at the first attempt.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from libs.common.bus import Bus
from services.auth.vault import KekRing, parse_keks
from tests.helpers.auth_setup import auth_client, auth_settings, new_kek
from tests.helpers.executor_app import ExecutorFactory
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.fakes import FakeSink, definition, execution_row, final_row, publish_event
from tests.helpers.wait import wait_until


async def store_credential(
    db: asyncpg.Connection, keks: KekRing, tenant: uuid.UUID, secret: dict[str, Any], *, tamper: bool = False
) -> uuid.UUID:
    """A Slack credential sealed with ``keks`` (as another auth replica, or rotate-keys, would write it)."""
    cid = uuid.uuid4()
    sealed = keks.encrypt(tenant, cid, secret)
    ciphertext = bytearray(sealed.ciphertext)
    if tamper:
        ciphertext[-1] ^= 1
    await db.execute(
        "INSERT INTO credentials (id, tenant_id, name, type, kek_id, wrapped_dek, ciphertext) "
        "VALUES ($1, $2, 'slack', 'slack', $3, $4, $5)",
        cid,
        tenant,
        sealed.kek_id,
        sealed.wrapped_dek,
        bytes(ciphertext),
    )
    return cid


def write_kek(directory: Path, spec: str) -> None:
    kid, _, key = spec.partition(":")
    (directory / f"{kid}.key").write_text(key)


@pytest.mark.slow
async def test_unknown_kek_is_retried_until_auth_loads_it_and_tampering_is_dead_at_once(
    bus: Bus,
    db: asyncpg.Connection,
    nats_url: str,
    database_url: str,
    executor: ExecutorFactory,
    tmp_path: Path,
    sink: FakeSink,
) -> None:
    old, new = new_kek("k1-old"), new_kek("k2-new")
    keks_dir = tmp_path / "keks"
    keks_dir.mkdir()
    write_kek(keks_dir, old)  # this auth replica knows only the old KEK
    settings = auth_settings(database_url, nats_url, keks=None, keks_dir=keks_dir, keys_reload_seconds=0.2)
    async with auth_client(settings):
        tenant = await create_tenant(db)
        # Sealed under the new KEK by a replica that already has it.
        rolled = await store_credential(
            db, KekRing(parse_keks(f"{new},{old}")), tenant, {"webhook_url": f"{sink.url}/services/T/B/rolled"}
        )
        tampered = await store_credential(
            db, KekRing(parse_keks(old)), tenant, {"webhook_url": f"{sink.url}/services/T/B/tampered"}, tamper=True
        )
        wf_rolled = await create_workflow(db, tenant, definition("slack_message", {"text": "rolled"}, rolled))
        wf_tampered = await create_workflow(db, tenant, definition("slack_message", {"text": "tampered"}, tampered))
        await executor(
            IPAAS_EXECUTOR_MAX_ATTEMPTS="100",
            IPAAS_EXECUTOR_BACKOFF_MAX_SECONDS="0.4",
            IPAAS_EXECUTOR_CREDENTIAL_CACHE_SECONDS="0",
        )
        event = await publish_event(bus, tenant, wf_rolled, {})
        bad = await publish_event(bus, tenant, wf_tampered, {})

        # Tampered: permanent at the first attempt.
        dead = await final_row(db, bad.event_id)
        assert dead["status"] == "dead" and dead["attempts"] == 1, dict(dead)
        assert "decrypt_failed" in dead["error"]

        # Unknown KEK: retried (row failed, attempts counting up), never dead, the sink never called.
        async def retried() -> Any:
            row = await execution_row(db, event.event_id)
            return row if row is not None and row["attempts"] >= 4 else None

        row = await wait_until(retried, timeout=30, message="several attempts on key_unavailable")
        assert row["status"] in ("failed", "running"), dict(row)
        assert "key_unavailable" in (row["error"] or ""), dict(row)
        assert sink.calls == 0

        # The rollout reaches this replica: its next key reload picks up the new KEK.
        write_kek(keks_dir, new)
        done = await final_row(db, event.event_id, timeout=30)
        assert done["status"] == "succeeded", dict(done)
        assert done["attempts"] > row["attempts"]
        assert [r.json() for r in sink.requests] == [{"text": "rolled"}]
        assert await db.fetchval("SELECT count(*) FROM dead_letters WHERE event_id = $1", event.event_id) == 0
