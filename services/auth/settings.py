"""Configuration of the auth service (``IPAAS_AUTH_*`` plus the shared JWT names)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from libs.common.http.client_ip import Cidrs
from libs.common.models.auth import CREDENTIALS_PAGE_MAX, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH
from libs.common.settings import ServiceSettings


class AuthSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IPAAS_AUTH_", extra="ignore")
    service: ClassVar[str] = "auth"
    port: ClassVar[int] = 8081

    # Tokens (names shared with every verifier).
    jwt_issuer: str = Field(default="ipaas", validation_alias="IPAAS_JWT_ISSUER")
    jwt_audience: str = Field(default="ipaas-api", validation_alias="IPAAS_JWT_AUDIENCE")
    token_ttl_seconds: int = Field(default=900, ge=30, le=86400)
    token_leeway_seconds: float = 5.0

    # Signing keys: one PEM in the environment and/or a directory of PEM files.
    signing_key: str | None = None
    signing_keys_dir: Path | None = None
    keys_reload_seconds: float = 30.0

    # Key-encryption keys of the vault: "kid:base64,kid:base64" (first encrypts) and/or a directory.
    keks: str | None = None
    keks_dir: Path | None = None

    # Where dev mode persists the keys it generates.
    dev_keys_dir: Path = Path(".local/auth")

    # Password hashing (argon2id).  Defaults are argon2-cffi's RFC 9106 low-memory profile.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)
    hash_workers: int = Field(default=2, ge=1)
    # Hashes queued or running at once per replica; beyond it, 503 with Retry-After.
    hash_queue_max: int = Field(default=32, ge=1)
    password_min_length: int = Field(default=PASSWORD_MIN_LENGTH, ge=1)
    password_max_length: int = Field(default=PASSWORD_MAX_LENGTH, ge=8)

    # Login and registration rate limits (token buckets, in memory, per replica).  The per-email
    # budget is per (email, client): nobody can spend someone else's.  Clients are keyed by address,
    # IPv6 by /64.
    login_email_burst: int = Field(default=5, ge=1)
    login_email_per_minute: float = Field(default=5.0, gt=0)
    login_ip_burst: int = Field(default=20, ge=1)
    login_ip_per_minute: float = Field(default=20.0, gt=0)
    register_ip_burst: int = Field(default=10, ge=1)
    register_ip_per_minute: float = Field(default=10.0, gt=0)
    rate_limit_max_keys: int = Field(default=100_000, ge=100)
    # Peers whose X-Forwarded-For is believed (the gateway).  Comma-separated CIDRs.  In Kubernetes
    # the gateway's pod addresses (only the gateway may reach auth: NetworkPolicy auth-from-gateway).
    trusted_proxies: Cidrs = "127.0.0.1/32,::1/128"

    # NATS responder for credential resolution.
    resolve_queue: str = "auth"
    resolve_concurrency: int = Field(default=32, ge=1)

    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    credentials_page_max: int = Field(default=CREDENTIALS_PAGE_MAX, ge=1)
