"""What ``make up`` starts and where: read once from the environment by :class:`LauncherConfig`.

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
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BeforeValidator, Field, PrivateAttr, ValidationError, field_validator
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


Replicas = Annotated[int, BeforeValidator(_integer), Field(ge=0)]
Port = Annotated[int, BeforeValidator(_integer), AfterValidator(_port)]
Ports = Annotated[tuple[int, ...] | None, BeforeValidator(_ports)]
Positive = Annotated[float, BeforeValidator(_positive)]


class LauncherConfig(BaseSettings):
    """The launcher's variables (README, "Launcher"), each with its one default, and what follows from them.

    :func:`load` passes the process environment, or the mapping it is given: nothing else is read.
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    local_dir: Path = Field(default=REPO_ROOT / ".local", validation_alias="IPAAS_LOCAL_DIR")
    nats_url: str | None = Field(default=None, validation_alias="NATS_URL")  # None: start an embedded NATS
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")  # None: an embedded Postgres
    nats_port: Port = Field(default=4222, validation_alias="IPAAS_LOCAL_NATS_PORT")
    pg_port: Port = Field(default=5432, validation_alias="IPAAS_LOCAL_PG_PORT")
    # The service ports follow it unless set: auth +1, schedulers +2 and +5, executors +3 and +4.
    base_port: Port = Field(default=8080, validation_alias="IPAAS_LOCAL_BASE_PORT")
    gateway_port_set: Port | None = Field(default=None, validation_alias="IPAAS_LOCAL_GATEWAY_PORT")
    auth_port_set: Port | None = Field(default=None, validation_alias="IPAAS_LOCAL_AUTH_PORT")
    scheduler_ports_set: Ports = Field(default=None, validation_alias="IPAAS_LOCAL_SCHEDULER_PORTS")
    executor_ports_set: Ports = Field(default=None, validation_alias="IPAAS_LOCAL_EXECUTOR_PORTS")
    scheduler_replicas: Replicas = Field(default=2, validation_alias="IPAAS_LOCAL_SCHEDULER_REPLICAS")
    executor_replicas: Replicas = Field(default=2, validation_alias="IPAAS_LOCAL_EXECUTOR_REPLICAS")
    services_set: str = Field(default="all", validation_alias="IPAAS_LOCAL_SERVICES")
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    grace_seconds: Positive = Field(default=30.0, validation_alias="IPAAS_LOCAL_GRACE_SECONDS")
    ready_timeout_seconds: Positive = Field(default=120.0, validation_alias="IPAAS_LOCAL_READY_TIMEOUT_SECONDS")
    restart_backoff_max_seconds: Positive = Field(
        default=30.0, validation_alias="IPAAS_LOCAL_RESTART_BACKOFF_MAX_SECONDS"
    )
    # Not settings: the embedded Postgres's database, and where the servers and services listen.
    database: ClassVar[str] = "ipaas"
    host: ClassVar[str] = "127.0.0.1"
    _env: dict[str, str] = PrivateAttr(default_factory=dict)

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

    @field_validator("local_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return (value if value.is_absolute() else Path.cwd() / value).resolve()

    @field_validator("services_set")
    @classmethod
    def _known(cls, value: str) -> str:
        unknown = [s for s in _names(value) if s not in SERVICE_MODULES and s not in ("all", "none")]
        if unknown:
            raise ValueError(f"unknown service(s) {unknown}; known: {list(SERVICE_MODULES)}")
        return value.lower()

    @property
    def passthrough_env(self) -> dict[str, str]:
        """The environment the launcher was started with: every service gets it, plus its own variables."""
        return self._env

    @property
    def gateway_port(self) -> int:
        return self.base_port if self.gateway_port_set is None else self.gateway_port_set

    @property
    def auth_port(self) -> int:
        return self.base_port + 1 if self.auth_port_set is None else self.auth_port_set

    @property
    def scheduler_ports(self) -> tuple[int, ...]:
        return _replicas(self.scheduler_ports_set, (self.base_port + 2, self.base_port + 5), self.scheduler_replicas)

    @property
    def executor_ports(self) -> tuple[int, ...]:
        return _replicas(self.executor_ports_set, (self.base_port + 3, self.base_port + 4), self.executor_replicas)

    @property
    def services(self) -> tuple[str, ...]:
        wanted = _names(self.services_set)
        if "none" in wanted:
            return ()
        return tuple(s for s in SERVICE_MODULES if "all" in wanted or s in wanted)

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


def _names(value: str) -> list[str]:
    return [s.strip() for s in value.lower().split(",") if s.strip()]


def _replicas(ports: tuple[int, ...] | None, defaults: tuple[int, ...], replicas: int) -> tuple[int, ...]:
    """One port per replica: the ports set (else ``defaults``), cut to ``replicas``."""
    ports = (defaults if ports is None else ports)[:replicas]
    # More replicas than listed ports: continue after the highest one.
    while len(ports) < replicas:
        ports = (*ports, (max(ports) if ports else 8090) + 1)
    return ports


def load(env: Mapping[str, str] | None = None) -> LauncherConfig:
    """Read the launcher's settings (``IPAAS_LOCAL_*``, ``NATS_URL``, ``DATABASE_URL``, ``LOG_LEVEL``).

    An empty variable means its default; a value that cannot be used is a :class:`ConfigError`
    naming the variable.
    """
    env = os.environ if env is None else env
    try:
        config = LauncherConfig.model_validate({name: value for name, value in env.items() if value.strip()})
    except ValidationError as exc:
        first = exc.errors()[0]
        error = first.get("ctx", {}).get("error", first["msg"])
        raise ConfigError(f"{first['loc'][0]} {error}") from None
    config._env = dict(env)
    return config
