"""Issue 10 item 3: webhook secrets are sealed at rest, every secret inside its overlap keeps working,
plaintext rows from before are sealed, and ``rotate-keys`` re-wraps them (real Postgres and NATS)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from libs.common.bus import Bus
from services.gateway.hooks.signature import new_secret
from services.gateway.keys import KEKS
from tests.helpers.auth_setup import new_kek
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.gateway_app import WEBHOOK_WORKFLOW, Gateway, create_webhook_workflow, running_gateway, tenant
from tests.helpers.wait import equals, wait_until
from tests.helpers.webhooks import signed
from tests.integration.test_auth_rotate_keys import run_rotate

BODY = '{"order_id": 1}'


async def _post(gw: Gateway, workflow_id: str, secret: str) -> int:
    resp = await gw.client.post(f"/hooks/{workflow_id}", data=BODY.encode(), headers=signed(secret, BODY))
    return resp.status


async def _expired(gw: Gateway, workflow_id: str, secret: str) -> None:
    """Wait until ``secret`` is refused, its overlap over."""
    await wait_until(lambda: equals(_post(gw, workflow_id, secret), 401), timeout=10, interval=0.25, message="expiry")


async def _rotate(gw: Gateway, tenant_id: uuid.UUID, workflow_id: str) -> str:
    resp = await gw.client.post(f"/api/workflows/{workflow_id}/webhook-secret", headers=gw.auth(tenant_id))
    assert resp.status == 200, await resp.text()
    secret: str = (await resp.json())["data"]["webhook"]["secret"]
    return secret


async def _stored_text(db: asyncpg.Connection) -> str:
    rows = [r[0] for r in await db.fetch("SELECT row_to_json(w)::text FROM workflows w")]
    rows += [
        r[0]
        for r in await db.fetch(
            "SELECT row_to_json(s)::text || encode(s.ciphertext, 'escape') || encode(s.wrapped_dek, 'escape') "
            "FROM webhook_secrets s"
        )
    ]
    return "\n".join(rows)


async def _sealed(db: asyncpg.Connection, *workflow_ids: str | uuid.UUID) -> int:
    """How many sealed secrets the workflows hold."""
    ids = [uuid.UUID(str(w)) for w in workflow_ids]
    return int(await db.fetchval("SELECT count(*) FROM webhook_secrets WHERE workflow_id = ANY($1::uuid[])", ids))


def _forms(secret: str) -> list[str]:
    """The secret, its key as base64, and the key's raw bytes as Postgres would print them."""
    raw = base64.b64decode(secret.removeprefix("whsec_"))
    return [secret, secret.removeprefix("whsec_"), raw.hex()]


@pytest.mark.slow
async def test_secrets_are_sealed_and_every_one_inside_its_overlap_verifies(
    database_url: str, nats_url: str, bus: Bus, db: asyncpg.Connection, tenant_id: uuid.UUID
) -> None:
    overrides: dict[str, Any] = {"webhook_secret_overlap_seconds": 3, "bad_signature_burst": 1000}
    async with running_gateway(database_url, nats_url, **overrides) as gw:
        workflow_id, first = await create_webhook_workflow(gw, tenant_id)
        second = await _rotate(gw, tenant_id, workflow_id)
        third = await _rotate(gw, tenant_id, workflow_id)
        # Two rotations inside the overlap: the first secret still verifies, as do the others.
        assert [await _post(gw, workflow_id, s) for s in (first, second, third)] == [202, 202, 202]
        assert await _post(gw, workflow_id, new_secret()) == 401

        stored = await _stored_text(db)
        assert stored.count(workflow_id) >= 1 and "whsec_" not in stored
        assert [f for s in (first, second, third) for f in _forms(s) if f in stored] == []
        legacy = await db.fetchrow(
            "SELECT webhook_secret, webhook_secret_prev, webhook_secret_prev_until FROM workflows WHERE id = $1",
            uuid.UUID(workflow_id),
        )
        assert tuple(legacy) == (None, None, None)
        assert await _sealed(db, workflow_id) == 3

        # Past its window the first secret is refused; the current one is not.
        await _expired(gw, workflow_id, first)
        assert await _post(gw, workflow_id, third) == 202
        # A later rotation drops the rows whose window has passed.
        await _expired(gw, workflow_id, second)
        await _rotate(gw, tenant_id, workflow_id)
        assert await _sealed(db, workflow_id) == 2  # the third (inside its new overlap) and the new current one


async def test_changing_the_trigger_away_and_back_replaces_the_sealed_secret(
    gw: Gateway, tenant_id: uuid.UUID, db: asyncpg.Connection
) -> None:
    workflow_id, first = await create_webhook_workflow(gw, tenant_id)
    manual = {**WEBHOOK_WORKFLOW, "trigger": {"type": "schedule", "interval_seconds": 60}}
    resp = await gw.client.put(f"/api/workflows/{workflow_id}", json=manual, headers=gw.auth(tenant_id))
    assert resp.status == 200, await resp.text()
    assert await _sealed(db, workflow_id) == 0
    resp = await gw.client.put(f"/api/workflows/{workflow_id}", json=WEBHOOK_WORKFLOW, headers=gw.auth(tenant_id))
    again = (await resp.json())["data"]["webhook"]["secret"]
    assert again != first
    assert [await _post(gw, workflow_id, s) for s in (first, again)] == [401, 202]
    resp = await gw.client.delete(f"/api/workflows/{workflow_id}", headers=gw.auth(tenant_id))
    assert resp.status == 200
    assert await _sealed(db, workflow_id) == 0


async def test_plaintext_secrets_from_before_are_sealed_at_start(
    database_url: str, nats_url: str, bus: Bus, db: asyncpg.Connection
) -> None:
    tenant_id = await create_tenant(db)
    current, previous, expired = new_secret(), new_secret(), new_secret()
    old, stale = [await create_workflow(db, tenant_id, WEBHOOK_WORKFLOW, webhook_secret=current) for _ in range(2)]
    # The previous secret: still inside its overlap on ``old``, past it on ``stale``.
    for workflow_id, prev, until in ((old, previous, timedelta(hours=1)), (stale, expired, timedelta(seconds=-1))):
        await db.execute(
            "UPDATE workflows SET webhook_secret_prev = $2, webhook_secret_prev_until = now() + $3::interval"
            " WHERE id = $1",
            workflow_id,
            prev,
            until,
        )
    async with running_gateway(database_url, nats_url) as gw:
        stored = await _stored_text(db)
        assert "whsec_" not in stored
        assert await _sealed(db, old, stale) == 3
        tries = [(old, current), (old, previous), (stale, current), (stale, expired)]
        assert [await _post(gw, str(workflow_id), secret) for workflow_id, secret in tries] == [202, 202, 202, 401]


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_rotate_keys_rewraps_webhook_secrets_as_the_auth_role(
    database_url: str, nats_url: str, bus: Bus, db: asyncpg.Connection, role_url: Callable[[str], str]
) -> None:
    k1, k2 = new_kek("k1"), new_kek("k2")
    async with running_gateway(database_url, nats_url, IPAAS_AUTH_KEKS=k1) as gw:
        tenant_id = await tenant(database_url)
        made = [await create_webhook_workflow(gw, tenant_id) for _ in range(3)]
        rotated = await _rotate(gw, tenant_id, made[0][0])
    before = {r["id"]: bytes(r["ciphertext"]) for r in await db.fetch("SELECT id, ciphertext FROM webhook_secrets")}
    assert len(before) == 4 and {r[0] for r in await db.fetch("SELECT kek_id FROM webhook_secrets")} == {"k1"}

    code, lines = await run_rotate(role_url("auth"), f"{k2},{k1}")
    assert code == 0, lines
    finished = next(line for line in lines if line.get("msg") == "rotation finished")
    assert finished["webhook_secrets_rewrapped"] == 4 and finished["remaining_on_old_keks"] == 0
    after = {r["id"]: bytes(r["ciphertext"]) for r in await db.fetch("SELECT id, ciphertext FROM webhook_secrets")}
    assert after == before  # only the data keys' wrapping changed
    assert {r[0] for r in await db.fetch("SELECT kek_id FROM webhook_secrets")} == {"k2"}
    assert json.dumps(lines).count("whsec_") == 0

    # A gateway that holds only the new key verifies every secret, the earlier one inside its overlap too.
    async with running_gateway(database_url, nats_url, IPAAS_AUTH_KEKS=k2) as gw:
        statuses = [await _post(gw, wid, secret) for wid, secret in made] + [await _post(gw, made[0][0], rotated)]
        assert statuses == [202, 202, 202, 202]
    # One that holds only the old key cannot open them: the webhook is refused as unavailable, not accepted.
    async with running_gateway(database_url, nats_url, IPAAS_AUTH_KEKS=k1) as gw:
        assert await _post(gw, made[1][0], made[1][1]) == 503


async def test_a_new_kek_in_the_directory_seals_new_secrets_without_a_restart(
    database_url: str, nats_url: str, bus: Bus, db: asyncpg.Connection, tmp_path: Path, tenant_id: uuid.UUID
) -> None:
    keys = tmp_path / "keks"
    keys.mkdir()
    (keys / "2026-01.key").write_text(new_kek("x").split(":", 1)[1])
    overrides: dict[str, Any] = {
        "IPAAS_AUTH_KEKS": None,
        "IPAAS_AUTH_KEKS_DIR": keys,
        "IPAAS_AUTH_KEYS_RELOAD_SECONDS": 0.2,
    }
    async with running_gateway(database_url, nats_url, **overrides) as gw:
        first, first_secret = await create_webhook_workflow(gw, tenant_id)
        (keys / "2026-02.key").write_text(new_kek("x").split(":", 1)[1])  # sorts last: seals from now on

        await wait_until(
            lambda: gw.app[KEKS].ring.primary_id == "2026-02", timeout=10, message="the gateway to load the new KEK"
        )
        second, second_secret = await create_webhook_workflow(gw, tenant_id)
        kek_of = {
            str(r["workflow_id"]): r["kek_id"]
            for r in await db.fetch(
                "SELECT workflow_id, kek_id FROM webhook_secrets WHERE workflow_id = ANY($1::uuid[])",
                [uuid.UUID(first), uuid.UUID(second)],
            )
        }
        assert kek_of == {first: "2026-01", second: "2026-02"}
        assert [await _post(gw, first, first_secret), await _post(gw, second, second_secret)] == [202, 202]
