"""``make up`` gives each service its own Postgres role's URL, keeps the passwords private and prints none."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from deploy.local.config import load
from deploy.local.nats_authz import stored_passwords
from deploy.local.pg_roles import scram_verifier, service_urls, with_role
from deploy.local.ports import PortPicker
from deploy.local.quickstart import banner
from deploy.local.services import plan
from deploy.local.state import redact_url
from libs.common.db.roles import ALL_ROLES, OWNER, SERVICE_ROLES
from libs.common.logs import mask_text


def test_each_service_gets_its_own_role_and_password(tmp_path: Path) -> None:
    cfg = load({"IPAAS_LOCAL_DIR": str(tmp_path), "IPAAS_LOCAL_BASE_PORT": "18080"})
    passwords = {role: f"pw/{role}@x" for role in ALL_ROLES}
    urls = service_urls("postgresql://127.0.0.1:5432/ipaas", passwords)
    assert urls["gateway"] == "postgresql://ipaas_gateway:pw%2Fipaas_gateway%40x@127.0.0.1:5432/ipaas"
    specs, _ = plan(
        cfg,
        PortPicker(lambda _: None),
        nats_url="nats://n:1",
        database_url=with_role("postgresql://127.0.0.1:5432/ipaas", OWNER, passwords[OWNER]),
        database_urls=urls,
    )
    assert specs
    for spec in specs:
        service = spec.name.split("-")[0]
        assert spec.env["DATABASE_URL"] == urls[service]
        assert f"{SERVICE_ROLES[service]}:" in spec.env["DATABASE_URL"] and f"{OWNER}:" not in spec.env["DATABASE_URL"]
    # A DATABASE_URL of the caller's is given to every service as it is.
    specs, _ = plan(cfg, PortPicker(lambda _: None), nats_url="nats://n:1", database_url="postgresql://me:pw@db/x")
    assert {s.env["DATABASE_URL"] for s in specs} == {"postgresql://me:pw@db/x"}


def test_with_role_replaces_whoever_the_url_named() -> None:
    assert (
        with_role("postgresql://postgres@127.0.0.1:5/t_1?sslmode=disable", "ipaas_executor", "p")
        == "postgresql://ipaas_executor:p@127.0.0.1:5/t_1?sslmode=disable"
    )
    assert with_role("postgresql://a:b@h:1/d", "ipaas", None) == "postgresql://ipaas@h:1/d"
    url = with_role("postgresql://h:1/d", "ipaas_auth", "s3cret-pw")
    assert "s3cret-pw" not in redact_url(url) and "s3cret-pw" not in mask_text(f"connecting to {url}")


def test_passwords_are_random_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "pg-users.json"
    path.write_text(json.dumps({"ipaas_gateway": "kept", "postgres": "not ours", "ipaas": ""}))
    passwords = stored_passwords(path, ALL_ROLES)
    assert set(passwords) == set(ALL_ROLES) and passwords["ipaas_gateway"] == "kept"
    assert passwords[OWNER] and len(set(passwords.values())) == len(ALL_ROLES)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == passwords


def test_a_scram_verifier_never_carries_the_password() -> None:
    verifier = scram_verifier("correct-horse", salt=b"0123456789abcdef")
    assert re.fullmatch(r"SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}", verifier)
    assert "correct-horse" not in verifier
    assert verifier == scram_verifier("correct-horse", salt=b"0123456789abcdef")
    assert scram_verifier("correct-horse") != scram_verifier("correct-horse")  # a new salt each time


def test_the_banner_names_the_role_password_file_but_prints_no_password(tmp_path: Path) -> None:
    text = banner(
        {"gateway": "http://127.0.0.1:8080", "auth": "http://127.0.0.1:8081"},
        nats_url="nats://127.0.0.1:4222",
        database_url=with_role("postgresql://127.0.0.1:5432/ipaas", OWNER, "0wner-pw"),
        local_dir=tmp_path,
        pg_users_file=tmp_path / "pg-users.json",
    )
    assert "0wner-pw" not in text and "postgresql://ipaas:***@127.0.0.1:5432/ipaas" in text
    assert str(tmp_path / "pg-users.json") in text
