"""What ``make up`` starts and where: read once from the environment.

Every knob has a default that gives the documented layout (gateway 8080, auth
8081, scheduler 8082, executors 8083 and 8084, a second scheduler 8085,
embedded NATS on 4222 and Postgres on 5432).  Ports are *preferred* ports: a
port that is already taken is replaced by a free one, and the launcher says so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

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


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not 0 < value < 65536 and name.endswith("_PORT"):
        raise ConfigError(f"{name} must be a TCP port (1-65535), got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value}")
    return value


def _ports(env: Mapping[str, str], name: str, defaults: tuple[int, ...], replicas: int) -> tuple[int, ...]:
    raw = env.get(name, "").strip()
    if raw:
        try:
            ports = tuple(int(p) for p in raw.split(",") if p.strip())
        except ValueError:
            raise ConfigError(f"{name} must be a comma-separated list of ports, got {raw!r}") from None
    else:
        ports = defaults
    if replicas < 0:
        raise ConfigError(f"replica count for {name} must be >= 0")
    ports = ports[:replicas]
    # More replicas than listed ports: continue after the highest one.
    while len(ports) < replicas:
        ports = (*ports, (max(ports) if ports else 8090) + 1)
    for p in ports:
        if not 0 < p < 65536:
            raise ConfigError(f"{name}: {p} is not a TCP port")
    return ports


def _services(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("IPAAS_LOCAL_SERVICES", "all").strip().lower()
    if raw in ("", "all"):
        return tuple(SERVICE_MODULES)
    if raw == "none":
        return ()
    wanted = [s.strip() for s in raw.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SERVICE_MODULES]
    if unknown:
        raise ConfigError(f"IPAAS_LOCAL_SERVICES: unknown service(s) {unknown}; known: {list(SERVICE_MODULES)}")
    return tuple(s for s in SERVICE_MODULES if s in wanted)


def load(env: Mapping[str, str] | None = None) -> LauncherConfig:
    """Read the launcher's settings (``IPAAS_LOCAL_*``, ``NATS_URL``, ``DATABASE_URL``, ``LOG_LEVEL``)."""
    env = os.environ if env is None else env
    local_dir = Path(env.get("IPAAS_LOCAL_DIR", "").strip() or REPO_ROOT / ".local")
    if not local_dir.is_absolute():
        local_dir = Path.cwd() / local_dir
    base = _int(env, "IPAAS_LOCAL_BASE_PORT", 8080)
    schedulers = _int(env, "IPAAS_LOCAL_SCHEDULER_REPLICAS", 2)
    executors = _int(env, "IPAAS_LOCAL_EXECUTOR_REPLICAS", 2)
    return LauncherConfig(
        local_dir=local_dir.resolve(),
        nats_url=env.get("NATS_URL", "").strip() or None,
        database_url=env.get("DATABASE_URL", "").strip() or None,
        nats_port=_int(env, "IPAAS_LOCAL_NATS_PORT", 4222),
        pg_port=_int(env, "IPAAS_LOCAL_PG_PORT", 5432),
        gateway_port=_int(env, "IPAAS_LOCAL_GATEWAY_PORT", base),
        auth_port=_int(env, "IPAAS_LOCAL_AUTH_PORT", base + 1),
        scheduler_ports=_ports(env, "IPAAS_LOCAL_SCHEDULER_PORTS", (base + 2, base + 5), schedulers),
        executor_ports=_ports(env, "IPAAS_LOCAL_EXECUTOR_PORTS", (base + 3, base + 4), executors),
        services=_services(env),
        log_level=env.get("LOG_LEVEL", "").strip() or "INFO",
        grace_seconds=_float(env, "IPAAS_LOCAL_GRACE_SECONDS", 30.0),
        ready_timeout_seconds=_float(env, "IPAAS_LOCAL_READY_TIMEOUT_SECONDS", 120.0),
        restart_backoff_max_seconds=_float(env, "IPAAS_LOCAL_RESTART_BACKOFF_MAX_SECONDS", 30.0),
        passthrough_env=dict(env),
    )
