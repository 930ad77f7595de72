"""``python -m services.auth`` as a process: dev-mode keys, key rotation without restart, startup errors."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from libs.common.auth import JwksVerifier, TokenError
from tests.helpers.auth_setup import PASSWORD, bearer, fast_hash_env, new_kek, new_signing_pem
from tests.helpers.services import ServiceProcess
from tests.helpers.wait import contains, equals, wait_until, wait_until_sync

Start = Callable[..., ServiceProcess]


def base_env(database_url: str, nats_url: str, **extra: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "NATS_URL": nats_url, "LOG_LEVEL": "INFO", **fast_hash_env(), **extra}


async def login(session: aiohttp.ClientSession, url: str, email: str, *, register: bool = False) -> str:
    if register:
        async with session.post(f"{url}/api/auth/register", json={"email": email, "password": PASSWORD}) as r:
            assert r.status == 201, await r.text()
    async with session.post(f"{url}/api/auth/login", json={"email": email, "password": PASSWORD}) as r:
        assert r.status == 200, await r.text()
        return str((await r.json())["data"]["access_token"])


async def jwks_kids(session: aiohttp.ClientSession, url: str) -> list[str]:
    async with session.get(f"{url}/.well-known/jwks.json") as r:
        return [k["kid"] for k in (await r.json())["keys"]]


async def status_with(session: aiohttp.ClientSession, url: str, token: str) -> tuple[int, Any]:
    async with session.get(f"{url}/api/credentials", headers=bearer(token)) as r:
        return r.status, await r.json()


def header_kid(token: str) -> str:
    import jwt

    return str(jwt.get_unverified_header(token)["kid"])


@pytest.mark.slow
async def test_dev_mode_generates_persists_and_serves_and_logs_json(
    service: Start, database_url: str, nats_url: str, tmp_path: Path
) -> None:
    env = base_env(database_url, nats_url, IPAAS_DEV_MODE="true", IPAAS_AUTH_DEV_KEYS_DIR=str(tmp_path / "keys"))
    auth = service("services.auth", env=env)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{auth.url}/health/ready") as r:
            assert r.status == 200 and (await r.json())["checks"] == {"postgres": True, "nats": True}
        kids = await jwks_kids(session, auth.url)
        token = await login(session, auth.url, "dev@example.com", register=True)
        assert header_kid(token) == kids[0]
        async with session.get(f"{auth.metrics_url}/metrics") as r:
            assert "ipaas_http_requests_total" in await r.text()
        async with session.get(f"{auth.url}/metrics") as r:  # not on the port the gateway forwards to
            assert r.status == 404 and "ipaas_http_requests_total" not in await r.text()
        assert auth.terminate() == 0  # SIGTERM: drains and exits cleanly
        # A restart keeps the generated keys: earlier tokens stay valid.
        again = service("services.auth", env=env, port=auth.port)
        assert await jwks_kids(session, again.url) == kids
        status, _ = await status_with(session, again.url, token)
        assert status == 200
    assert (tmp_path / "keys" / "signing").is_dir() and any((tmp_path / "keys" / "keks").iterdir())
    logs = auth.logs()
    lines = [json.loads(line) for line in logs.splitlines() if line.strip()]  # every line is JSON
    assert all(line["service"] == "auth" for line in lines) and any(line.get("msg") == "listening" for line in lines)
    assert PASSWORD not in logs and token not in logs


@pytest.mark.slow
def test_without_keys_outside_dev_mode_it_refuses_to_start(service: Start, database_url: str, nats_url: str) -> None:
    auth = service("services.auth", env=base_env(database_url, nats_url, IPAAS_DEV_MODE="false"), wait=False)
    wait_until_sync(lambda: not auth.alive(), timeout=20, message="auth exits")
    assert auth.proc.returncode != 0
    assert "no signing key" in auth.logs() and "Traceback" not in auth.logs()


@pytest.mark.slow
async def test_signing_key_rotation_without_restart(
    service: Start, database_url: str, nats_url: str, tmp_path: Path
) -> None:
    keys = tmp_path / "signing"
    keys.mkdir()
    old_pem, old_kid = new_signing_pem()
    new_pem, new_kid = new_signing_pem()
    (keys / "2026-01-01.pem").write_text(old_pem)
    env = base_env(
        database_url,
        nats_url,
        IPAAS_AUTH_SIGNING_KEYS_DIR=str(keys),
        IPAAS_AUTH_KEKS=new_kek("k1"),
        IPAAS_AUTH_KEYS_RELOAD_SECONDS="0.2",
    )
    auth = service("services.auth", env=env)
    verifier = JwksVerifier(
        f"{auth.url}/.well-known/jwks.json",
        issuer="ipaas",
        audience="ipaas-api",
        cache_ttl=0.2,
        min_refresh_interval=0.1,
    )

    async def accepted(token: str) -> bool:
        try:
            await verifier.verify(token)
        except TokenError:
            return False
        return True

    try:
        async with aiohttp.ClientSession() as session:
            old_token = await login(session, auth.url, "rot@example.com", register=True)
            assert header_kid(old_token) == old_kid and await accepted(old_token)

            # 1. The new key is published ahead of its time; the old one keeps signing until then.
            future = _stamp(time.time() + 3600)
            (keys / future).write_text(new_pem)
            await wait_until(
                lambda: contains(jwks_kids(session, auth.url), new_kid), timeout=10, message="new key published"
            )
            assert header_kid(await login(session, auth.url, "rot@example.com")) == old_kid

            # 2. Its time comes (here: the file is renamed to a time just past): new tokens carry
            #    the new kid, and old tokens still verify.
            (keys / future).rename(keys / _stamp(time.time() - 1))
            new_token = await wait_until(
                lambda: _login_with_kid(session, auth.url, new_kid), timeout=10, message="tokens signed by the new key"
            )
            assert (await status_with(session, auth.url, old_token))[0] == 200
            assert (await status_with(session, auth.url, new_token))[0] == 200
            assert await wait_until(lambda: accepted(new_token), timeout=5) and await accepted(old_token)

            # 3. The old key leaves the JWKS: its tokens are refused, by auth and by the shared verifier.
            (keys / "2026-01-01.pem").unlink()
            await wait_until(lambda: _lacks(session, auth.url, old_kid), timeout=10, message="old key gone")
            status, body = await status_with(session, auth.url, old_token)
            assert status == 401 and body["error"]["code"] == "unknown_key"
            await wait_until(lambda: equals(accepted(old_token), False), timeout=5, message="verifier drops old key")
            assert await accepted(new_token)
    finally:
        await verifier.close()


def _stamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y%m%dT%H%M%SZ") + ".pem"


async def _lacks(session: aiohttp.ClientSession, url: str, kid: str) -> bool:
    return kid not in await jwks_kids(session, url)


async def _login_with_kid(session: aiohttp.ClientSession, url: str, kid: str) -> str | None:
    token = await login(session, url, "rot@example.com")
    return token if header_kid(token) == kid else None
