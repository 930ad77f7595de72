"""Postgres goes away under auth and comes back: 503 with Retry-After meanwhile, then service as usual."""

from __future__ import annotations

import uuid

from deploy.local.infra import PostgresServer
from tests.helpers.auth_setup import PASSWORD, auth_client, auth_settings, register_and_login, resolve_credential
from tests.helpers.wait import wait_until


async def test_database_outage_gives_503_then_recovers(private_pg: PostgresServer, nats_url: str) -> None:
    async with auth_client(auth_settings(private_pg.dsn("ipaas"), nats_url)) as client:
        user = await register_and_login(client)
        login = {"email": user["email"], "password": PASSWORD}
        private_pg.stop()

        resp = await client.post("/api/auth/login", json=login)
        body = await resp.json()
        assert resp.status == 503 and int(resp.headers["Retry-After"]) >= 1, body
        assert body["error"]["code"] == "database_unavailable"
        assert (await client.get("/health/ready")).status == 503
        reply = await resolve_credential(nats_url, user["tenant_id"], str(uuid.uuid4()), timeout=15)
        assert reply.error == "internal_error"

        private_pg.start()

        async def logs_in() -> bool:
            return (await client.post("/api/auth/login", json=login)).status == 200

        await wait_until(logs_in, timeout=30, interval=0.3, message="login works again")
        assert (await client.get("/health/ready")).status == 200
