"""Shared configuration, read from the environment with pydantic-settings.

Names a user expects (``NATS_URL``, ``DATABASE_URL``, ``LOG_LEVEL``, ``OTEL_*``)
are read as they are; everything else uses the ``IPAAS_`` prefix.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.logs.trace_links import check_template


def split_list(value: str) -> list[str]:
    """The items of a comma-separated setting, blanks dropped."""
    return [item.strip() for item in value.split(",") if item.strip()]


class NatsSettings(BaseSettings):
    """``NATS_URL`` plus the stream layout (``IPAAS_NATS_*``)."""

    model_config = SettingsConfigDict(env_prefix="IPAAS_NATS_", extra="ignore")

    url: str = Field(default="nats://127.0.0.1:4222", validation_alias="NATS_URL")
    events_stream: str = "EVENTS"
    events_subjects: str = "events.>"
    dlq_stream: str = "DLQ"
    dlq_subjects: str = "dlq.>"
    changes_stream: str = "WORKFLOW_CHANGES"
    changes_subjects: str = "workflows.changed.>"
    # Dedup window: covers the retry horizon of common webhook senders (minutes
    # to a few hours).  Memory cost: JetStream keeps one entry (message id and
    # sequence, roughly 100 bytes) per message received inside the window.
    duplicate_window_seconds: float = 2 * 3600.0
    # Bounded streams.  EVENTS is a work queue (an acked event leaves it) that refuses new messages
    # when full, so ingest answers 503 with Retry-After instead of losing or evicting accepted events.
    # max_age drops an event nobody consumed for that long.  DLQ evicts its oldest copies when full
    # (every dead letter is also a Postgres row).  -1 = unlimited.
    events_max_bytes: int = Field(default=1 << 30, ge=-1)
    events_max_age_seconds: float = Field(default=7 * 24 * 3600.0, ge=0)
    dlq_max_bytes: int = Field(default=1 << 30, ge=-1)
    dlq_max_age_seconds: float = Field(default=30 * 24 * 3600.0, ge=0)
    replicas: int = 1
    publish_timeout_seconds: float = 5.0
    # CA certificate(s) (PEM) that sign the NATS servers' certificate, for a tls:// NATS_URL; empty: the
    # system's CAs.  Only this connection uses it.
    tls_ca_file: str = ""
    # Whether a service may create and update the streams and its durable consumer itself at start-up
    # (development and tests against an open NATS).  Off: it only checks that they exist and waits,
    # not ready, until the provisioning step (python -m deploy.provision) has made them.
    provision: bool = False


class DatabaseSettings(BaseSettings):
    """``DATABASE_URL`` and the pool size (``IPAAS_DB_*``)."""

    model_config = SettingsConfigDict(env_prefix="IPAAS_DB_", extra="ignore")

    url: str = Field(default="postgresql://postgres@127.0.0.1:5432/ipaas", validation_alias="DATABASE_URL")
    pool_min: int = 1
    pool_max: int = 10
    command_timeout_seconds: float = 10.0


class HttpSettings(BaseSettings):
    """Where a service's HTTP server listens (``IPAAS_HTTP_*``).

    ``/metrics`` is served on its own listener, ``metrics_port`` (0: none), never on
    ``port``: the public port of the gateway, and every port a request can be forwarded
    to, carry no operational data.  Unset, both follow the service (``ServiceSettings.port``).
    """

    model_config = SettingsConfigDict(env_prefix="IPAAS_HTTP_", extra="ignore")

    host: str = "0.0.0.0"  # noqa: S104 - a service in a pod listens on all interfaces
    port: int = 8080
    metrics_port: int = Field(default=9080, ge=0, le=65535)
    shutdown_grace_seconds: float = 20.0


class ScheduleSettings(BaseSettings):
    """The shortest schedule interval (``IPAAS_SCHEDULE_*``), read by the gateway and the scheduler.

    The gateway refuses to save a schedule that fires more often (422
    ``schedule_too_frequent``); the scheduler does not fire a stored version that does (it
    records ``schedule_error``).  Give both services the same value.
    """

    model_config = SettingsConfigDict(env_prefix="IPAAS_SCHEDULE_", extra="ignore")

    # Seconds between two fire times at the least; cron with seconds included (see
    # libs/common/models/workflows.py shortest_gap_seconds).
    min_interval_seconds: int = Field(default=10, ge=1, le=24 * 3600)


class ServiceSettings(BaseSettings):
    """The base every service's settings class extends.

    Each service's class sets ``env_prefix`` to ``IPAAS_<SERVICE>_``, ``service`` to its name
    and ``port`` to its default listen port (metrics listen 1000 above it); the fields below
    that have no fixed variable name are read under that prefix.
    """

    model_config = SettingsConfigDict(env_prefix="IPAAS_<SERVICE>_", extra="ignore")
    service: ClassVar[str] = ""
    port: ClassVar[int] = 8080

    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    dev_mode: bool = Field(default=False, validation_alias="IPAAS_DEV_MODE")
    # A trace UI's address for a trace id, with "{trace_id}" where the id goes (Jaeger:
    # http://jaeger:16686/trace/{trace_id}); warnings and errors that carry a trace id add it as trace_url.
    trace_url_template: str = Field(default="", validation_alias="IPAAS_TRACE_URL_TEMPLATE")
    nats: NatsSettings = Field(default_factory=NatsSettings)
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    # Reply inboxes (PubAcks, request replies) live under this prefix, so NATS authorization can keep
    # each identity's replies private; empty: _INBOX_<service>, the prefix that identity may read.
    nats_inbox_prefix: str = ""

    @field_validator("trace_url_template")
    @classmethod
    def _trace_url_template(cls, value: str) -> str:
        return check_template(value)

    @model_validator(mode="after")
    def _service_defaults(self) -> ServiceSettings:
        if not self.nats_inbox_prefix:
            self.nats_inbox_prefix = f"_INBOX_{self.service}"  # libs.common.bus.permissions.inbox_prefix
        if "port" not in self.http.model_fields_set:
            self.http.port = self.port
        if "metrics_port" not in self.http.model_fields_set:
            self.http.metrics_port = self.port + 1000
        return self
