"""The credential vault end to end: API, storage, NATS resolution, tenant isolation, no leaks."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import asyncpg
import nats
import pytest
from aiohttp.test_utils import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from libs.common.models.credentials import RESOLVE_SUBJECT, CredentialReply
from tests.helpers.auth_setup import (
    add_credential,
    auth_client,
    auth_settings,
    bearer,
    register_and_login,
    resolve_credential,
)

PLANTED = "planted-s3cr3t-7f1c2e9a"
# name -> (type, secret).  A Slack credential is a webhook URL or a bot token, kept as given: the executor
# tells the two ways in apart by which key is there.
SECRETS: dict[str, tuple[str, dict[str, Any]]] = {
    "slack": ("slack", {"webhook_url": f"https://hooks.example.com/services/{PLANTED}"}),
    "slack bot": ("slack", {"bot_token": f"xoxb-1234567890-{PLANTED}"}),
    "discord": ("discord", {"webhook_url": f"https://discord.example.com/api/webhooks/1/{PLANTED}"}),
    "openweather": ("openweather", {"api_key": PLANTED}),
    "http": ("http", {"headers": {"X-Api-Key": PLANTED}}),
}


async def test_credentials_round_trip_without_the_secret_ever_leaving(
    database_url: str,
    nats_url: str,
    db: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
    spans: InMemorySpanExporter,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    async with auth_client(auth_settings(database_url, nats_url)) as client:
        user = await register_and_login(client)
        h = bearer(user["token"])
        created: dict[str, str] = {}
        for name, (ctype, secret) in SECRETS.items():
            resp = await add_credential(client, user, f"my {name}", ctype, secret)
            text = await resp.text()
            seen.append(text)
            assert resp.status == 201, text
            data = json.loads(text)["data"]
            assert set(data) == {"id", "name", "type", "created_at"} and data["type"] == ctype
            created[name] = data["id"]
        resp = await client.get("/api/credentials", headers=h)
        listing = await resp.text()
        seen.append(listing)
        assert sorted(c["id"] for c in json.loads(listing)["data"]) == sorted(created.values())
        # Pagination.
        page = await (await client.get("/api/credentials?limit=3", headers=h)).json()
        cursor = page["meta"]["next_cursor"]
        rest = await (await client.get(f"/api/credentials?limit=3&cursor={cursor}", headers=h)).json()
        assert len(page["data"]) == 3 and len(rest["data"]) == 2 and "meta" not in rest

        # The executor's path: NATS request/reply returns the decrypted secret, only what was given.
        for name, cid in created.items():
            reply = await resolve_credential(nats_url, user["tenant_id"], cid)
            assert reply.ok and (reply.type, reply.secret) == SECRETS[name]

        # Many at once (the executor's replicas in parallel): every one answered correctly.
        nc = await nats.connect(nats_url)
        try:
            ask = json.dumps({"tenant_id": user["tenant_id"], "credential_id": created["http"]}).encode()
            replies = await asyncio.gather(*(nc.request(RESOLVE_SUBJECT, ask, timeout=10) for _ in range(200)))
        finally:
            await nc.close()
        assert all(CredentialReply.model_validate_json(r.data).secret == SECRETS["http"][1] for r in replies)

        # Stored encrypted: the planted value is nowhere in the table.
        dump = await db.fetch("SELECT * FROM credentials")
        assert len(dump) == 5 and PLANTED.encode() not in repr([dict(r) for r in dump]).encode()
        for row in dump:
            assert PLANTED.encode() not in bytes(row["ciphertext"]) + bytes(row["wrapped_dek"])

        resp = await client.delete(f"/api/credentials/{created['slack']}", headers=h)
        seen.append(await resp.text())
        assert resp.status == 200
        assert (await resolve_credential(nats_url, user["tenant_id"], created["slack"])).error == "not_found"

    for body in seen:
        assert PLANTED not in body
    for record in caplog.records:
        assert PLANTED not in record.getMessage() and PLANTED not in json.dumps(vars(record), default=str)
    finished = spans.get_finished_spans()
    assert any(s.name == "credentials.create" for s in finished)
    assert any(s.name == f"process {RESOLVE_SUBJECT}" for s in finished)
    for span in finished:
        assert PLANTED not in json.dumps(dict(span.attributes or {}), default=str), span.name
        for event in span.events:
            assert PLANTED not in json.dumps(dict(event.attributes or {}), default=str)


async def test_other_tenants_cannot_see_use_or_transplant_a_credential(
    auth_app: TestClient[Any, Any],
    nats_url: str,
    db: asyncpg.Connection,
) -> None:
    alice = await register_and_login(auth_app)
    mallory = await register_and_login(auth_app)
    resp = await add_credential(auth_app, alice, "alice", "openweather", {"api_key": PLANTED})
    alice_cred = (await resp.json())["data"]["id"]
    resp = await add_credential(auth_app, mallory, "mallory", "openweather", {"api_key": "mine"})
    mallory_cred = (await resp.json())["data"]["id"]

    # The API: another tenant's id is a 404, exactly like a missing one.
    listing = await (await auth_app.get("/api/credentials", headers=bearer(mallory["token"]))).json()
    assert [c["id"] for c in listing["data"]] == [mallory_cred]
    other = await auth_app.delete(f"/api/credentials/{alice_cred}", headers=bearer(mallory["token"]))
    missing = await auth_app.delete(f"/api/credentials/{uuid.uuid4()}", headers=bearer(mallory["token"]))
    assert other.status == missing.status == 404 and await other.read() == await missing.read()
    assert (await resolve_credential(nats_url, mallory["tenant_id"], alice_cred)).error == "not_found"

    # Storage: alice's ciphertext copied onto mallory's row does not decrypt there.
    await db.execute(
        """UPDATE credentials AS m SET kek_id = a.kek_id, wrapped_dek = a.wrapped_dek, ciphertext = a.ciphertext
           FROM credentials AS a WHERE a.id = $1 AND m.id = $2""",
        uuid.UUID(alice_cred),
        uuid.UUID(mallory_cred),
    )
    reply = await resolve_credential(nats_url, mallory["tenant_id"], mallory_cred)
    assert reply.ok is False and reply.error == "decrypt_failed" and reply.secret is None
    # Copied under alice's own tenant but another credential id: refused too.
    copy_id = uuid.uuid4()
    await db.execute(
        """INSERT INTO credentials (id, tenant_id, name, type, kek_id, wrapped_dek, ciphertext)
           SELECT $2, tenant_id, 'copy', type, kek_id, wrapped_dek, ciphertext FROM credentials WHERE id = $1""",
        uuid.UUID(alice_cred),
        copy_id,
    )
    reply = await resolve_credential(nats_url, alice["tenant_id"], str(copy_id))
    assert reply.ok is False and reply.error == "decrypt_failed"
    # The original still resolves.
    assert (await resolve_credential(nats_url, alice["tenant_id"], alice_cred)).secret == {"api_key": PLANTED}


async def test_bad_credential_requests_get_4xx_and_bad_nats_requests_get_bad_request(
    auth_app: TestClient[Any, Any],
    nats_url: str,
) -> None:
    user = await register_and_login(auth_app)
    h = bearer(user["token"])
    hook = {"webhook_url": "https://h.example.com/x"}

    def credential(ctype: str, secret: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return {"name": "x", "type": ctype, "secret": secret, **fields}

    cases: list[tuple[dict[str, Any], str]] = [
        (credential("slack", {"api_key": "k"}), "secret.api_key"),
        (credential("slack", {}), "secret.webhook_url"),
        (credential("slack", {"bot_token": "not-a-token"}), "secret.bot_token"),
        (credential("slack", {"bot_token": "xoxb-1234567890-a", **hook}), "secret.bot_token"),
        (credential("slack", {"webhook_url": "ftp://nope"}), "secret.webhook_url"),
        (credential("openweather", {"api_key": 12345}), "secret.api_key"),
        (credential("http", {"headers": {"bad header": "v"}}), "secret.headers"),
        (credential("http", {"headers": {"X": "a\r\nInjected: 1"}}), "secret.headers"),
        (credential("smtp", {}), "type"),
        (credential("slack", hook, name="a\u0000b"), "name"),
        (credential("slack", hook, name=""), "name"),
        ({"type": "slack", "secret": hook}, "name"),
        (credential("slack", hook, id="1"), "id"),
    ]
    for body, field in cases:
        resp = await auth_app.post("/api/credentials", headers=h, json=body)
        payload = await resp.json()
        assert resp.status == 422, (body, payload)
        assert field in [d["field"] for d in payload["error"]["details"]], (body, payload)
        assert "a\r\nInjected" not in json.dumps(payload)
    garbled = await auth_app.post("/api/credentials", headers={**h, "Content-Type": "application/json"}, data=b"{nope")
    assert garbled.status == 400
    # Query parameters follow the shared rules: an invalid value is a 422 naming it, never ignored.
    for query, field in (
        ("limit=0", "limit"),
        ("limit=", "limit"),
        ("limit=1.0", "limit"),
        ("cursor=%%%", "cursor"),
        ("cursor=", "cursor"),
        ("limit=2&limit=3", "limit"),
    ):
        resp = await auth_app.get(f"/api/credentials?{query}", headers=h)
        assert resp.status == 422, query
        assert [d["field"] for d in (await resp.json())["error"]["details"]] == [field], query
    assert (await auth_app.delete("/api/credentials/not-a-uuid", headers=h)).status == 404
    # Unauthenticated writes are refused before the body is looked at.
    assert (await auth_app.post("/api/credentials", json={})).status == 401

    for raw in (b"not json", b"{}", b'{"tenant_id": "x", "credential_id": "y"}', b"\xff" * 10, b"x" * 10000):
        reply = await resolve_credential(nats_url, "", "", raw=raw)
        assert reply.ok is False and reply.error == "bad_request"
    # The responder is still there.
    assert (await resolve_credential(nats_url, user["tenant_id"], str(uuid.uuid4()))).error == "not_found"
