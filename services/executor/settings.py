"""The executor's configuration (``IPAAS_EXECUTOR_*``, plus ``IPAAS_EGRESS_ALLOW_CIDRS``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.settings import ServiceSettings, split_list
from libs.common.templates.cache import DEFAULT_CACHE_BYTES
from libs.common.templates.limits import MAX_VALUE_CHARS


class TemplateSettings(BaseSettings):
    """Bounds of rendering one action config (``IPAAS_EXECUTOR_TEMPLATE_*``); see docs/executor.md."""

    model_config = SettingsConfigDict(env_prefix="IPAAS_EXECUTOR_TEMPLATE_", extra="ignore")

    time_limit_ms: float = Field(default=100.0, gt=0)
    max_output_chars: int = Field(default=100_000, ge=1, le=MAX_VALUE_CHARS)
    max_iterations: int = Field(default=1_000_000, ge=1)
    cache_bytes: int = Field(default=DEFAULT_CACHE_BYTES, ge=0)


class ExecutorSettings(ServiceSettings):
    """Every knob has a default; see docs/executor.md for the table."""

    model_config = SettingsConfigDict(env_prefix="IPAAS_EXECUTOR_", extra="ignore")
    service: ClassVar[str] = "executor"
    port: ClassVar[int] = 8083

    # Consumption
    consumer: str = "executor"
    max_in_flight: int = Field(default=256, ge=1, validation_alias="IPAAS_EXECUTOR_MAX_IN_FLIGHT")
    max_ack_pending: int = Field(default=4096, ge=1)
    max_deliver: int = -1
    ack_wait_seconds: float = Field(default=30.0, gt=0)
    fetch_batch: int = Field(default=128, ge=1)
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    grace_seconds: float = Field(default=15.0, ge=0)
    # Ack a finished event with a confirmed round trip (ack_sync) rather than fire-and-forget.
    ack_sync: bool = True
    # How long a claim holds an event's row; heartbeats extend it while the replica works on it.
    lease_seconds: float = Field(default=30.0, gt=0)

    # Fairness (work-conserving, see docs/executor.md)
    fairness_headroom: float = Field(default=0.1, ge=0, lt=1)
    fairness_patience_seconds: float = Field(default=1.0, ge=0)
    fairness_delay_seconds: float = Field(default=1.0, ge=0)
    fairness_refresh_seconds: float = Field(default=0.5, gt=0)

    # Parked events (retries, fairness deferrals, live leases elsewhere) wait in Postgres until due
    deferred_poll_seconds: float = Field(default=0.25, gt=0)
    deferred_batch: int = Field(default=256, ge=1)

    # Stream fullness and consumer lag gauges
    stats_interval_seconds: float = Field(default=5.0, gt=0)

    # Running an action
    action_timeout_seconds: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=6, ge=1, validation_alias="IPAAS_EXECUTOR_MAX_ATTEMPTS")
    backoff_base_seconds: float = Field(default=1.0, gt=0)
    backoff_max_seconds: float = Field(default=300.0, gt=0)
    max_output_bytes: int = Field(default=16_384, ge=256)
    # A multi-step workflow keeps each step's output (for later steps and the execution record) up to this
    # many bytes as JSON; a larger one is kept as a preview (services/executor/steps.py).
    step_output_max_bytes: int = Field(default=16_384, ge=256)
    # The event's payload kept with its execution (masked); larger ones are kept as a preview.
    max_input_bytes: int = Field(default=16_384, ge=256)

    # History retention: finished executions (with their tries and dead letter) older than this are
    # deleted, in batches (0: keep forever); see services/executor/retention.py.
    retention_days: float = Field(default=30.0, ge=0)
    retention_batch: int = Field(default=500, ge=1)
    retention_interval_seconds: float = Field(default=300.0, gt=0)

    # Circuit breakers, per (tenant, connector)
    breaker_fail_max: int = Field(default=5, ge=1)
    breaker_reset_seconds: float = Field(default=60.0, gt=0)

    # Credentials over NATS
    credential_timeout_seconds: float = Field(default=5.0, gt=0)
    credential_cache_seconds: float = Field(default=10.0, ge=0)

    # Workflow definitions (immutable per version) cached in memory
    workflow_cache_size: int = Field(default=10_000, ge=1)

    # Write-behind batching of execution rows
    batch_max: int = Field(default=512, ge=1)
    batch_linger_seconds: float = Field(default=0.001, ge=0)

    # Connectors
    openweather_url: str = "https://api.openweathermap.org"
    slack_hosts: str = "hooks.slack.com"
    # Slack's Web API (chat.postMessage with a bot token), e.g. a fake Slack in tests.
    slack_api_url: str = "https://slack.com"
    discord_hosts: str = "discord.com,discordapp.com,ptb.discord.com,canary.discord.com"
    webhook_allow_http: bool = False
    http_max_redirects: int = Field(default=5, ge=0)
    connections_per_host: int = Field(default=100, ge=1)
    egress_allow_cidrs: str = Field(default="", validation_alias="IPAAS_EGRESS_ALLOW_CIDRS")
    # Action types whose target receives the call's W3C traceparent (comma-separated; empty: none).
    trace_propagation: str = "http_request"

    # Templates (the engine reads the same variables; see services/executor/templates.py)
    templates: TemplateSettings = Field(default_factory=TemplateSettings)

    # Dry runs, answered over NATS request/reply (limits per replica; see services/executor/dry_run_limits.py)
    dry_run_subject: str = "svc.executor.dry_run"
    dry_run_concurrency: int = Field(default=16, ge=1)
    # Requests waiting for a slot; past this the replica answers "busy" (the gateway's 503).
    dry_run_queue: int = Field(default=64, ge=0)
    # A tenant's requests running or waiting; past this it is told to slow down (the gateway's 429).
    dry_run_per_tenant: int = Field(default=4, ge=1)
    # The longest a dry-run may take, waiting included, whatever its requester's timeout.
    dry_run_max_seconds: float = Field(default=30.0, gt=0)

    @field_validator("max_deliver")
    @classmethod
    def _deliver_unlimited_or_positive(cls, value: int) -> int:
        if value == 0 or value < -1:
            raise ValueError("max_deliver is -1 (unlimited) or a positive number")
        return value

    @model_validator(mode="after")
    def _lease_outlives_heartbeats(self) -> ExecutorSettings:
        if self.lease_seconds < 2 * self.heartbeat_seconds:
            raise ValueError("IPAAS_EXECUTOR_LEASE_SECONDS must be at least twice IPAAS_EXECUTOR_HEARTBEAT_SECONDS")
        return self

    def propagating_connectors(self) -> frozenset[str]:
        return frozenset(split_list(self.trace_propagation))

    def headroom_slots(self) -> int:
        """Slots no single tenant may take, so the consumer can look past a slow tenant's backlog."""
        if self.fairness_headroom <= 0 or self.max_in_flight < 2:
            return 0
        return max(1, int(self.max_in_flight * self.fairness_headroom))

    def effective_max_deliver(self) -> int:
        """Deferrals (fairness, open breakers) are deliveries too: keep room above the attempts."""
        if self.max_deliver == -1:
            return -1
        return max(self.max_deliver, self.max_attempts + 1)
