"""``ipaas apply``'s decision: create, a new version, enable/disable, or nothing; defaults are no change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ipaas_cli.errors import UsageError
from ipaas_cli.manifests import load, names_a_credential, resolve_credentials
from ipaas_cli.plan import Change, decide, normalise

DECLARED = {
    "name": "nightly",
    "trigger": {"type": "schedule", "cron": "0 3 * * *"},
    "action": {"type": "http_request", "config": {"url": "https://example.com/hook"}},
}


def on_server(**changes: Any) -> dict[str, Any]:
    """The workflow as the API returns it, with the defaults the server filled in."""
    wf = {
        "id": "7d0f8a52-5a43-4a31-a0a3-2b8a2b1b6a10",
        "name": "nightly",
        "is_active": True,
        "version": 3,
        "trigger": {
            "type": "schedule",
            "cron": "0 3 * * *",
            "timezone": "UTC",
            "interval_seconds": None,
            "catchup": "skip",
            "overlap": "allow",
        },
        "action": {
            "type": "http_request",
            "credential_id": None,
            "config": {"method": "POST", "url": "https://example.com/hook", "headers": {}, "body": None},
        },
    }
    wf.update(changes)
    return wf


@pytest.mark.parametrize(
    ("declared", "current", "change"),
    [
        ({}, None, Change.CREATE),
        ({}, on_server(), Change.UNCHANGED),  # the defaults the server filled in are no change
        ({"is_active": False}, on_server(is_active=True), Change.DISABLE),
        ({"is_active": True}, on_server(is_active=False), Change.ENABLE),
        ({"trigger": {"type": "schedule", "cron": "0 4 * * *"}}, on_server(), Change.UPDATE),  # a new version
    ],
)
def test_the_decided_change(declared: dict[str, Any], current: dict[str, Any] | None, change: Change) -> None:
    step = decide(normalise({**DECLARED, **declared}, "x.yaml"), current)
    assert step.change is change and step.workflow_id == (current or {}).get("id")
    assert (step.diff == "") is (change is Change.UNCHANGED)
    if change is Change.UPDATE:  # the diff shows what changed
        assert '-    "cron": "0 3 * * *",' in step.diff and '+    "cron": "0 4 * * *",' in step.diff


def test_invalid_workflow_names_the_field() -> None:
    with pytest.raises(UsageError, match=r"x\.yaml: invalid workflow: trigger"):
        normalise({"name": "n", "action": DECLARED["action"]}, "x.yaml")


def test_manifests_reject_duplicate_names_and_resolve_credentials(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "name: one\ntrigger: {type: webhook}\naction: {type: slack_message, credential: team, config: {text: hi}}\n"
    )
    [manifest] = load(tmp_path)
    body = resolve_credentials(manifest, {"team": "5b0cf7a8-2a2e-4f38-9d5e-5d2b2c7f3b11"})
    assert body["action"]["credential_id"] == "5b0cf7a8-2a2e-4f38-9d5e-5d2b2c7f3b11"
    assert "credential" not in body["action"]
    with pytest.raises(UsageError, match="no credential named 'team'"):
        resolve_credentials(manifest, {})
    (tmp_path / "b.yml").write_text("---\nname: one\n")
    with pytest.raises(UsageError, match="already declared"):
        load(tmp_path)


def test_credential_names_resolve_inside_steps(tmp_path: Path) -> None:
    (tmp_path / "steps.yaml").write_text(
        """\
name: lookup then post
trigger: {type: webhook}
steps:
  - id: lookup
    action: {type: http_request, credential: crm, config: {url: "https://crm.example.com/c"}}
  - id: big
    filter: {condition: "payload.amount > 100"}
  - id: post
    action: {type: slack_message, credential: team bot, config: {channel: C1, text: hi}}
"""
    )
    [manifest] = load(tmp_path)
    crm, bot = "5b0cf7a8-2a2e-4f38-9d5e-5d2b2c7f3b11", "0d3c0f5e-8f0a-4c6b-9b1e-2f4a6c8e0b12"
    assert names_a_credential(manifest)
    body = resolve_credentials(manifest, {"crm": crm, "team bot": bot})
    lookup, big, post = body["steps"]
    assert lookup["action"]["credential_id"] == crm and "credential" not in lookup["action"]
    assert post["action"]["credential_id"] == bot and "credential" not in post["action"]
    assert big == {"id": "big", "filter": {"condition": "payload.amount > 100"}}
    assert "credential" in manifest.body["steps"][0]["action"]  # the manifest itself is untouched
    # What is sent is a valid multi-step workflow, with the ids in place.
    sent = normalise(body, manifest.source)
    assert [s["action"]["credential_id"] for s in sent["steps"] if "action" in s] == [crm, bot]
    with pytest.raises(UsageError, match=r"steps\[2\] \(post\): no credential named 'team bot'"):
        resolve_credentials(manifest, {"crm": crm})


def test_a_step_with_credential_and_credential_id_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "name: n\ntrigger: {type: webhook}\nsteps:\n"
        "  - {id: a, action: {type: slack_message, credential: t, credential_id: x, config: {text: hi}}}\n"
    )
    [manifest] = load(tmp_path)
    with pytest.raises(UsageError, match=r"steps\[0\] \(a\): give `credential` or `credential_id`, not both"):
        resolve_credentials(manifest, {"t": "5b0cf7a8-2a2e-4f38-9d5e-5d2b2c7f3b11"})
    plain = tmp_path / "a.yaml"
    plain.write_text("name: n\ntrigger: {type: webhook}\nsteps:\n  - {id: f, filter: {condition: 'true'}}\n")
    assert not names_a_credential(load(plain)[0])
