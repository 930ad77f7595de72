"""The scheduler's settings: the shared base plus ``IPAAS_SCHEDULER_*`` knobs."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.settings import ScheduleSettings, ServiceSettings


class SchedulerOptions(BaseSettings):
    """Knobs of the scheduler (each documented in docs/scheduler.md)."""

    model_config = SettingsConfigDict(env_prefix="IPAAS_SCHEDULER_", extra="ignore")

    # Full reload from Postgres, on top of the change feed: a safety net.
    resync_interval_seconds: float = Field(default=300.0, gt=0)
    # Missed slots older than this are neither fired nor recorded (catch-up "all" and "skip").
    catchup_window_seconds: int = Field(default=24 * 3600, ge=1)
    # At most this many missed slots per workflow are handled (the newest ones).
    max_catchup_slots: int = Field(default=1000, ge=1)
    # Missed slots this recent are fired rather than recorded as skipped: another
    # replica may be firing them right now, and JetStream dedup makes that safe.
    misfire_grace_seconds: int = Field(default=5, ge=0)
    # Publishes in flight: PubAcks awaited at once while a batch of due slots is published.
    fire_concurrency: int = Field(default=1000, ge=1)
    # A replica fires the slots of the workflows it does not own (services/scheduler/peers.py) this much
    # later than their owner, as a backup (0: every replica fires every slot at its time).
    backup_delay_seconds: float = Field(default=2.0, ge=0)
    # How often a replica announces itself to the others (three missed: it is gone).
    peer_heartbeat_seconds: float = Field(default=1.0, gt=0)
    # Backoff between publish attempts while NATS cannot store an event.
    retry_max_seconds: float = Field(default=5.0, gt=0)
    # Longest single wait of the timer loop (it re-reads the clock after each wait).
    max_sleep_seconds: float = Field(default=30.0, gt=0)
    # Before publishing, due slots are checked against the version current at the slot (one
    # query per batch); past this the batch fires with the versions held.
    version_check_timeout_seconds: float = Field(default=1.0, gt=0)
    # Time allowed at shutdown to finish publishes in flight and write progress (one budget).
    drain_seconds: float = Field(default=10.0, gt=0)
    # The shortest schedule interval (IPAAS_SCHEDULE_MIN_INTERVAL_SECONDS, shared with the gateway):
    # a stored version firing more often is not loaded and gets a schedule_error.
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)


class SchedulerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IPAAS_SCHEDULER_", extra="ignore")
    service: ClassVar[str] = "scheduler"
    port: ClassVar[int] = 8082

    scheduler: SchedulerOptions = Field(default_factory=SchedulerOptions)
