"""The embedded NATS and Postgres that ``make up`` runs when ``NATS_URL`` / ``DATABASE_URL`` are unset.

Data lives under the local directory (``nats/`` and ``pg/``), so a restart keeps
every stream, message and row.  An external server is never touched: when the
URL is set, it is used as it is and nothing is started.

The embedded NATS runs with authorization: one user per service identity
(:mod:`deploy.local.nats_users`), plus ``admin``, which the launcher provisions the streams
with; ``nats_urls`` holds each identity's URL with its user and password, ``nats_url`` the
bare address (safe to print).

The embedded Postgres takes passwords over TCP: the owner ``ipaas`` (``database_url``, which
the migrations run with) and one role per service (``database_urls``), created by
:mod:`deploy.local.pg_roles` through the superuser's socket, with passwords kept in
``<local dir>/pg-users.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from deploy.local import external_pg
from deploy.local.config import LauncherConfig
from deploy.local.infra import NatsServer, PostgresServer
from deploy.local.nats_authz import stored_passwords
from deploy.local.nats_users import prepare, with_user
from deploy.local.pg_roles import bootstrap, service_urls, with_role
from deploy.local.ports import PortPicker
from deploy.provision import platform_layout
from libs.common.db.roles import ALL_ROLES, OWNER

Announce = Callable[[str], None]


@dataclass
class Infrastructure:
    """What the services connect to, and the embedded servers we own (if any)."""

    nats_url: str = ""
    database_url: str = ""
    nats_urls: dict[str, str] = field(default_factory=dict)  # identity -> URL with its credentials
    database_urls: dict[str, str] = field(default_factory=dict)  # service -> URL as its own role
    pg_passwords: dict[str, str] = field(default_factory=dict)  # role -> password (embedded Postgres)
    nats: NatsServer | None = None
    postgres: PostgresServer | None = None
    owned: list[tuple[str, int]] = field(default_factory=list)

    def start(self, config: LauncherConfig, picker: PortPicker, announce: Announce) -> None:
        """Start what is missing (blocking; called before the event loop runs)."""
        if config.nats_url:
            self.nats_url = config.nats_url
            announce("using NATS at NATS_URL (not starting an embedded server)")
        else:
            port = picker.pick("embedded NATS", config.nats_port)
            passwords = prepare(config.nats_users_file, config.nats_config_file, platform_layout())
            self.nats = NatsServer(config.local_dir / "nats", port, config_file=config.nats_config_file)
            self.nats.start(timeout=30)
            self.nats_url = self.nats.url
            self.nats_urls = {i: with_user(self.nats_url, i, pw) for i, pw in passwords.items()}
            self._own("nats-server", self.nats.pid)
            announce(f"embedded NATS (JetStream) on {self.nats_url}, data in {config.local_dir / 'nats'}")
            announce(f"NATS authorization on: one user per service; passwords in {config.nats_users_file}")
        if config.database_url:
            self.database_url = config.database_url
            announce("using Postgres at DATABASE_URL (not starting an embedded server)")
        else:
            port = picker.pick("embedded Postgres", config.pg_port)
            self.postgres = PostgresServer(config.local_dir / "pg", port, durable=True, password_auth=True)
            self.postgres.start(timeout=60)
            self._own("postgres", self.postgres.pid)
            self.pg_passwords = stored_passwords(config.pg_users_file, ALL_ROLES)
            tcp = self.postgres.dsn(config.database)
            self.database_url = with_role(tcp, OWNER, self.pg_passwords[OWNER])
            self.database_urls = service_urls(tcp, self.pg_passwords)
            announce(f"embedded Postgres on 127.0.0.1:{port}, data in {config.local_dir / 'pg'}")
            announce(
                f"Postgres roles: {OWNER} owns the schema and migrates it, each service has its own role; "
                f"passwords in {config.pg_users_file}"
            )

    def _own(self, name: str, pid: int | None) -> None:
        if pid is not None:
            self.owned.append((name, pid))

    async def ensure_database(self, name: str) -> bool:
        """The embedded Postgres's roles (with their passwords) and application database, owned by ``ipaas``.

        With a given ``DATABASE_URL``: only its database, created if missing and its role may
        (:mod:`deploy.local.external_pg`, which raises ``DatabaseMissing`` with what to run otherwise).
        Returns whether the database was created.
        """
        if self.postgres is None:
            return await external_pg.ensure_database(self.database_url)
        return await bootstrap(self.postgres, name, self.pg_passwords)

    def stop(self, announce: Announce) -> None:
        """Postgres first (it checkpoints), then NATS (it flushes its streams)."""
        if self.postgres is not None and self.postgres.pid is not None:
            announce("stopping embedded Postgres")
            self.postgres.stop(timeout=30)
        if self.nats is not None and self.nats.pid is not None:
            announce("stopping embedded NATS")
            self.nats.stop(timeout=30)
