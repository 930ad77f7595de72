"""What ``make up`` starts and where: read once from the environment by :class:`LauncherSettings`.

Every knob has a default that gives the documented layout (gateway 8080, auth
8081, scheduler 8082, executors 8083 and 8084, a second scheduler 8085,
embedded NATS on 4222 and Postgres on 5432).  Ports are *preferred* ports: a
port that is already taken is replaced by a free one, and the launcher says so.
An empty variable means its default; a value that cannot be used is a
:class:`ConfigError` naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]

# Service name -> module; the order is the start order (auth first: others read its JWKS).
SERVICE_MODULES: dict[str, str] = {
    "auth": "services.auth",
    "gateway": "services.gateway",
    "scheduler": "services.scheduler",
    "executor": "services.executor",
}


class ConfigError(ValueError):
    """A launcher setting has a value that cannot be used."""


@dataclass(frozen=True)
class LauncherConfig:
    local_dir: Path
    nats_url: str | None
    database_url: str | None
    nats_port: int = 4222
    pg_port: int = 5432
    database: str = "ipaas"
    host: str = "127.0.0.1"
    gateway_port: int = 8080
    auth_port: int = 8081
    scheduler_ports: tuple[int, ...] = (8082, 8085)
    executor_ports: tuple[int, ...] = (8083, 8084)
    services: tuple[str, ...] = tuple(SERVICE_MODULES)
    log_level: str = "INFO"
    grace_seconds: float = 30.0
    ready_timeout_seconds: float = 120.0
    restart_backoff_max_seconds: float = 30.0
    passthrough_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def state_file(self) -> Path:
        return self.local_dir / "launcher.json"

    @property
    def lock_file(self) -> Path:
        return self.local_dir / "launcher.lock"

    @property
    def keys_dir(self) -> Path:
        return self.local_dir / "keys"

    @property
    def nats_users_file(self) -> Path:
        """Passwords of the embedded NATS's identities (0600; see deploy/local/nats_users.py)."""
        return self.local_dir / "nats-users.json"

    @property
    def pg_users_file(self) -> Path:
        """Passwords of the embedded Postgres's roles (0600; see deploy/local/pg_roles.py)."""
        return self.local_dir / "pg-users.json"

    @property
    def nats_config_file(self) -> Path:
        """The embedded NATS's authorization config (0600), rewritten on every start."""
        return self.local_dir / "nats-authz.conf"


def _integer(raw: Any) -> Any:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"must be an integer, got {raw!r}") from None


def _port(value: int) -> int:
    if not 0 < value < 65536:
        raise ValueError(f"must be a TCP port (1-65535), got {value}")
    return value


def _ports(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        ports = tuple(int(p) for p in raw.split(",") if p.strip())
    except ValueError:
        raise ValueError(f"must be a comma-separated list of ports, got {raw!r}") from None
    return tuple(_port(p) for p in ports)


def _positive(raw: Any) -> Any:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"must be a number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"must be positive, got {value}")
    return value


Int = Annotated[int, BeforeValidator(_integer)]
Port = Annotated[int, BeforeValidator(_integer), AfterValidator(_port)]
Ports = Annotated[tuple[int, ...] | None, BeforeValidator(_ports)]
Positive = Annotated[float, BeforeValidator(_positive)]


class LauncherSettings(BaseSettings):
    """The launcher's variables (README, "Launcher"), each with its one default.

    :func:`load` passes the process environment, or the mapping it is given: nothing else is read.
    """

    model_config = SettingsConfigDict(extra="ignore")

    local_dir: str = Field(default="", validation_alias="IPAAS_LOCAL_DIR")  # empty: <repository>/.local
    nats_url: str = Field(default="", validation_alias="NATS_URL")  # empty: start an embedded NATS
    database_url: str = Field(default="", validation_alias="DATABASE_URL")  # empty: an embedded Postgres
    nats_port: Port = Field(default=4222, validation_alias="IPAAS_LOCAL_NATS_PORT")
    pg_port: Port = Field(default=5432, validation_alias="IPAAS_LOCAL_PG_PORT")
    # The other ports follow it unless set: auth +1, schedulers +2 and +5, executors +3 and +4.
    base_port: Port = Field(default=8080, validation_alias="IPAAS_LOCAL_BASE_PORT")
    gateway_port: Port | None = Field(default=None, validation_alias="IPAAS_LOCAL_GATEWAY_PORT")
    auth_port: Port | None = Field(default=None, validation_alias="IPAAS_LOCAL_AUTH_PORT")
    scheduler_ports: Ports = Field(default=None, validation_alias="IPAAS_LOCAL_SCHEDULER_PORTS")
    executor_ports: Ports = Field(default=None, validation_alias="IPAAS_LOCAL_EXECUTOR_PORTS")
    scheduler_replicas: Int = Field(default=2, validation_alias="IPAAS_LOCAL_SCHEDULER_REPLICAS")
    executor_replicas: Int = Field(default=2, validation_alias="IPAAS_LOCAL_EXECUTOR_REPLICAS")
    services: str = Field(default="all", validation_alias="IPAAS_LOCAL_SERVICES")
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    grace_seconds: Positive = Field(default=30.0, validation_alias="IPAAS_LOCAL_GRACE_SECONDS")
    ready_timeout_seconds: Positive = Field(default=120.0, validation_alias="IPAAS_LOCAL_READY_TIMEOUT_SECONDS")
    restart_backoff_max_seconds: Positive = Field(
        default=30.0, validation_alias="IPAAS_LOCAL_RESTART_BACKOFF_MAX_SECONDS"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)  # only the mapping load() passes

    @field_validator("*", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("services")
    @classmethod
    def _known(cls, value: str) -> str:
        if value.lower() in ("all", "none"):
            return value.lower()
        unknown = [s.strip() for s in value.lower().split(",") if s.strip() and s.strip() not in SERVICE_MODULES]
        if unknown:
            raise ValueError(f"unknown service(s) {unknown}; known: {list(SERVICE_MODULES)}")
        return value.lower()

    def chosen_services(self) -> tuple[str, ...]:
        if self.services == "all":
            return tuple(SERVICE_MODULES)
        wanted = {s.strip() for s in self.services.split(",")}
        return tuple(s for s in SERVICE_MODULES if s in wanted)


def _replicas(name: str, listed: tuple[int, ...] | None, defaults: tuple[int, ...], replicas: int) -> tuple[int, ...]:
    if replicas < 0:
        raise ConfigError(f"replica count for {name} must be >= 0")
    ports = (listed if listed is not None else defaults)[:replicas]
    # More replicas than listed ports: continue after the highest one.
    while len(ports) < replicas:
        ports = (*ports, (max(ports) if ports else 8090) + 1)
    return ports


def load(env: Mapping[str, str] | None = None) -> LauncherConfig:
    """Read the launcher's settings (``IPAAS_LOCAL_*``, ``NATS_URL``, ``DATABASE_URL``, ``LOG_LEVEL``)."""
    env = os.environ if env is None else env
    try:
        s = LauncherSettings.model_validate({name: value for name, value in env.items() if value.strip()})
    except ValidationError as exc:
        first = exc.errors()[0]
        error = first.get("ctx", {}).get("error", first["msg"])
        raise ConfigError(f"{first['loc'][0]} {error}") from None
    local_dir = Path(s.local_dir or REPO_ROOT / ".local")
    if not local_dir.is_absolute():
        local_dir = Path.cwd() / local_dir
    base = s.base_port
    return LauncherConfig(
        local_dir=local_dir.resolve(),
        nats_url=s.nats_url or None,
        database_url=s.database_url or None,
        nats_port=s.nats_port,
        pg_port=s.pg_port,
        gateway_port=base if s.gateway_port is None else s.gateway_port,
        auth_port=base + 1 if s.auth_port is None else s.auth_port,
        scheduler_ports=_replicas(
            "IPAAS_LOCAL_SCHEDULER_PORTS", s.scheduler_ports, (base + 2, base + 5), s.scheduler_replicas
        ),
        executor_ports=_replicas(
            "IPAAS_LOCAL_EXECUTOR_PORTS", s.executor_ports, (base + 3, base + 4), s.executor_replicas
        ),
        services=s.chosen_services() if s.services != "none" else (),
        log_level=s.log_level,
        grace_seconds=s.grace_seconds,
        ready_timeout_seconds=s.ready_timeout_seconds,
        restart_backoff_max_seconds=s.restart_backoff_max_seconds,
        passthrough_env=dict(env),
    )
