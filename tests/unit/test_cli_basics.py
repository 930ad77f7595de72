"""The CLI offline: Standard Webhooks signatures, durations, the config file, error mapping, and contexts
(list, use, delete, through typer's CliRunner in-process), where usage errors exit 2."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from standardwebhooks.webhooks import Webhook
from typer.testing import CliRunner

from ipaas_cli import config, signing
from ipaas_cli.client import _error_of
from ipaas_cli.commands.credentials import CredentialType, secret_of
from ipaas_cli.commands.workflows import work_of
from ipaas_cli.durations import parse_since
from ipaas_cli.errors import ApiError, Unavailable, UsageError
from ipaas_cli.main import app
from ipaas_cli.trace_view import render_execution

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the config file goes for this test, with no token, server or context from the environment."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for name in ("IPAAS_TOKEN", "IPAAS_SERVER", "IPAAS_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def contexts(config_home: Path) -> None:
    """Two saved contexts, ``a`` (the current one) and ``b``."""
    config.save(
        config.Config(
            current="a",
            contexts={
                "a": config.Context(server="http://a.example", token="tok-aaaa", email="a@example.com"),
                "b": config.Context(server="http://b.example", token="tok-bbbb"),
            },
        )
    )


def test_signature_verifies_with_the_reference_library() -> None:
    body = b'{"order_id": 42}'
    now = int(datetime.now(UTC).timestamp())
    headers = signing.headers(SECRET, "msg_1", now, body)
    Webhook(SECRET).verify(body, headers)  # raises if wrong
    assert headers["webhook-signature"] == Webhook(SECRET).sign(
        "msg_1", datetime.fromtimestamp(now, UTC), body.decode()
    )
    with pytest.raises(UsageError, match="starts with 'whsec_'"):
        signing.sign("nope", "msg_1", now, body)


def test_durations() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert parse_since("2h", now=now) == now - timedelta(hours=2)
    assert parse_since("30m", now=now) == now - timedelta(minutes=30)
    assert parse_since("2026-01-01T08:00:00", now=now) == datetime(2026, 1, 1, 8, tzinfo=UTC)
    with pytest.raises(UsageError, match="not a duration"):
        parse_since("yesterday", now=now)


def test_config_is_0600_and_a_token_goes_only_to_its_server(config_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config.Config(current="prod", contexts={"prod": config.Context(server="https://a.example", token="t1")})
    path = config.save(cfg)
    assert path == config_home / "ipaas" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text())["contexts"]["prod"]["token"] == "t1"
    assert config.resolve(None).token == "t1"
    assert config.resolve(None, "https://b.example").token is None
    monkeypatch.setenv("IPAAS_TOKEN", "ipk_env")
    assert config.resolve(None).token == "ipk_env"
    with pytest.raises(UsageError, match="no context named 'dev'"):
        config.resolve("dev")


def test_error_mapping() -> None:
    body = json.dumps({"success": False, "error": {"code": "not_found", "message": "workflow not found"}}).encode()
    err = _error_of(404, body, feature=None)
    assert isinstance(err, ApiError) and err.code == "not_found" and err.exit_code == 1
    older = _error_of(404, body, feature="API keys")
    assert isinstance(older, ApiError) and older.code == "not_supported" and "does not offer API keys" in older.message
    down = _error_of(503, b"", feature=None)
    assert isinstance(down, Unavailable) and down.exit_code == 3


def test_a_bare_slack_secret_is_a_webhook_url_or_a_bot_token() -> None:
    assert secret_of(CredentialType.slack, "https://hooks.slack.com/services/T/B/x\n") == {
        "webhook_url": "https://hooks.slack.com/services/T/B/x"
    }
    assert secret_of(CredentialType.slack, " xoxb-1234567890-abcdefghijkl\n") == {
        "bot_token": "xoxb-1234567890-abcdefghijkl"
    }
    assert secret_of(CredentialType.slack, '{"bot_token": "xoxb-1234567890-abc"}') == {
        "bot_token": "xoxb-1234567890-abc"
    }
    # A token is a slack thing only: elsewhere a bare value keeps its meaning.
    assert secret_of(CredentialType.discord, "xoxb-1234567890-abcdefghijkl") == {
        "webhook_url": "xoxb-1234567890-abcdefghijkl"
    }


def test_a_multi_step_workflow_and_execution_show_their_steps() -> None:
    steps = [
        {"id": "lookup", "action": {"type": "http_request", "config": {"url": "https://x.example"}}},
        {"id": "big", "filter": {"condition": "payload.amount > 100"}},
    ]
    assert work_of({"steps": steps}) == "lookup (http_request) → big (filter)"
    assert work_of({"action": {"type": "slack_message"}}) == "slack_message"
    console = Console(record=True, width=200)
    render_execution(
        console,
        {
            "id": "e1",
            "status": "succeeded",
            "steps": [
                {"id": "lookup", "status": "failed", "continued": True, "attempts": 2, "duration_ms": 12},
                {"id": "big", "status": "filtered", "attempts": 1, "duration_ms": None, "error": None},
            ],
        },
    )
    lines = console.export_text().splitlines()
    assert any("lookup" in ln and "failed (continued)" in ln and "2" in ln and "12" in ln for ln in lines)
    assert any("big" in ln and "filtered" in ln for ln in lines)


def test_use_switches_the_current_context_and_list_never_shows_tokens(contexts: None) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["context", "use", "b"]).exit_code == 0
    listed = runner.invoke(app, ["context", "list", "--json"])
    assert listed.exit_code == 0
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["current"]) for r in rows] == [("a", False), ("b", True)]
    assert "tok-aaaa" not in listed.stdout and "tok-bbbb" not in listed.stdout
    assert config.load().current == "b"
    assert runner.invoke(app, ["context", "delete", "b"]).exit_code == 0
    assert set(config.load().contexts) == {"a"} and config.load().current is None


def test_usage_errors_exit_2_with_a_message(contexts: None) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["context", "use", "nope", "--json"])
    assert missing.exit_code == 2 and "no context named 'nope'" in json.loads(missing.stdout)["error"]["message"]
    not_a_key = runner.invoke(app, ["login", "--server", "http://a.example", "--api-key-stdin"], input="secret\n")
    assert not_a_key.exit_code == 2 and "starts with 'ipk_'" in not_a_key.stderr
    assert config.load().contexts["a"].token == "tok-aaaa"  # nothing was written
