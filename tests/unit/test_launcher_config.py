"""Launcher settings, instance planning and the quick-start helpers (pure logic)."""

from __future__ import annotations

import base64
import io
import json
import sys
import time
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from deploy.local import quickstart
from deploy.local.config import ConfigError, load
from deploy.local.ports import PortPicker
from deploy.local.services import plan


def test_defaults_are_the_documented_layout(tmp_path: Path) -> None:
    cfg = load({"IPAAS_LOCAL_DIR": str(tmp_path)})
    assert (cfg.gateway_port, cfg.auth_port) == (8080, 8081)
    assert cfg.scheduler_ports == (8082, 8085)
    assert cfg.executor_ports == (8083, 8084)
    assert (cfg.nats_port, cfg.pg_port) == (4222, 5432)
    assert cfg.nats_url is None and cfg.database_url is None
    assert cfg.services == ("auth", "gateway", "scheduler", "executor")
    assert cfg.local_dir == tmp_path.resolve()


def test_base_port_replicas_and_service_selection() -> None:
    cfg = load(
        {
            "IPAAS_LOCAL_BASE_PORT": "9000",
            "IPAAS_LOCAL_EXECUTOR_REPLICAS": "3",
            "IPAAS_LOCAL_SCHEDULER_REPLICAS": "1",
            "IPAAS_LOCAL_SERVICES": "executor,auth",
            "NATS_URL": "nats://example:4222",
        }
    )
    assert cfg.gateway_port == 9000 and cfg.auth_port == 9001
    assert cfg.scheduler_ports == (9002,)
    assert cfg.executor_ports == (9003, 9004, 9005)
    assert cfg.services == ("auth", "executor")
    assert cfg.nats_url == "nats://example:4222"
    assert load({"IPAAS_LOCAL_SERVICES": "none"}).services == ()


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"IPAAS_LOCAL_NATS_PORT": "abc"}, "IPAAS_LOCAL_NATS_PORT must be an integer"),
        ({"IPAAS_LOCAL_PG_PORT": "70000"}, "must be a TCP port"),
        ({"IPAAS_LOCAL_EXECUTOR_PORTS": "8083,x"}, "comma-separated list of ports"),
        ({"IPAAS_LOCAL_SERVICES": "gateway,billing"}, "unknown service(s) ['billing']"),
        ({"IPAAS_LOCAL_GRACE_SECONDS": "-1"}, "must be positive"),
    ],
)
def test_bad_settings_are_named_in_the_error(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(env)
    assert fragment in str(err.value)


def _repo(tmp_path: Path, *services: str) -> Path:
    """A repository at ``tmp_path / "repo"`` where only ``services`` are built (have a ``__main__``)."""
    root = tmp_path / "repo"
    for name in services:
        (root / "services" / name).mkdir(parents=True)
        (root / "services" / name / "__main__.py").write_text("")
    return root


def test_every_instance_points_at_the_local_auth_and_infrastructure(tmp_path: Path) -> None:
    root = _repo(tmp_path, "auth", "gateway", "executor")  # scheduler "not built yet"
    cfg = load(
        {
            "IPAAS_LOCAL_DIR": str(tmp_path / "data"),
            "IPAAS_LOCAL_AUTH_PORT": "1",
            "IPAAS_LOCAL_GATEWAY_PORT": "2",
            "IPAAS_LOCAL_EXECUTOR_PORTS": "3,4",
            "IPAAS_LOCAL_SCHEDULER_PORTS": "5,6",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        }
    )
    notes: list[str] = []
    picker = PortPicker(notes.append)
    picker.taken.add(1)  # auth's preferred port is taken: it moves, and everyone follows it
    specs, missing = plan(cfg, picker, nats_url="nats://n:1", database_url="postgresql://d/ipaas", root=root)
    assert missing == ["scheduler"]
    assert [s.name for s in specs] == ["auth", "gateway", "executor-1", "executor-2"]
    auth = specs[0]
    assert auth.port != 1 and notes and "auth takes free port" in notes[0]
    for spec in specs:
        env = spec.env
        assert env["IPAAS_HTTP_PORT"] == str(spec.port)
        assert env["NATS_URL"] == "nats://n:1" and env["DATABASE_URL"] == "postgresql://d/ipaas"
        assert env["IPAAS_DEV_MODE"] == "true"
        assert env["IPAAS_JWKS_URL"] == f"http://127.0.0.1:{auth.port}/.well-known/jwks.json"
        assert env["IPAAS_AUTH_URL"] == f"http://127.0.0.1:{auth.port}"
        assert env["IPAAS_AUTH_DEV_KEYS_DIR"] == str((tmp_path / "data" / "keys").resolve())
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector:4318"  # the caller's OTEL_* pass through
        assert not any(k.startswith("IPAAS_LOCAL_") for k in env)
    assert {s.env["OTEL_SERVICE_NAME"] for s in specs} == {"auth", "gateway", "executor"}
    assert specs[2].port == 3 and specs[3].port == 4


def test_each_instance_gets_a_distinct_metrics_port_next_to_its_own(tmp_path: Path) -> None:
    """``make up`` gives every instance its own metrics port, apart from every service port."""
    root = _repo(tmp_path, "auth", "gateway", "scheduler", "executor")
    cfg = load({"IPAAS_LOCAL_DIR": str(tmp_path / "data"), "IPAAS_LOCAL_BASE_PORT": "21080"})
    notes: list[str] = []
    picker = PortPicker(notes.append)
    picker.taken.add(22083)  # executor-1's preferred metrics port is taken: it moves, and says so
    specs, _ = plan(cfg, picker, nats_url="nats://n:1", database_url="postgresql://d/ipaas", root=root)
    service_ports = {s.port for s in specs}
    metrics = {s.name: int(s.env["IPAAS_HTTP_METRICS_PORT"]) for s in specs}
    assert len(set(metrics.values())) == len(specs) and not set(metrics.values()) & service_ports
    assert metrics["executor-1"] != 22083 and any("executor-1 metrics takes free port" in n for n in notes)
    for spec in specs:  # the others sit 1000 above their service port, unless that one was taken too
        if not any(f"{spec.name} metrics takes" in n for n in notes):
            assert spec.port is not None and metrics[spec.name] == spec.port + 1000, spec.name


def test_quickstart_signature_verifies_with_the_standard_webhooks_library(capsys: pytest.CaptureFixture[str]) -> None:
    secret = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    body, msg_id, ts = '{"order_id": 42}', "msg_1", str(int(time.time()))
    assert quickstart.main(["sign", secret, msg_id, ts, body]) == 0
    sig = capsys.readouterr().out.strip()
    headers = {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sig}
    assert Webhook(secret).verify(body, headers) == {"order_id": 42}


def test_quickstart_get_reads_a_dotted_path(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = {"success": True, "data": {"id": "wf1", "webhook": {"secret": "whsec_x"}, "items": [{"n": 1}]}}
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(doc)))
    assert quickstart.main(["get", "data.webhook.secret"]) == 0
    assert capsys.readouterr().out.strip() == "whsec_x"
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(doc)))
    assert quickstart.main(["get", "data.missing"]) == 1
    assert quickstart.main(["sign", "whsec_!!notbase64", "id", "1", "{}"]) == 1


def test_banner_lists_urls_hides_passwords_and_gives_a_quickstart(tmp_path: Path) -> None:
    text = quickstart.banner(
        {"auth": "http://127.0.0.1:8081", "gateway": "http://127.0.0.1:8080"},
        nats_url="nats://127.0.0.1:4222",
        database_url="postgresql://app:s3cret@db:5432/ipaas",
        local_dir=tmp_path,
    )
    assert "http://127.0.0.1:8080" in text and "s3cret" not in text and "app:***@db" in text
    assert "API=http://127.0.0.1:8080" in text and "/hooks/$WF_ID" in text and "webhook-signature" in text
