"""The launcher's NATS users and Postgres roles: passwords kept private and stable, each service wired to
its own identity and role, and no password printed."""

from __future__ import annotations

import json
import re
import stat
from dataclasses import replace
from pathlib import Path

from deploy.local.config import load
from deploy.local.nats_authz import render_authorization, stored_passwords
from deploy.local.nats_users import prepare, with_user
from deploy.local.pg_roles import scram_verifier, service_urls, with_role
from deploy.local.ports import PortPicker
from deploy.local.quickstart import banner
from deploy.local.services import plan
from deploy.local.state import redact_url
from libs.common.bus.permissions import LOCAL_IDENTITIES, SERVICES, default_layout
from libs.common.db.roles import ALL_ROLES, OWNER, SERVICE_ROLES
from libs.common.logs import mask_text


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_nats_passwords_are_random_private_and_kept_across_restarts(tmp_path: Path) -> None:
    users, conf = tmp_path / "nats-users.json", tmp_path / "nats-authz.conf"
    first = prepare(users, conf)
    assert set(first) == set(LOCAL_IDENTITIES) and len(set(first.values())) == len(first)
    assert all(len(p) >= 24 for p in first.values())
    assert _mode(users) == 0o600 and _mode(conf) == 0o600
    assert conf.read_text() == render_authorization(first)
    users.chmod(0o644)
    assert prepare(users, conf) == first  # a restart keeps them (and tightens the file again)
    assert _mode(users) == 0o600
    other = prepare(tmp_path / "elsewhere.json", tmp_path / "other.conf")
    assert not set(other.values()) & set(first.values())


def test_the_authorization_follows_the_environments_stream_names(tmp_path: Path) -> None:
    """Renamed streams (IPAAS_NATS_*_STREAM) get the grants the default names would have had."""
    renamed = replace(default_layout(), events="EV2", events_subjects="ev2.>", consumer="exec2")
    first = prepare(tmp_path / "u.json", tmp_path / "a.conf", renamed)
    conf = (tmp_path / "a.conf").read_text()
    assert conf == render_authorization(first, renamed)
    assert '"$JS.API.CONSUMER.MSG.NEXT.EV2.exec2"' in conf and '"ev2.>"' in conf
    assert "CONSUMER.MSG.NEXT.EVENTS" not in conf


def test_a_damaged_or_partial_file_is_repaired(tmp_path: Path) -> None:
    users = tmp_path / "nats-users.json"
    users.write_text("{not json")
    repaired = stored_passwords(users, LOCAL_IDENTITIES)
    assert json.loads(users.read_text()) == repaired
    users.write_text(json.dumps({"auth": "kept", "intruder": "x", "gateway": ""}))
    partial = stored_passwords(users, LOCAL_IDENTITIES)
    assert partial["auth"] == "kept" and partial["gateway"] and set(partial) == set(LOCAL_IDENTITIES)


def test_pg_passwords_are_random_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "pg-users.json"
    path.write_text(json.dumps({"ipaas_gateway": "kept", "postgres": "not ours", "ipaas": ""}))
    passwords = stored_passwords(path, ALL_ROLES)
    assert set(passwords) == set(ALL_ROLES) and passwords["ipaas_gateway"] == "kept"
    assert passwords[OWNER] and len(set(passwords.values())) == len(ALL_ROLES)
    assert _mode(path) == 0o600
    assert json.loads(path.read_text()) == passwords


def test_with_user_adds_or_replaces_credentials_and_logs_mask_them() -> None:
    url = with_user("nats://127.0.0.1:4222", "executor", "p@ss/w:rd")
    assert url == "nats://executor:p%40ss%2Fw%3Ard@127.0.0.1:4222"
    assert with_user("nats://old:secret@h:1", "gateway", "pw") == "nats://gateway:pw@h:1"
    assert "pw" not in mask_text(f"connecting to {with_user('nats://h:1', 'gateway', 'pw-123')}")


def test_with_role_replaces_whoever_the_url_named() -> None:
    url = with_role("postgresql://postgres@127.0.0.1:5/t_1?sslmode=disable", "ipaas_executor", "p")
    assert url == "postgresql://ipaas_executor:p@127.0.0.1:5/t_1?sslmode=disable"
    assert with_role("postgresql://a:b@h:1/d", "ipaas", None) == "postgresql://ipaas@h:1/d"
    url = with_role("postgresql://h:1/d", "ipaas_auth", "s3cret-pw")
    assert "s3cret-pw" not in redact_url(url) and "s3cret-pw" not in mask_text(f"connecting to {url}")


def test_each_service_gets_its_own_identity_inbox_prefix_and_role(tmp_path: Path) -> None:
    cfg = load(
        {
            "IPAAS_LOCAL_DIR": str(tmp_path),
            "IPAAS_LOCAL_BASE_PORT": "18080",
            "IPAAS_GATEWAY_NATS_INBOX_PREFIX": "_INBOX",
        }
    )  # the caller's value would break authorization
    nats_urls = {i: with_user("nats://127.0.0.1:4222", i, f"pw-{i}") for i in SERVICES}
    passwords = {role: f"pw/{role}@x" for role in ALL_ROLES}
    database_urls = service_urls("postgresql://127.0.0.1:5432/ipaas", passwords)
    assert database_urls["gateway"] == "postgresql://ipaas_gateway:pw%2Fipaas_gateway%40x@127.0.0.1:5432/ipaas"
    specs, _ = plan(
        cfg,
        PortPicker(lambda _: None),
        nats_url="nats://127.0.0.1:4222",
        database_url=with_role("postgresql://127.0.0.1:5432/ipaas", OWNER, passwords[OWNER]),
        nats_urls=nats_urls,
        database_urls=database_urls,
    )
    assert specs
    for spec in specs:
        service = spec.name.split("-")[0]
        assert spec.env["NATS_URL"] == nats_urls[service]
        assert spec.env[f"IPAAS_{service.upper()}_NATS_INBOX_PREFIX"] == f"_INBOX_{service}"
        assert spec.env["IPAAS_NATS_PROVISION"] == "false"  # the launcher provisions, as admin
        url = spec.env["DATABASE_URL"]
        assert url == database_urls[service] and f"{SERVICE_ROLES[service]}:" in url and f"{OWNER}:" not in url
    # Without the embedded servers' users, every instance gets the given URLs and the caller's settings.
    specs, _ = plan(
        cfg, PortPicker(lambda _: None), nats_url="nats://u:p@nats:4222", database_url="postgresql://me:pw@db/x"
    )
    assert {s.env["DATABASE_URL"] for s in specs} == {"postgresql://me:pw@db/x"}
    gateway = next(s for s in specs if s.name == "gateway")
    assert gateway.env["NATS_URL"] == "nats://u:p@nats:4222"
    assert gateway.env["IPAAS_GATEWAY_NATS_INBOX_PREFIX"] == "_INBOX"


def test_a_scram_verifier_never_carries_the_password() -> None:
    verifier = scram_verifier("correct-horse", salt=b"0123456789abcdef")
    assert re.fullmatch(r"SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}", verifier)
    assert "correct-horse" not in verifier
    assert verifier == scram_verifier("correct-horse", salt=b"0123456789abcdef")
    assert scram_verifier("correct-horse") != scram_verifier("correct-horse")  # a new salt each time


def test_the_banner_names_the_password_files_but_prints_no_password(tmp_path: Path) -> None:
    text = banner(
        {"gateway": "http://127.0.0.1:8080", "auth": "http://127.0.0.1:8081"},
        nats_url=with_user("nats://127.0.0.1:4222", "admin", "s3cret-pw"),
        database_url=with_role("postgresql://127.0.0.1:5432/ipaas", OWNER, "0wner-pw"),
        local_dir=tmp_path,
        nats_users_file=tmp_path / "nats-users.json",
        pg_users_file=tmp_path / "pg-users.json",
    )
    assert "s3cret-pw" not in text and str(tmp_path / "nats-users.json") in text
    assert "0wner-pw" not in text and "postgresql://ipaas:***@127.0.0.1:5432/ipaas" in text
    assert str(tmp_path / "pg-users.json") in text
