"""Configuration of the gateway (``IPAAS_GATEWAY_*`` plus the shared JWT and auth names)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from libs.common.http.client_ip import Cidrs
from libs.common.models.api import DRY_RUN_SUBJECT
from libs.common.settings import ScheduleSettings, ServiceSettings


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IPAAS_GATEWAY_", extra="ignore")
    service: ClassVar[str] = "gateway"
    port: ClassVar[int] = 8080

    # Tokens: the same names every verifier reads.
    jwt_issuer: str = Field(default="ipaas", validation_alias="IPAAS_JWT_ISSUER")
    jwt_audience: str = Field(default="ipaas-api", validation_alias="IPAAS_JWT_AUDIENCE")
    jwks_url: str = Field(default="http://127.0.0.1:8081/.well-known/jwks.json", validation_alias="IPAAS_JWKS_URL")
    # Where /api/auth/*, /api/credentials* and /.well-known/jwks.json are forwarded.
    auth_url: str = Field(default="http://127.0.0.1:8081", validation_alias="IPAAS_AUTH_URL")
    auth_timeout_seconds: float = Field(default=10.0, gt=0)
    # Token revocations, polled from auth; empty = the JWKS URL's origin + /internal/token-revocations.
    # A logout is honoured within 2 x the poll interval; a list older than max_stale makes token
    # checks answer 503 instead of accepting a token that might be revoked (0 = keep accepting).
    revocations_url: str = Field(default="", validation_alias="IPAAS_REVOCATIONS_URL")
    revocation_poll_seconds: float = Field(default=2.0, gt=0)
    revocation_max_stale_seconds: float = Field(default=300.0, ge=0)
    # API keys (Authorization: Bearer ipk_...): the live keys are re-read this often, so a revoked key is
    # refused within it; a list older than max_stale makes key requests answer 503.
    api_key_refresh_seconds: float = Field(default=5.0, gt=0)
    api_key_max_stale_seconds: float = Field(default=60.0, gt=0)

    # The client's address: peers whose X-Forwarded-For is believed (the ingress or load balancer
    # in front of the gateway).  Comma-separated CIDRs; empty = the TCP peer is the client.
    trusted_proxies: Cidrs = ""
    # An inbound traceparent from the internet starts a new trace with a link to it, unless true
    # (then it is the parent, as inside a trusted network).
    trust_trace_context: bool = False

    # Request hygiene.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    body_read_timeout_seconds: float = Field(default=10.0, gt=0)
    cors_origins: str = ""  # comma-separated; empty = no CORS headers at all
    # After SIGTERM: readiness is 503 at once; the listener stays open this long so that load
    # balancers stop routing here, then closes and in-flight requests finish (HTTP grace period).
    drain_delay_seconds: float = Field(default=0.0, ge=0)

    # Webhook ingest.
    webhook_tolerance_seconds: int = Field(default=300, ge=1)
    # Bad signatures per source address (IPv6 by /64): a token bucket; an empty one answers every
    # webhook from that source 429 before its body is read.  Only failures spend tokens.
    bad_signature_burst: int = Field(default=20, ge=1)
    bad_signature_per_minute: float = Field(default=20.0, gt=0)
    bad_signature_max_sources: int = Field(default=100_000, ge=10)
    # A tenant's webhook budget across all replicas: each of the IPAAS_GATEWAY_REPLICAS replicas enforces
    # 1/replicas of the rate and of the burst (at least one token), in memory (hooks/ratelimit.py).
    webhook_rate_per_second: float = Field(default=100.0, gt=0)
    webhook_burst: float = Field(default=200.0, ge=1)
    replicas: int = Field(default=1, ge=1, le=1000)
    rate_limit_max_tenants: int = Field(default=100_000, ge=10)
    cache_ttl_seconds: float = Field(default=5.0, ge=0)
    cache_negative_ttl_seconds: float = Field(default=1.0, ge=0)
    cache_max_entries: int = Field(default=100_000, ge=10)
    # While Postgres is unreachable, an expired entry is still served this long past its TTL.
    cache_stale_seconds: float = Field(default=300.0, ge=0)
    publish_timeout_seconds: float = Field(default=2.0, gt=0)
    retry_after_seconds: int = Field(default=2, ge=1)
    webhook_secret_overlap_seconds: int = Field(default=24 * 3600, ge=0)
    # Webhook secrets are sealed at rest with the vault's key-encryption keys: the same names auth
    # reads (the first key seals; all open), or in dev mode the keys generated under the dev directory.
    keks: str | None = Field(default=None, validation_alias="IPAAS_AUTH_KEKS")
    keks_dir: Path | None = Field(default=None, validation_alias="IPAAS_AUTH_KEKS_DIR")
    dev_keys_dir: Path = Field(default=Path(".local/auth"), validation_alias="IPAAS_AUTH_DEV_KEYS_DIR")
    # How often IPAAS_AUTH_KEKS_DIR is re-read (as auth does; 0: never).
    keys_reload_seconds: float = Field(default=30.0, ge=0, validation_alias="IPAAS_AUTH_KEYS_RELOAD_SECONDS")
    # A disable or delete answers once the runs already claimed have finished (at most this long).
    disable_wait_seconds: float = Field(default=10.0, ge=0)

    # Dry-run: NATS request/reply to the executor.
    dry_run_subject: str = DRY_RUN_SUBJECT
    dry_run_timeout_seconds: float = Field(default=15.0, gt=0)

    # Outbox relay.
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    outbox_batch: int = Field(default=100, ge=1, le=10_000)
    outbox_max_backoff_seconds: float = Field(default=5.0, gt=0)
    # A row whose publish keeps failing in an unexpected way is set aside after this many tries
    # (rows JetStream refuses for good are set aside at the first).
    outbox_max_attempts: int = Field(default=5, ge=1)

    # Bulk DLQ replay (POST /api/dlq/replay): dead letters per job at most, per batch (one transaction),
    # the pause between batches, and how often a replica looks for jobs accepted elsewhere or left unfinished.
    replay_max_events: int = Field(default=100_000, ge=1)
    replay_batch: int = Field(default=200, ge=1, le=10_000)
    replay_pause_seconds: float = Field(default=0.05, ge=0)
    replay_poll_seconds: float = Field(default=2.0, gt=0)

    # Pagination (workflows, versions, executions, dead letters).
    page_default: int = Field(default=50, ge=1)
    page_max: int = Field(default=200, ge=1)

    # Quotas (docs/gateway.md, "Quotas").  The shortest schedule interval is shared with the
    # scheduler: IPAAS_SCHEDULE_MIN_INTERVAL_SECONDS.
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    max_workflows_per_tenant: int = Field(default=1000, ge=1)
    # A definition (name, trigger, action as compact JSON) larger than this is refused (422).
    definition_max_bytes: int = Field(default=256 * 1024, ge=1024)
    # Definitions in one page of /api/workflows or /versions add up to at most this (the page
    # ends early, with a cursor); a page always holds at least one.
    page_max_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)

    @model_validator(mode="after")
    def _a_definition_fits_a_page(self) -> GatewaySettings:
        if self.definition_max_bytes > self.page_max_bytes:
            raise ValueError("IPAAS_GATEWAY_DEFINITION_MAX_BYTES may not exceed IPAAS_GATEWAY_PAGE_MAX_BYTES")
        return self
