"""The web console in a real headless Chromium, against the whole platform as processes.

An operator logs in through the console, creates a workflow there (and reads
its webhook secret there), a signed webhook is sent, and the execution
appears on the executions page without a reload; its page links to the
trace.  A dead letter is replayed with the console's button and ends
succeeded; the webhook secret is rotated from the workflow's page and the
new secret is accepted.  A multi-step workflow's page lists its steps, and
its execution's page each step's checkpoint; a slack credential is stored with
a bot token from the form.  Every page carries the CSP and the browser's
console shows no error.  The executions page is photographed on the way
(``CONSOLE_SCREENSHOT=docs/images/console-executions.png`` keeps the
picture: that is how the README's screenshot is made).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from services.gateway.console.headers import CSP
from tests.e2e.conftest import Platform
from tests.helpers import browser
from tests.helpers.auth_setup import PASSWORD
from tests.helpers.fakes import Answer, FakeSink, http_step, steps_workflow
from tests.helpers.stack_processes import Api
from tests.helpers.wait import wait_until

pytestmark = [
    pytest.mark.skipif(browser.skip_reason() is not None, reason=str(browser.skip_reason())),
    pytest.mark.slow,
    pytest.mark.timeout(180),
]

TRACE_TEMPLATE = "https://jaeger.example/trace/{trace_id}"
UI_TIMEOUT_MS = 20_000


@dataclass
class Watch:
    """What the browser said: console errors, uncaught exceptions, and each page's headers."""

    errors: list[str] = field(default_factory=list)
    documents: dict[str, dict[str, str]] = field(default_factory=dict)
    # (status, path) of the refusals the test provokes: Chromium logs every failed request as an error.
    expected: set[tuple[int, str]] = field(default_factory=set)

    def on_console(self, msg: Any) -> None:
        if msg.type != "error":
            return
        where = str((msg.location or {}).get("url", ""))
        path = "/" + where.split("?")[0].split("/", 3)[-1]
        if any(
            msg.text.startswith(f"Failed to load resource: the server responded with a status of {status} ")
            and path == expected
            for status, expected in self.expected
        ):
            return
        self.errors.append(f"{msg.text} ({where})")

    def on_page_error(self, exc: Any) -> None:
        self.errors.append(f"uncaught: {exc}")

    def on_response(self, response: Any) -> None:
        if response.request.resource_type == "document":
            self.documents[response.url] = dict(response.headers)


@pytest.fixture
async def stack(platform: Platform) -> Api:
    """The operator's client of the gateway: signed up here, it takes the token the console got at login."""
    return await platform(gateway={"IPAAS_TRACE_URL_TEMPLATE": TRACE_TEMPLATE})


async def test_an_operator_drives_the_platform_from_the_console(stack: Api, tmp_path: Path, sink: FakeSink) -> None:
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=UI_TIMEOUT_MS)
    failing = {"on": False}
    sink.behaviour = lambda _req, _n: (
        Answer(status=400, body="bad order") if failing["on"] else Answer(status=200, body='{"ok": true}')
    )
    base = stack.base
    watch = Watch()

    async def succeeded(workflow_id: str, event_id: str) -> list[str]:
        """The ids of the workflow's succeeded executions of the event."""
        found = await stack.data("GET", f"/api/executions?workflow_id={workflow_id}&status=succeeded", expect=200)
        return [e["id"] for e in found if e["event_id"] == event_id]

    async with async_playwright() as pw:
        chromium = await browser.launch(pw)
        context = await chromium.new_context(viewport={"width": 1280, "height": 800})
        page = await context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        page.on("console", watch.on_console)
        page.on("pageerror", watch.on_page_error)
        page.on("response", watch.on_response)

        # Log in: without a token every page sends the operator to the login form.
        await page.goto(f"{base}/console/")
        await page.wait_for_url("**/console/login?next=*")
        await page.fill("input[name=email]", stack.email)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("#login-form button[type=submit]")
        await page.wait_for_url("**/console/executions")
        stack.token = str(await page.evaluate("sessionStorage.getItem('ipaas.console.token')"))
        assert stack.token.count(".") == 2  # a JWT, in this tab only
        await expect(page.locator("#execution-list .empty")).to_contain_text("No executions yet")

        # Create a workflow; its secret is shown once, on the page.
        await page.goto(f"{base}/console/workflows")
        await expect(page.locator("#workflow-list .empty")).to_contain_text("No workflows yet")
        await page.fill("#create-workflow input[name=name]", "orders to the shop")
        # An invalid definition: the API's 422 message, naming the field, is what the page shows.
        watch.expected.add((422, "/api/workflows"))
        await page.fill(
            "#create-workflow textarea",
            json.dumps({"trigger": {"type": "webhook"}, "action": {"type": "http_request", "config": {"url": 42}}}),
        )
        await page.click("#create-workflow button[type=submit]")
        refused = page.locator("#create-workflow .flash.error")
        await expect(refused).to_contain_text("(validation_error, HTTP 422)")
        await expect(refused).to_contain_text("action")
        await page.fill(
            "#create-workflow textarea",
            json.dumps(
                {
                    "trigger": {"type": "webhook"},
                    "action": {
                        "type": "http_request",
                        "config": {
                            "method": "POST",
                            "url": f"{sink.url}/orders",
                            "body": {"id": "{{ payload.order_id }}"},
                        },
                    },
                }
            ),
        )
        await page.click("#create-workflow button[type=submit]")
        secret = (await page.locator("#new-webhook-secret").inner_text()).strip()
        hook_url = (await page.locator("#new-webhook-url").inner_text()).strip()
        assert secret.startswith("whsec_") and hook_url.startswith(f"{base}/hooks/")
        hook = {"url": hook_url.removeprefix(base), "secret": secret}  # as the API shows a workflow's webhook
        workflow_id = hook_url.rsplit("/", 1)[1]
        await expect(page.locator("#workflow-list")).to_contain_text("orders to the shop")

        # A signed webhook: the execution appears on the open executions page, no reload.
        await page.goto(f"{base}/console/executions")
        await expect(page.locator("#execution-list .empty")).to_be_visible()
        await page.evaluate("window.sameDocument = 'yes'")
        event_id, _ = await stack.webhook({"webhook": hook}, {"order_id": "A-1001"})
        row = page.locator("#execution-list tr", has=page.locator(f"a[data-event-id='{event_id}']"))
        await expect(row).to_contain_text("succeeded")
        assert await page.evaluate("window.sameDocument") == "yes", "the page was reloaded"
        assert sink.calls == 1 and sink.requests[0].json() == {"id": "A-1001"}

        # Its page: facts, output, and the trace link built from IPAAS_TRACE_URL_TEMPLATE.
        await row.locator("a.execution-link").click()
        await page.wait_for_url("**/console/execution?id=*")
        execution_id = page.url.rsplit("=", 1)[1]
        detail = await stack.data("GET", f"/api/executions/{execution_id}", expect=200)
        assert detail["event_id"] == event_id
        trace_id = detail["trace_id"]
        link = page.locator("#trace-link")
        await expect(link).to_have_attribute("href", TRACE_TEMPLATE.format(trace_id=trace_id))
        await expect(page.locator("#status")).to_contain_text("succeeded")
        await expect(page.locator("#output")).to_contain_text("200")

        # A dead letter (the target refuses for good), replayed from the DLQ page once it is fixed.
        failing["on"] = True
        dead_event, _ = await stack.webhook({"webhook": hook}, {"order_id": "A-1002"})

        async def dead_letter() -> bool:
            return any(d["event_id"] == dead_event for d in await stack.data("GET", "/api/dlq", expect=200))

        await wait_until(dead_letter, timeout=20, message="the refused event in the DLQ")
        await page.goto(f"{base}/console/dlq")
        replay = page.locator(f"button.replay[data-event-id='{dead_event}']")
        await expect(replay).to_be_visible()
        failing["on"] = False
        await replay.click()
        await expect(page.locator("#dlq-list .action-result").first).to_contain_text("replayed")

        await wait_until(
            lambda: succeeded(workflow_id, dead_event), timeout=20, message="the replayed event to succeed"
        )
        assert [r.json() for r in sink.requests].count({"id": "A-1002"}) == 2  # refused once, then delivered

        # One more refused event stays dead: the page the README shows has each outcome.
        failing["on"] = True
        await page.goto(f"{base}/console/executions")
        await expect(page.locator("#execution-list tbody tr")).to_have_count(2)
        last_event, _ = await stack.webhook({"webhook": hook}, {"order_id": "A-1003"})
        last_row = page.locator("#execution-list tr", has=page.locator(f"a[data-event-id='{last_event}']"))
        await expect(last_row).to_contain_text("dead")
        await expect(last_row).to_contain_text("400")
        failing["on"] = False
        await expect(page.locator("#execution-list tbody tr")).to_have_count(3)
        await expect(page.locator("#execution-list tbody")).not_to_contain_text("running")
        # A filter narrows the list, and is kept in the address.
        await page.select_option("#filters select[name=status]", "dead")
        await page.click("#filters button[type=submit]")
        await expect(page.locator("#execution-list tbody tr")).to_have_count(1)
        assert "status=dead" in page.url
        await page.select_option("#filters select[name=status]", "")
        await page.click("#filters button[type=submit]")
        await expect(page.locator("#execution-list tbody tr")).to_have_count(3)
        shot = tmp_path / "console-executions.png"
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        keep = os.environ.get("CONSOLE_SCREENSHOT")
        if keep:
            shutil.copyfile(shot, keep)

        # The same page on a phone: nothing wider than the screen.
        await page.set_viewport_size({"width": 390, "height": 844})
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{overflow}px wider than a phone's screen"
        await page.set_viewport_size({"width": 1280, "height": 800})

        # Rotate the webhook secret from the workflow's page: the new one is accepted.
        await page.goto(f"{base}/console/workflow?id={workflow_id}")
        await expect(page.locator("#versions")).to_contain_text("current")
        await page.click("#rotate-secret")
        rotated = (await page.locator("#rotated-secret").inner_text()).strip()
        assert rotated.startswith("whsec_") and rotated != secret
        await expect(page.locator("#rotation")).to_contain_text("previous secret stays valid until")
        await stack.webhook({"webhook": {**hook, "secret": rotated}}, {"order_id": "A-1004"})

        # A new version from the editor, the diff between the two, a rollback, disable and enable.
        definition = json.loads(await page.locator("#definition").input_value())
        definition["action"]["config"]["body"] = {"id": "{{ payload.order_id }}", "channel": "console"}
        await page.fill("#definition", json.dumps(definition))
        await page.click("#save-definition")
        await expect(page.locator("#current-version")).to_have_text("2")
        await expect(page.locator("#diff .add").filter(has_text='"channel": "console"')).to_have_count(1)
        await expect(page.locator("#diff .del")).to_have_count(1)  # the line that gained a comma
        await page.click("button.rollback[data-version='1']")
        await expect(page.locator("#current-version")).to_have_text("3")
        versions = await stack.data("GET", f"/api/workflows/{workflow_id}/versions", expect=200)
        assert [v["version"] for v in versions] == [1, 2, 3]
        assert versions[2]["definition"]["action"] == versions[0]["definition"]["action"]
        await page.click("#toggle-active")
        await expect(page.locator("#summary")).to_contain_text("inactive")
        await page.click("#toggle-active")
        await expect(page.locator("#summary .badge")).to_have_text("active")

        # A dry run of the current definition, with a payload from the editor.
        await page.fill("#dry-run-payload", json.dumps({"order_id": "DRY-1"}))
        await page.click("#dry-run button")
        await expect(page.locator("#dry-run-result")).to_contain_text("succeeded")
        assert sink.requests[-1].json() == {"id": "DRY-1"}

        # A multi-step workflow: its page lists the steps; an execution's page, each step's checkpoint.
        step_url = f"{sink.url}/steps"
        big = {"id": "big", "filter": {"condition": "payload.amount > 100"}}
        steps = [http_step("lookup", step_url), big, http_step("notify", step_url, retry={"max_attempts": 2})]
        multi = await stack.data("POST", "/api/workflows", steps_workflow(steps), expect=201)
        await page.goto(f"{base}/console/workflow?id={multi['id']}")
        step_rows = page.locator("#steps tbody tr")
        await expect(step_rows).to_have_count(3)
        await expect(page.locator("#steps tr[data-step-id=lookup]")).to_contain_text("http_request")
        await expect(page.locator("#steps tr[data-step-id=big]")).to_contain_text("payload.amount > 100")
        await expect(page.locator("#steps tr[data-step-id=notify]")).to_contain_text("at most 2 attempt(s)")
        multi_event, _ = await stack.webhook(multi, {"amount": 150})

        [multi_execution] = await wait_until(
            lambda: succeeded(multi["id"], multi_event), timeout=20, message="the multi-step execution"
        )
        await page.goto(f"{base}/console/execution?id={multi_execution}")
        checkpoints = page.locator("#steps tbody tr")
        await expect(checkpoints).to_have_count(3)
        for n, step_id in enumerate(["lookup", "big", "notify"]):
            await expect(checkpoints.nth(n).locator("td").nth(0)).to_have_text(step_id)
            await expect(checkpoints.nth(n).locator("td").nth(2)).to_have_text("1")
            await expect(checkpoints.nth(n).locator("td").nth(3)).to_contain_text(" ms")
        await expect(checkpoints.nth(1).locator("td").nth(1)).to_have_text("succeeded")
        assert len(sink.paths("/steps")) == 2

        # Replay by filter: the last dead letter, as a job whose progress the page follows.
        await page.goto(f"{base}/console/dlq")
        await expect(page.locator(f"button.replay[data-event-id='{last_event}']")).to_be_visible()
        await page.fill("#bulk-replay input[name=workflow_id]", workflow_id)
        await page.click("#bulk-replay button[type=submit]")
        progress = page.locator("#bulk-progress")
        await expect(progress).to_contain_text("100%")
        await expect(progress).to_contain_text("done")

        # The other pages: each loads, says what to do when empty, or shows the API's message.
        await page.goto(f"{base}/console/credentials")
        await expect(page.locator("#credential-list .empty")).to_contain_text("No credentials yet")
        hidden = f"https://hooks.slack.com/services/T0/B0/{uuid.uuid4().hex}"
        await page.fill("#create-credential input[name=name]", "team slack")
        await page.fill("#create-credential input.secret", hidden)
        await page.click("#create-credential button[type=submit]")
        await expect(page.locator("#credential-list")).to_contain_text("team slack")
        assert await page.input_value("#create-credential input.secret") == ""
        assert hidden.rsplit("/", 1)[1] not in await page.content()
        delete = page.locator("#credential-list button.danger")
        await delete.click()
        await expect(delete).to_have_text("Confirm delete")
        await delete.click()
        await expect(page.locator("#credential-list .empty")).to_be_visible()
        # A slack bot token instead of the webhook URL: the API gets it as bot_token, and only it.
        bot_token = f"xoxb-{uuid.uuid4().hex}"
        await page.fill("#create-credential input[name=name]", "team bot")
        await page.select_option("#create-credential select[name=type]", "slack")
        await page.select_option("#create-credential select[name=secret-field]", "bot_token")
        await page.fill("#create-credential input.secret[data-key=bot_token]", bot_token)
        async with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/credentials")) as posted:
            await page.click("#create-credential button[type=submit]")
        assert (await posted.value).post_data_json["secret"] == {"bot_token": bot_token}
        await expect(page.locator("#credential-list")).to_contain_text("team bot")
        assert await page.input_value("#create-credential input.secret") == ""
        assert bot_token not in await page.content()
        await page.goto(f"{base}/console/system")
        await expect(page.locator("#gateway-ready")).to_contain_text("ready")
        await expect(page.locator("#not-exposed")).to_contain_text("Consumer lag")
        await page.goto(f"{base}/console/keys")
        await stack.call("GET", "/api/keys", expect=200)
        await expect(page.locator("#key-list .empty")).to_contain_text("No API keys yet")
        # A key made through the form is shown once, then listed; revoking it from the list marks it.
        await page.fill("#create-key input[name=name]", "ci deploy")
        await page.click("#create-key button[type=submit]")
        await expect(page.locator("#new-key")).to_contain_text("ipk_")
        await expect(page.locator("#key-list")).to_contain_text("ci deploy")
        await page.click("#key-list button.danger")
        await expect(page.locator("#key-list")).to_contain_text("revoked")

        await chromium.close()

    pages = {url.split("?")[0].removeprefix(base) for url in watch.documents}
    assert {
        "/console/login",
        "/console/executions",
        "/console/execution",
        "/console/workflows",
        "/console/workflow",
        "/console/dlq",
        "/console/credentials",
        "/console/system",
        "/console/keys",
    } <= pages
    for url, headers in watch.documents.items():
        assert headers.get("content-security-policy") == CSP, url
        assert headers.get("x-content-type-options") == "nosniff", url
    assert watch.errors == []
