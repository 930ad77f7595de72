"""Contexts offline (typer's CliRunner, in-process): list, use, delete, and usage errors exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ipaas_cli import config
from ipaas_cli.main import app


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for name in ("IPAAS_TOKEN", "IPAAS_SERVER", "IPAAS_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    config.save(
        config.Config(
            current="a",
            contexts={
                "a": config.Context(server="http://a.example", token="tok-aaaa", email="a@example.com"),
                "b": config.Context(server="http://b.example", token="tok-bbbb"),
            },
        )
    )
    return tmp_path


def test_use_switches_the_current_context_and_list_never_shows_tokens(home: Path) -> None:
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


def test_usage_errors_exit_2_with_a_message(home: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["context", "use", "nope", "--json"])
    assert missing.exit_code == 2 and "no context named 'nope'" in json.loads(missing.stdout)["error"]["message"]
    not_a_key = runner.invoke(app, ["login", "--server", "http://a.example", "--api-key-stdin"], input="secret\n")
    assert not_a_key.exit_code == 2 and "starts with 'ipk_'" in not_a_key.stderr
    assert config.load().contexts["a"].token == "tok-aaaa"  # nothing was written
