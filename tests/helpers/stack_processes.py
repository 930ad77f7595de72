"""Auth and a gateway as processes, wired to each other as in a deployment (the e2e tests' usual start).

Auth runs in dev mode (signing keys generated under ``tmp_path``) with fast password hashing; the
gateway gets its own keyring, auth's URL and JWKS. ``common`` goes to both (e.g. OTLP settings,
``LOG_LEVEL``), ``gateway`` to the gateway only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.helpers.auth_setup import fast_hash_env, kek_env
from tests.helpers.services import ServiceProcess


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
