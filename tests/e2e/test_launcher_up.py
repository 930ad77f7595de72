"""``make up`` (``python -m deploy.local``) end to end: ready, healthy, and nothing left behind.

The launcher runs with NATS_URL / DATABASE_URL unset, free ports and a temp data
directory.  It starts whatever services exist in the tree, so these tests hold
both before and after every service is built.
"""

from __future__ import annotations

import os
import signal
import socket
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import nats
import psutil
import pytest

from deploy.local.config import SERVICE_MODULES
from deploy.local.infra import port_in_use
from deploy.local.services import service_exists
from tests.e2e.conftest import launch_to_the_end
from tests.helpers.factories import execute_once, fetch_once, fetchval_once
from tests.helpers.launcher import Run, database_url_as, launcher_env, nats_admin_url
from tests.helpers.wait import wait_until_sync

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def _expected_instances() -> set[str]:
    names: set[str] = set()
    for service in SERVICE_MODULES:
        if not service_exists(service):
            continue
        if service in ("scheduler", "executor"):
            names |= {f"{service}-1", f"{service}-2"}
        else:
            names.add(service)
    return names


def _http_status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - a local test URL
        return int(resp.status)


def _port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def _assert_all_gone(procs: list[psutil.Process]) -> None:
    def gone() -> bool:
        return not [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    wait_until_sync(gone, timeout=10, interval=0.1, message="every child of the launcher to exit")


async def _schema_versions(dsn: str) -> set[str]:
    return {r["version"] for r in await fetch_once(dsn, "SELECT version FROM schema_migrations")}


def _crash_one_and_see_it_restarted(run: Run, state: dict[str, Any]) -> None:
    """SIGKILL one service instance: the launcher starts it again and it becomes ready."""
    name, url = sorted(state["services"].items())[-1]
    old = next(r["pid"] for r in state["processes"] if r["name"] == name)
    os.kill(old, signal.SIGKILL)

    def back() -> bool:
        pids = [r["pid"] for r in run.state()["processes"] if r["name"] == name]
        if not pids or pids[0] == old:
            return False
        try:
            return _http_status(f"{url}/health/ready") == 200
        except OSError:
            return False

    wait_until_sync(back, timeout=40, interval=0.2, message=f"{name} to be restarted and ready")
    assert f"[{name}]" in run.output() and "restarting in" in run.output()


async def test_up_starts_everything_that_exists_and_sigterm_leaves_no_process(local_dir: Path, launch: Any) -> None:
    env = launcher_env(local_dir)
    run = launch(env)
    state = run.wait_ready()

    # Every service in the tree runs (two schedulers, two executors) and is healthy.
    assert set(state["services"]) == _expected_instances()
    assert state["ready"] is True
    for url in state["services"].values():
        assert _http_status(f"{url}/health/live") == 200
        assert _http_status(f"{url}/health/ready") == 200

    # The embedded servers are ours, on the ports we asked for, with the data under the temp dir.
    if f"port {env['IPAAS_LOCAL_NATS_PORT']} is already in use" not in run.output():  # a race for a free port
        assert _port_of(state["nats_url"]) == int(env["IPAAS_LOCAL_NATS_PORT"])
    assert (local_dir / "nats").is_dir() and (local_dir / "pg" / "PG_VERSION").is_file()
    nc = await nats.connect(nats_admin_url(state))
    assert (await nc.jetstream().account_info()) is not None
    await nc.close()
    assert "0001_core" in await _schema_versions(database_url_as(state))

    if state["services"]:
        _crash_one_and_see_it_restarted(run, state)

    infra_pids = {r["pid"] for r in run.state()["processes"] if r["name"] in ("nats-server", "postgres")}
    family = run.descendants()
    assert infra_pids <= {p.pid for p in family}

    assert run.terminate() == 0
    _assert_all_gone(family)
    assert not port_in_use(_port_of(state["nats_url"]))
    assert not port_in_use(_port_of(state["database_url"].rsplit("/", 1)[0]))
    for url in state["services"].values():
        assert not port_in_use(_port_of(url))
    assert "[local]" in run.output() and "stopped" in run.output().splitlines()[-1]


async def test_restart_keeps_state_after_a_killed_launcher_and_taken_ports_move(local_dir: Path, launch: Any) -> None:
    # Somebody else's servers hold the preferred ports: the launcher must not attach to them.
    squatters = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    nats_port, pg_port = (s.getsockname()[1] for s in squatters)
    env = launcher_env(
        local_dir, IPAAS_LOCAL_SERVICES="none", IPAAS_LOCAL_NATS_PORT=str(nats_port), IPAAS_LOCAL_PG_PORT=str(pg_port)
    )
    try:
        first = launch(env)
        state = first.wait_ready()
    finally:
        for s in squatters:
            s.close()
    out = first.output()
    assert f"port {nats_port} is already in use" in out and f"port {pg_port} is already in use" in out
    assert _port_of(state["nats_url"]) != nats_port

    # A second launcher on the same data directory is refused while the first runs.
    second = launch_to_the_end(env, timeout=30)
    assert second.returncode == 1 and "already running" in second.stdout

    # Write state: a row in Postgres, a message in a JetStream stream.
    kept = uuid.UUID("7d1c6ac8-52f0-4a55-9a0b-3a5b0c7f0001")
    await execute_once(database_url_as(state), "INSERT INTO tenants (id, name) VALUES ($1, 'kept')", kept)
    nc = await nats.connect(nats_admin_url(state))
    js = nc.jetstream()
    await js.add_stream(name="KEEP", subjects=["keep.>"])
    await js.publish("keep.one", b"still here")
    await nc.close()

    # The launcher dies without cleaning up; its embedded servers are orphaned.
    orphans = first.descendants()
    first.proc.kill()
    first.proc.wait(10)

    rerun = launch(IPAAS_LOCAL_SERVICES="none")
    state2 = rerun.wait_ready()
    assert "left over from an earlier run" in rerun.output()
    _assert_all_gone(orphans)
    assert "created database" not in rerun.output()

    assert await fetchval_once(database_url_as(state2), "SELECT name FROM tenants WHERE id = $1", kept) == "kept"
    nc = await nats.connect(nats_admin_url(state2))
    msg = await nc.jetstream().get_last_msg("KEEP", "keep.one")
    assert msg.data == b"still here"
    await nc.close()

    family = rerun.descendants()
    assert rerun.terminate() == 0
    _assert_all_gone(family)


async def test_given_urls_are_used_as_they_are_and_nothing_is_embedded(
    local_dir: Path, launch: Any, nats_url: str, database_url: str
) -> None:
    run = launch(IPAAS_LOCAL_SERVICES="none", NATS_URL=nats_url, DATABASE_URL=database_url)
    state = run.wait_ready()
    assert state["nats_url"] == nats_url and state["database_url"] == database_url
    assert "using NATS at NATS_URL" in run.output() and "using Postgres at DATABASE_URL" in run.output()
    assert "migrations: 0 applied" in run.output()  # the test database is already migrated
    assert state["processes"] == []
    assert not [p for p in run.descendants() if p.name() in ("nats-server", "postgres")]
    assert not (local_dir / "nats").exists() and not (local_dir / "pg").exists()
    assert run.terminate() == 0
    # The servers we were given are still up: the launcher stopped nothing of theirs.
    nc = await nats.connect(nats_url)
    await nc.close()
    assert "0001_core" in await _schema_versions(database_url)
