"""Auth and a gateway as processes, wired to each other as in a deployment (the e2e tests' usual start),
and :class:`Api`, a user's client of that gateway.

Auth runs in dev mode (signing keys generated under ``tmp_path``) with fast password hashing; the
gateway gets its own keyring, auth's URL and JWKS. ``common`` goes to both (e.g. OTLP settings,
``LOG_LEVEL``), ``gateway`` to the gateway only.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers.auth_setup import PASSWORD, fast_hash_env, kek_env
from tests.helpers.fakes import definition
from tests.helpers.services import ServiceProcess
from tests.helpers.wait import wait_until
from tests.helpers.webhooks import signed


class Api:
    """One user's client of a gateway at ``base``: ``call`` checks the status and returns the JSON answer,
    ``data`` its ``data``."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base, self.token, self.email = http, base, "", ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def call(self, method: str, path: str, body: Any = None, *, expect: int) -> Any:
        async with self.http.request(method, f"{self.base}{path}", json=body, headers=self.headers) as r:
            text = await r.text()
            assert r.status == expect, f"{method} {path}: {r.status} {text}"
            return json.loads(text) if text else None

    async def data(self, method: str, path: str, body: Any = None, *, expect: int) -> Any:
        """The ``data`` of :meth:`call`'s answer."""
        return (await self.call(method, path, body, expect=expect))["data"]

    async def sign_up(self) -> dict[str, str]:
        """Register a new user (a tenant of its own) and log in as it; returns what the registration answered."""
        self.email = email = f"{uuid.uuid4().hex[:8]}@example.com"
        registered = await self.call("POST", "/api/auth/register", {"email": email, "password": PASSWORD}, expect=201)
        login = await self.call("POST", "/api/auth/login", {"email": email, "password": PASSWORD}, expect=200)
        self.token = login["data"]["access_token"]
        return dict(registered["data"])

    async def credential(self, name: str, type_: str, secret: Any) -> dict[str, Any]:
        """Store a credential; returns the ``data`` of the 201."""
        body = {"name": name, "type": type_, "secret": secret}
        return dict(await self.data("POST", "/api/credentials", body, expect=201))

    async def webhook_workflow(self, name: str, action: dict[str, Any]) -> dict[str, Any]:
        """Create a workflow that a webhook triggers to run ``action``; returns the ``data`` of the 201."""
        body = {"name": name, "trigger": {"type": "webhook"}, "action": action}
        return dict(await self.data("POST", "/api/workflows", body, expect=201))

    async def webhook(self, workflow: dict[str, Any], payload: dict[str, Any]) -> tuple[str, str]:
        """Send one signed webhook to ``workflow`` (as the API shows it); returns (event id, the 202's traceparent)."""
        body = json.dumps(payload)
        headers = signed(workflow["webhook"]["secret"], body)
        async with self.http.post(f"{self.base}{workflow['webhook']['url']}", data=body, headers=headers) as r:
            assert r.status == 202, await r.text()
            return (await r.json())["data"]["event_id"], r.headers.get("traceparent", "")

    async def execution(self, workflow_id: str, status: str = "succeeded", *, timeout: float = 30) -> dict[str, Any]:
        """Wait until ``workflow_id`` has an execution with ``status``; returns the first on the page."""

        async def found() -> Any:
            page = await self.data("GET", f"/api/executions?workflow_id={workflow_id}", expect=200)
            rows = [e for e in page if e["status"] == status]
            return rows[0] if rows else None

        return dict(await wait_until(found, timeout=timeout, message=f"a {status} execution"))


def start_auth_and_gateway(
    service: Callable[..., ServiceProcess],
    database_url: str,
    nats_url: str,
    tmp_path: Path,
    *,
    common: dict[str, str] | None = None,
    gateway: dict[str, str] | None = None,
) -> tuple[ServiceProcess, ServiceProcess]:
    env = {"DATABASE_URL": database_url, "NATS_URL": nats_url, "LOG_LEVEL": "INFO", **(common or {})}
    auth = service(
        "services.auth",
        env={**env, **fast_hash_env(), "IPAAS_DEV_MODE": "true", "IPAAS_AUTH_DEV_KEYS_DIR": str(tmp_path / "keys")},
    )
    gw = service(
        "services.gateway",
        env={
            **env,
            **kek_env(),
            "IPAAS_AUTH_URL": auth.url,
            "IPAAS_JWKS_URL": f"{auth.url}/.well-known/jwks.json",
            **(gateway or {}),
        },
    )
    return auth, gw


def every_second(name: str, url: str) -> dict[str, Any]:
    """A workflow that POSTs to ``url`` every second (a gateway allows it with
    ``IPAAS_SCHEDULE_MIN_INTERVAL_SECONDS=1``)."""
    return definition(
        "http_request", {"method": "POST", "url": url}, trigger={"type": "schedule", "interval_seconds": 1}, name=name
    )
