"""``python -m services.auth rotate-keys``: every data key moves to the new KEK, online, idempotently."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import nats
import pytest

from libs.common.models.credentials import RESOLVE_SUBJECT, CredentialReply
from services.auth.vault import KekRing, Sealed, parse_keks
from tests.helpers.auth_setup import auth_client, auth_settings, new_kek
from tests.helpers.factories import create_tenant
from tests.helpers.services import run_module

COUNT = 230


async def seed(db: asyncpg.Connection, ring: KekRing, count: int) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
    tenants = [await create_tenant(db, f"t{i}") for i in range(3)]
    rows = []
    for i in range(count):
        tenant, cid, key = tenants[i % 3], uuid.uuid4(), f"key-{i}"
        sealed = ring.encrypt(tenant, cid, {"api_key": key})
        rows.append((cid, tenant, "c", "openweather", sealed.kek_id, sealed.wrapped_dek, sealed.ciphertext))
    await db.executemany(
        "INSERT INTO credentials (id, tenant_id, name, type, kek_id, wrapped_dek, ciphertext) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        rows,
    )
    return [(r[0], r[1], f"key-{i}") for i, r in enumerate(rows)]


async def run_rotate(database_url: str, keks: str) -> tuple[int, list[dict[str, object]]]:
    env = {"DATABASE_URL": database_url, "IPAAS_AUTH_KEKS": keks, "OTEL_TRACES_EXPORTER": "none"}
    code, output = await run_module("services.auth", "rotate-keys", env=env)
    return code, [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.mark.slow
async def test_rotate_keys_rewraps_everything_online_and_is_idempotent(
    database_url: str,
    nats_url: str,
    db: asyncpg.Connection,
) -> None:
    k1, k2 = new_kek("k1"), new_kek("k2")
    seeded = await seed(db, KekRing(parse_keks(k1)), COUNT)
    # An interrupted earlier run left some rows already on k2: the run resumes from there.
    both = KekRing(parse_keks(f"{k2},{k1}"))
    for cid, tenant, _ in seeded[:40]:
        row = await db.fetchrow("SELECT kek_id, wrapped_dek, ciphertext FROM credentials WHERE id = $1", cid)
        moved = both.rewrap(tenant, cid, Sealed(row["kek_id"], bytes(row["wrapped_dek"]), bytes(row["ciphertext"])))
        await db.execute(
            "UPDATE credentials SET kek_id = $2, wrapped_dek = $3 WHERE id = $1", cid, moved.kek_id, moved.wrapped_dek
        )

    # The service (already given the new keyring) keeps resolving while the rotation runs.
    async with auth_client(auth_settings(database_url, nats_url, keks=f"{k2},{k1}")):
        nc = await nats.connect(nats_url)
        rotation = asyncio.create_task(run_rotate(database_url, f"{k2},{k1}"))
        failures = resolved = 0
        while not rotation.done() or resolved < 20:
            cid, tenant, key = seeded[resolved % COUNT]
            msg = await nc.request(
                RESOLVE_SUBJECT, json.dumps({"tenant_id": str(tenant), "credential_id": str(cid)}).encode(), timeout=5
            )
            reply = CredentialReply.model_validate_json(msg.data)
            failures += reply.secret != {"api_key": key}
            resolved += 1
        await nc.close()
        code, lines = await rotation
    assert failures == 0, f"{failures} of {resolved} resolutions failed during rotation"
    assert code == 0, lines
    progress = [line for line in lines if line.get("msg") == "rotation progress"]
    assert len(progress) >= 2 and all(line["level"] == "info" for line in progress)
    finished = next(line for line in lines if line.get("msg") == "rotation finished")
    assert finished["rewrapped"] == COUNT - 40 and finished["remaining_on_old_keks"] == 0

    # 100% decrypt with the new KEK alone, and none is still on the old one.
    assert await db.fetchval("SELECT count(*) FROM credentials WHERE kek_id <> 'k2'") == 0
    only_new = KekRing(parse_keks(k2))
    for cid, tenant, key in seeded:
        row = await db.fetchrow("SELECT kek_id, wrapped_dek, ciphertext FROM credentials WHERE id = $1", cid)
        sealed = Sealed(row["kek_id"], bytes(row["wrapped_dek"]), bytes(row["ciphertext"]))
        assert only_new.decrypt(tenant, cid, sealed) == {"api_key": key}

    # Idempotent: a second run finds nothing to do.
    code, lines = await run_rotate(database_url, f"{k2},{k1}")
    finished = next(line for line in lines if line.get("msg") == "rotation finished")
    assert code == 0 and finished["rewrapped"] == 0


@pytest.mark.slow
async def test_rotate_keys_reports_rows_it_cannot_unwrap(database_url: str, db: asyncpg.Connection) -> None:
    lost, k1 = new_kek("lost"), new_kek("k1")
    seeded = await seed(db, KekRing(parse_keks(lost)), 3)
    code, lines = await run_rotate(database_url, k1)
    assert code == 1
    named = {line.get("cred_id") for line in lines if line.get("msg") == "cannot unwrap data key"}
    assert named == {str(cid) for cid, _, _ in seeded}
    code, lines = await run_rotate(database_url, "k1:not-base64!")
    assert code == 2 and any(line.get("msg") == "rotation cannot start" for line in lines)
