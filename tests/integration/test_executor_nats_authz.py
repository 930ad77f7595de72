"""The executor works under the NATS authorization of a real deployment (its own identity, private inboxes),
on streams and a consumer made by the provisioning step, with only its run-time JetStream grants."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from libs.common.bus.permissions import inbox_prefix
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.fakes import (
    Answer,
    CredentialResponder,
    definition,
    executor_env,
    final_row,
    publish_event,
    sequence,
)
from tests.helpers.secured_nats import SecuredNats
from tests.helpers.wait import consumer_idle, wait_until


@pytest.mark.slow
async def test_events_retries_dead_letters_and_dry_runs_under_authorization(
    secured_nats: SecuredNats, db: Any, database_url: str, service: Any, sinks: Any
) -> None:
    ok_sink = await sinks()
    bad_sink = await sinks(lambda _r, _n: Answer(404, "no_service"))
    flaky_sink = await sinks(sequence(Answer(500, "oops"), Answer(200, "ok")))
    tenant = await create_tenant(db)
    creds = await CredentialResponder(secured_nats.url_for("auth")).start()
    async with secured_nats.connected("gateway") as gateway, secured_nats.connected("admin") as admin:
        c_ok = creds.add(tenant, "slack", {"webhook_url": f"{ok_sink.url}/services/{secrets.token_hex(4)}"})
        c_bad = creds.add(tenant, "slack", {"webhook_url": f"{bad_sink.url}/services/{secrets.token_hex(4)}"})
        c_flaky = creds.add(tenant, "slack", {"webhook_url": f"{flaky_sink.url}/services/{secrets.token_hex(4)}"})
        w_ok = await create_workflow(db, tenant, definition("slack_message", {"text": "hi {{ payload.n }}"}, c_ok))
        w_bad = await create_workflow(db, tenant, definition("slack_message", {"text": "x"}, c_bad))
        w_flaky = await create_workflow(db, tenant, definition("slack_message", {"text": "again"}, c_flaky))
        svc = service(
            "services.executor",
            env=executor_env(secured_nats.url_for("executor"), database_url, **secured_nats.service_env("executor")),
        )

        e_ok = await publish_event(gateway, tenant, w_ok, {"n": 1})
        e_bad = await publish_event(gateway, tenant, w_bad, {})
        e_flaky = await publish_event(gateway, tenant, w_flaky, {})
        r_ok, r_bad = await final_row(db, e_ok.event_id), await final_row(db, e_bad.event_id)
        assert r_ok["status"] == "succeeded" and ok_sink.requests[0].json() == {"text": "hi 1"}
        assert r_bad["status"] == "dead"

        # The dead_letters row commits with the outcome; the DLQ copy is published just after it.
        async def dlq_messages() -> int:
            return int((await admin.js.stream_info("DLQ")).state.messages)

        assert await wait_until(dlq_messages, message="the DLQ copy") == 1
        # The retry was parked in Postgres and published back to EVENTS by the executor's identity.
        r_flaky = await final_row(db, e_flaky.event_id)
        assert (r_flaky["status"], r_flaky["attempts"]) == ("succeeded", 2) and flaky_sink.calls == 2

        req = {"tenant_id": str(tenant), "workflow": definition("slack_message", {"text": "dry"}, c_ok), "payload": {}}
        reply = await gateway.nc.request("svc.executor.dry_run", json.dumps(req).encode(), timeout=10)
        assert json.loads(reply.data)["status"] == "succeeded"
        assert await wait_until(lambda: consumer_idle(admin), message="every event acked")
        assert "permissions violation" not in svc.logs().lower()
        assert inbox_prefix("executor") == svc.env["IPAAS_EXECUTOR_NATS_INBOX_PREFIX"]
    await creds.stop()
