"""``make up``: embedded infrastructure, migrations, every service, supervised, until Ctrl-C.

Order of events:
1. take the data directory's lock and stop anything a killed earlier run left behind;
2. start the embedded NATS and Postgres unless ``NATS_URL`` / ``DATABASE_URL`` are set (the
   embedded NATS with authorization: each service connects as its own NATS user; the embedded
   Postgres with passwords: each service connects as its own role);
3. create the Postgres roles and the ``ipaas`` database if missing (owned by the role ``ipaas``),
   and apply the migrations as ``ipaas``; with a ``DATABASE_URL`` of yours, create its database if
   missing and its role may, or stop and say what to run;
4. provision the JetStream streams and the executor's durable consumer (as the ``admin`` user
   of the embedded NATS, or with ``NATS_URL``): services may not create them, and wait for them;
5. start every service that exists, prefix its log lines, restart it with backoff if it dies;
6. when every ``/health/ready`` answers 200, print the URLs, a quick-start and ``[local] ready``;
7. on SIGINT, SIGTERM or SIGHUP: stop the services (SIGTERM, grace period, SIGKILL) in
   intake-first order, then Postgres, then NATS, and leave no process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from types import FrameType

import psutil

from deploy.local.config import ConfigError, LauncherConfig, load
from deploy.local.embedded import Infrastructure
from deploy.local.external_pg import DatabaseMissing, database_of
from deploy.local.ports import PortPicker
from deploy.local.quickstart import banner
from deploy.local.readiness import wait_all_ready
from deploy.local.services import plan
from deploy.local.state import (
    AlreadyRunning,
    InstanceLock,
    LauncherState,
    ProcessRecord,
    redact_url,
    stop_leftovers,
)
from deploy.local.supervisor import Supervised, write_line
from deploy.provision import provision_platform
from libs.common.bus.permissions import ADMIN, inbox_prefix
from libs.common.db.migrate import apply_migrations

LABEL = "local"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Stop order: intake first (gateway, schedulers), then the workers, then auth
# (executors may still resolve credentials while they finish in-flight work).
STOP_TIERS = (("gateway", "scheduler"), ("executor",), ("auth",))


class Interrupted(Exception):
    """A stop signal arrived before the event loop was running."""


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


class Launcher:
    def __init__(self, config: LauncherConfig, output: Callable[[str], None]) -> None:
        self.config = config
        self.output = output
        self.width = len("scheduler-10")
        self.infra = Infrastructure()
        self.state = LauncherState(pid=psutil.Process().pid)
        self.supervised: list[Supervised] = []

    def announce(self, text: str) -> None:
        self.output(f"{f'[{LABEL}]'.ljust(self.width + 2)} {text}")

    def _save(self) -> None:
        records = [ProcessRecord.of(name, pid) for name, pid in self.infra.owned]
        records += [ProcessRecord.of(s.spec.name, s.pid) for s in self.supervised if s.pid is not None]
        self.state.processes = records
        self.state.write(self.config.state_file)

    def run(self) -> int:
        lock = InstanceLock(self.config.lock_file)
        try:
            lock.acquire()
        except AlreadyRunning as exc:
            self.announce(str(exc))
            return 1
        for sig in STOP_SIGNALS:
            signal.signal(sig, _raise_interrupted)
        code = 0
        try:
            stop_leftovers(self.config.state_file, self.announce)
            picker = PortPicker(self.announce, self.config.host)
            self.infra.start(self.config, picker, self.announce)
            # Passwords in a URL given by the caller are not written to disk.
            self.state.nats_url = redact_url(self.infra.nats_url)
            self.state.database_url = redact_url(self.infra.database_url)
            if self.infra.nats_urls:
                self.state.nats_users_file = str(self.config.nats_users_file)
            if self.infra.database_urls:
                self.state.pg_users_file = str(self.config.pg_users_file)
            self._save()
            code = asyncio.run(self._main(picker))
        except Interrupted:
            self.announce("interrupted during start-up")
        except DatabaseMissing as exc:
            for line in str(exc).splitlines():
                self.announce(line)
            code = 1
        except Exception as exc:  # noqa: BLE001 - report any start-up failure in one line, then clean up
            self.announce(f"start-up failed: {type(exc).__name__}: {exc}")
            code = 1
        finally:
            for sig in STOP_SIGNALS:
                signal.signal(sig, signal.SIG_IGN)
            self.infra.stop(self.announce)
            _reap_descendants(self.announce)
            self.state.ready = False
            self.supervised = []
            self.infra.owned = []
            self._save()
            lock.release()
            self.announce("stopped")
        return code

    async def _main(self, picker: PortPicker) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stop.set)
        try:
            return await self._serve(picker, stop)
        finally:
            await self._stop_services()
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
                signal.signal(sig, signal.SIG_IGN)

    async def _serve(self, picker: PortPicker, stop: asyncio.Event) -> int:
        config = self.config
        if await self.infra.ensure_database(config.database):
            created = config.database if self.infra.postgres else database_of(self.infra.database_url)
            self.announce(f"created database {created}")
        applied = await apply_migrations(self.infra.database_url)
        self.announce(f"migrations: {len(applied)} applied" + (f" ({', '.join(applied)})" if applied else ""))
        admin = self.infra.nats_urls.get(ADMIN)
        provisioned = await provision_platform(
            admin or self.infra.nats_url, inbox=inbox_prefix(ADMIN) if admin else None, connect_deadline_seconds=30
        )
        self.announce(f"NATS provisioned: {', '.join(provisioned)}")
        specs, missing = plan(
            config,
            picker,
            nats_url=self.infra.nats_url,
            database_url=self.infra.database_url,
            nats_urls=self.infra.nats_urls,
            database_urls=self.infra.database_urls,
        )
        if missing:
            self.announce(f"not built yet, not started: {', '.join(missing)}")
        for spec in specs:
            sup = Supervised(
                spec,
                self.output,
                label_width=self.width,
                backoff_max=config.restart_backoff_max_seconds,
                on_start=lambda _: self._save(),
            )
            self.supervised.append(sup)
            sup.start()
        urls = {s.name: f"http://{config.host}:{s.port}" for s in specs}
        self.state.services = urls
        self._save()
        not_ready = await wait_all_ready(urls, config.ready_timeout_seconds, self.announce, stop)
        if stop.is_set():
            return 0
        if not_ready:
            self.announce(
                f"not ready after {config.ready_timeout_seconds:.0f}s: {', '.join(not_ready)}; "
                "still supervising them (see their log lines above)"
            )
        else:
            self.state.ready = True
            self._save()
            users_file = config.nats_users_file if self.infra.nats_urls else None
            pg_file = config.pg_users_file if self.infra.database_urls else None
            for line in banner(
                urls,
                nats_url=self.infra.nats_url,
                database_url=self.infra.database_url,
                local_dir=config.local_dir,
                nats_users_file=users_file,
                pg_users_file=pg_file,
            ).splitlines():
                self.output(line)
            self.announce(f"ready: {len(specs)} service instance(s) up")
        await stop.wait()
        return 0

    async def _stop_services(self) -> None:
        if not self.supervised:
            return
        self.announce(f"stopping services (SIGTERM, up to {self.config.grace_seconds:.0f}s grace, then SIGKILL)")
        for tier in STOP_TIERS:
            group = [s for s in self.supervised if s.spec.name.split("-")[0] in tier]
            codes = await asyncio.gather(*(s.stop(self.config.grace_seconds) for s in group))
            for sup, code in zip(group, codes, strict=True):
                self.announce(f"{sup.spec.name} stopped (exit code {code})")


def _reap_descendants(announce: Callable[[str], None]) -> None:
    """Last line of defence: nothing we started may outlive us."""
    children = psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.Error):
            announce(f"terminating leftover process {child.pid} ({child.name()})")
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=5)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()


def main() -> int:
    output = write_line(sys.stdout)
    try:
        config = load()
    except ConfigError as exc:
        sys.stderr.write(f"[{LABEL}] configuration error: {exc}\n")
        return 2
    return Launcher(config, output).run()
