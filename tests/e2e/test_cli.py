"""The ``ipaas`` CLI (``python -m ipaas_cli``, a subprocess) against the real stack.

Auth, gateway and an executor run as processes on real NATS JetStream and
Postgres.  An operator logs in (the token lands in a 0600 config file), stores
a credential from stdin, applies a directory of YAML twice (the second run
changes nothing and writes no version), sends a signed webhook, sees the
execution appear in ``executions tail -f`` within 2 s, traces the event,
replays a dead letter (one by id, and by a filter as a job), manages API keys,
and gets clear errors and the documented exit codes for bad input.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deploy.local.infra import free_port
from tests.e2e.conftest import Platform
from tests.helpers.auth_setup import PASSWORD
from tests.helpers.fakes import Answer, FakeSink
from tests.helpers.services import REPO_ROOT
from tests.helpers.stack_processes import Api
from tests.helpers.wait import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

TRACE_TEMPLATE = "https://traces.example.com/trace/{trace_id}"


@dataclass
class Ran:
    rc: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Cli:
    def __init__(self, config_home: Path) -> None:
        self.config_home = config_home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("IPAAS_", "OTEL_"))}
        self.env.update(
            {
                "XDG_CONFIG_HOME": str(config_home),
                "PYTHONPATH": str(REPO_ROOT),
                "COLUMNS": "200",
                "IPAAS_TRACE_URL_TEMPLATE": TRACE_TEMPLATE,
            }
        )

    async def spawn(self, *args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ipaas_cli",
            *args,
            cwd=REPO_ROOT,
            env={**self.env, **(env or {})},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def __call__(self, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> Ran:
        proc = await self.spawn(*args, env=env)
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout=60)
        return Ran(int(proc.returncode or 0), out.decode(), err.decode())

    async def ok(self, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> Any:
        ran = await self(*args, "--json", stdin=stdin, env=env)
        assert ran.rc == 0, f"ipaas {' '.join(args)}: exit {ran.rc}\n{ran.out}\n{ran.err}"
        return ran.json()

    @property
    def config_file(self) -> Path:
        return self.config_home / "ipaas" / "config.json"

    async def login(self, user: Api) -> Any:
        """``ipaas login`` as ``user`` (signed up on the gateway at ``user.base``)."""
        return await self.ok(
            "login", "--server", user.base, "--email", user.email, "--password-stdin", stdin=PASSWORD + "\n"
        )

    async def send(self, workflow: str, data: str, secret: str) -> Any:
        """``ipaas webhook send`` with the workflow's signing secret in the environment."""
        return await self.ok("webhook", "send", workflow, "--data", data, env={"IPAAS_WEBHOOK_SECRET": secret})

    async def wait_listed(self, event_id: str, *args: str, message: str) -> Any:
        """Until ``ipaas <args>`` lists a row of ``event_id``; returns those rows."""

        async def listed() -> Any:
            return [r for r in await self.ok(*args) if r["event_id"] == event_id]

        return await wait_until(listed, timeout=30, interval=0.3, message=message)

    async def wait_succeeded(self, event_id: str, message: str) -> None:
        """Until ``ipaas trace`` says the event's execution succeeded."""

        async def succeeded() -> bool:
            return bool((await self.ok("trace", event_id))["status"] == "succeeded")

        await wait_until(succeeded, timeout=30, interval=0.3, message=message)


def workflow_yaml(sink_url: str, *, text: str, path: str = "/orders") -> str:
    return f"""\
name: cli orders
trigger: {{type: webhook}}
action:
  type: http_request
  credential: sink token
  config:
    method: POST
    url: {sink_url}{path}
    body: {{order: "{{{{ payload.order_id }}}}", note: "{text}"}}
"""


@pytest.fixture
async def stack(platform: Platform) -> Api:
    return await platform()


async def test_cli_drives_the_stack(stack: Api, tmp_path: Path, sink: FakeSink) -> None:
    cli = Cli(tmp_path / "config")
    failing = {"on": True}
    sink.behaviour = lambda req, _n: (
        Answer(status=400, body="refused")
        if req.path == "/flaky" and failing["on"]
        else Answer(status=200, body='{"ok": true}')
    )

    # login: the token is kept in a 0600 file in the config dir, never printed.
    logged = await cli.login(stack)
    assert logged["context"] == "default" and logged["server"] == stack.base
    assert stat.S_IMODE(cli.config_file.stat().st_mode) == 0o600
    saved = json.loads(cli.config_file.read_text())
    token = saved["contexts"]["default"]["token"]
    assert saved["current"] == "default" and token and token not in json.dumps(logged)
    contexts = await cli.ok("context", "list")
    assert [(c["name"], c["current"], c["logged_in"]) for c in contexts] == [("default", True, True)]

    # credentials create reads the secret from stdin; nothing prints it back.
    planted = f"tok-{uuid.uuid4().hex}"
    created = await cli.ok(
        "credentials", "create", "sink token", "--type", "http", stdin=json.dumps({"headers": {"X-Token": planted}})
    )
    listed = await cli("credentials", "list", "--json")
    assert listed.rc == 0 and created["id"] in [c["id"] for c in listed.json()]
    assert planted not in listed.out + json.dumps(created)

    # apply twice: the second run changes nothing and writes no version.
    manifests = tmp_path / "workflows"
    manifests.mkdir()
    (manifests / "orders.yaml").write_text(workflow_yaml(sink.url, text="v1"))
    (manifests / "flaky.yml").write_text(
        workflow_yaml(sink.url, text="flaky", path="/flaky").replace("cli orders", "cli flaky")
    )
    first = await cli.ok("apply", "-f", str(manifests))
    by_name = {w["name"]: w for w in first["workflows"]}
    assert {w["change"] for w in first["workflows"]} == {"create"} and first["changed"] == 2
    orders, flaky = by_name["cli orders"], by_name["cli flaky"]
    assert orders["webhook"]["secret"].startswith("whsec_")
    second = await cli.ok("apply", "-f", str(manifests))
    assert [w["change"] for w in second["workflows"]] == ["unchanged", "unchanged"] and second["changed"] == 0
    versions = await stack.data("GET", f"/api/workflows/{orders['id']}/versions", expect=200)
    assert [v["version"] for v in versions] == [1]
    human = await cli("apply", "-f", str(manifests))
    assert human.rc == 0 and "2 unchanged" in human.out

    # A change: --dry-run shows the diff and writes nothing; apply writes exactly one new version.
    (manifests / "orders.yaml").write_text(workflow_yaml(sink.url, text="v2"))
    planned = await cli.ok("apply", "-f", str(manifests), "--dry-run")
    change = {w["name"]: w for w in planned["workflows"]}["cli orders"]
    lines = change["diff"].splitlines()
    assert change["change"] == "update"
    assert [ln[1:].strip() for ln in lines if ln.startswith("-") and "note" in ln] == ['"note": "v1",']
    assert [ln[1:].strip() for ln in lines if ln.startswith("+") and "note" in ln] == ['"note": "v2",']
    assert len(await stack.data("GET", f"/api/workflows/{orders['id']}/versions", expect=200)) == 1
    applied = await cli.ok("apply", "-f", str(manifests))
    assert {w["name"]: w["version"] for w in applied["workflows"] if w["change"] == "update"} == {"cli orders": 2}
    listed_versions = await cli.ok("workflows", "versions", "cli orders")
    assert [(v["version"], v["current"]) for v in listed_versions] == [(1, False), (2, True)]

    # executions tail -f, started before the webhook: sees the new execution within 2 s of its row.
    tail = await cli.spawn("executions", "tail", "-f", "--workflow", "cli orders", "-n", "0", "--json")
    try:
        assert tail.stderr is not None  # it says so once it has read the newest page and follows
        assert "following new executions" in (await asyncio.wait_for(tail.stderr.readline(), 30)).decode()
        payload = tmp_path / "order.json"
        payload.write_text(json.dumps({"order_id": "A-7"}))
        sent = await cli.send("cli orders", f"@{payload}", orders["webhook"]["secret"])
        assert sent["status"] == 202 and sent["duplicate"] is False
        assert "webhook-signature: v1," in sent["curl"] and sent["url"] in sent["curl"]
        event_id = sent["event_id"]

        async def row() -> Any:
            page = await stack.data("GET", f"/api/executions?workflow_id={orders['id']}", expect=200)
            return next((e for e in page if e["event_id"] == event_id), None)

        await wait_until(row, timeout=20, message="the execution row")
        seen_by = time.monotonic() + 2.0
        assert tail.stdout is not None
        while True:
            left = seen_by - time.monotonic()
            assert left > 0, "executions tail -f did not print the new execution within 2 s"
            line = await asyncio.wait_for(tail.stdout.readline(), timeout=left)
            if line and json.loads(line)["event_id"] == event_id:
                break
    finally:
        tail.kill()
        await tail.wait()

    # The execution succeeds; trace finds it by event_id and prints the trace link.
    listing = ("executions", "list", "--workflow", "cli orders", "--status", "succeeded")
    await cli.wait_listed(event_id, *listing, message="the webhook's execution to succeed")
    assert sink.paths("/orders")[0].json() == {"order": "A-7", "note": "v2"}
    assert {k.lower(): v for k, v in sink.paths("/orders")[0].headers.items()}["x-token"] == planted
    traced = await cli.ok("trace", event_id)
    assert traced["event_id"] == event_id and traced["status"] == "succeeded"
    assert traced["trace_url"] == TRACE_TEMPLATE.format(trace_id=traced["trace_id"])
    assert planted not in json.dumps(traced)
    assert [a["outcome"] for a in traced["attempt_history"]] == ["succeeded"]  # every try, and the input
    assert traced["input"] == {"order_id": "A-7"}

    # A dead letter, replayed by its id once the target accepts again.
    dead = await cli.send("cli flaky", '{"order_id": "F-1"}', flaky["webhook"]["secret"])
    letter = (
        await cli.wait_listed(dead["event_id"], "dlq", "list", "--workflow", "cli flaky", message="a dead letter")
    )[0]
    assert "400" in letter["reason"]
    failing["on"] = False
    await cli.ok("dlq", "replay", dead["event_id"])
    await cli.wait_succeeded(dead["event_id"], "the replayed event to succeed")

    # dlq replay by filter: a job with progress.
    failing["on"] = True
    again = await cli.send("cli flaky", '{"order_id": "F-2"}', flaky["webhook"]["secret"])
    await wait_until(
        lambda: any(r.path == "/flaky" and b"F-2" in r.body for r in sink.requests),
        timeout=20,
        message="the second flaky delivery",
    )
    await cli.wait_listed(again["event_id"], "dlq", "list", "--workflow", "cli flaky", message="the second dead letter")
    failing["on"] = False
    bulk = await cli("dlq", "replay", "--workflow", "cli flaky", "--since", "1h", "--json")
    assert bulk.rc == 0, bulk.err
    assert bulk.json()["state"] == "done" and bulk.json()["percent"] == 100
    await cli.wait_succeeded(again["event_id"], "the bulk replay to succeed")

    # Workflows: get by name, disable/enable (no new version).
    got = await cli.ok("workflows", "get", "cli orders")
    assert got["id"] == orders["id"] and got["version"] == 2
    assert (await cli.ok("workflows", "disable", "cli orders"))["is_active"] is False
    assert (await cli.ok("workflows", "enable", "cli orders"))["is_active"] is True
    rolled = await cli.ok("workflows", "rollback", "cli orders", "--to", "1")
    assert rolled["version"] == 3 and rolled["action"]["config"]["body"]["note"] == "v1"


async def test_cli_bad_input_exits_non_zero_with_a_clear_message(stack: Api, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "config")

    # Not logged in yet: usage (2), saying what to do.
    ran = await cli("workflows", "list")
    assert ran.rc == 2 and "ipaas login" in ran.err
    # A wrong password: the API refuses (1), with its message.
    ran = await cli(
        "login", "--server", stack.base, "--email", stack.email, "--password-stdin", "--json", stdin="wrong password\n"
    )
    assert ran.rc == 1 and ran.json()["error"]["status"] == 401
    assert not cli.config_file.exists()
    await cli.login(stack)

    ran = await cli("apply", "-f", str(tmp_path / "missing"))
    assert ran.rc == 2 and "no such file or directory" in ran.err
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: no trigger\naction: {type: http_request, config: {url: 'http://x.example'}}\n")
    ran = await cli("apply", "-f", str(bad), "--json")
    assert ran.rc == 2 and "trigger" in ran.json()["error"]["message"]
    assert await stack.data("GET", "/api/workflows", expect=200) == []
    bad.write_text("name: [unclosed\n")
    ran = await cli("apply", "-f", str(bad))
    assert ran.rc == 2 and "not valid YAML" in ran.err

    ran = await cli("executions", "get", str(uuid.uuid4()), "--json")
    assert ran.rc == 1 and ran.json()["error"]["code"] == "not_found"
    ran = await cli("webhook", "send", "nothing", "--data", "{not json")
    assert ran.rc == 2 and "--data is not JSON" in ran.err
    ran = await cli("credentials", "create", "empty", "--type", "slack")
    assert ran.rc == 2 and "secret is empty" in ran.err
    ran = await cli("dlq", "replay")
    assert ran.rc == 2 and "give an event_id" in ran.err
    # API keys: one made by the CLI lists without its secret, reads, is refused a change and is revoked.
    ran = await cli("api-keys", "list", "--json")
    assert ran.rc == 0 and ran.json() == []
    created = await cli.ok("api-keys", "create", "ci read", "--scope", "read")
    assert created["key"].startswith("ipk_") and created["scopes"] == ["read"]
    listed = await cli.ok("api-keys", "list")
    assert [k["id"] for k in listed] == [created["id"]] and "key" not in listed[0]
    as_key = {"IPAAS_TOKEN": created["key"]}
    assert (await cli.ok("workflows", "list", env=as_key)) == []
    denied = await cli(
        "credentials", "create", "x", "--type", "slack", "--json", stdin="https://h.example/x", env=as_key
    )
    assert denied.rc == 1 and denied.json()["error"]["status"] == 403
    revoked = await cli.ok("api-keys", "revoke", created["id"])
    assert revoked["revoked_at"] is not None
    ran = await cli("no-such-command")
    assert ran.rc == 2 and "No such command" in ran.err
    ran = await cli(
        "--server", f"http://127.0.0.1:{free_port()}", "workflows", "list", "--json", env={"IPAAS_TOKEN": "x"}
    )
    assert ran.rc == 3 and "cannot reach" in ran.json()["error"]["message"]


async def test_cli_slack_bot_token_and_credentials_named_in_steps(
    platform: Platform, tmp_path: Path, sinks: Any
) -> None:
    """A bare ``xoxb-`` secret is stored as the slack bot token; ``credential:`` resolves inside ``steps``."""
    fake_slack = await sinks(
        lambda _req, _n: Answer(status=200, body='{"ok": true, "channel": "C1", "ts": "1503435956.000247"}')
    )
    stack = await platform(executor={"IPAAS_EXECUTOR_SLACK_API_URL": fake_slack.url})
    cli = Cli(tmp_path / "config")
    await cli.login(stack)

    bot_token = f"xoxb-{uuid.uuid4().hex}"
    created = await cli.ok("credentials", "create", "team bot", "--type", "slack", stdin=bot_token + "\n")
    assert created["type"] == "slack" and bot_token not in json.dumps(created)
    manifest = tmp_path / "steps.yaml"
    manifest.write_text(
        """\
name: cli steps
trigger: {type: webhook}
steps:
  - id: big
    filter: {condition: "payload.amount > 100"}
  - id: post
    action:
      type: slack_message
      credential: team bot
      config: {channel: C1, text: "paid {{ payload.amount }}"}
"""
    )
    applied = await cli.ok("apply", "-f", str(manifest))
    [row] = applied["workflows"]
    assert row["change"] == "create"
    got = await cli.ok("workflows", "get", "cli steps")
    assert got["steps"][1]["action"]["credential_id"] == created["id"]
    assert (await cli.ok("apply", "-f", str(manifest)))["workflows"][0]["change"] == "unchanged"

    sent = await cli.send("cli steps", '{"amount": 150}', row["webhook"]["secret"])
    assert sent["status"] == 202
    await cli.wait_succeeded(sent["event_id"], "the multi-step execution to succeed")
    [posted] = fake_slack.paths("/api/chat.postMessage")
    # The stored secret is the bot token: the Web API is called with it.
    assert {k.lower(): v for k, v in posted.headers.items()}["authorization"] == f"Bearer {bot_token}"
    assert posted.json()["channel"] == "C1" and posted.json()["text"] == "paid 150"

    # The human views of a multi-step workflow and its execution name the steps.
    shown = await cli("workflows", "get", "cli steps")
    assert shown.rc == 0, shown.err
    assert "step big" in shown.out and "step post" in shown.out and created["id"] in shown.out
    listed = await cli("workflows", "list")
    assert listed.rc == 0 and "big (filter) → post (slack_message)" in listed.out, listed.out
    execution = (await cli.ok("trace", sent["event_id"]))["id"]
    detail = await cli("executions", "get", execution)
    assert detail.rc == 0, detail.err
    rows = [ln for ln in detail.out.splitlines() if "succeeded" in ln and ("big" in ln or "post" in ln)]
    assert len(rows) == 2, detail.out
