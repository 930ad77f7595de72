"""The executor works under the NATS authorization of a real deployment (its own identity, private inboxes)."""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

import nats

from deploy.local.nats_authz import inbox_prefix
from libs.common.bus import Bus
from libs.common.models.credentials import RESOLVE_SUBJECT, CredentialReply, CredentialRequest
from libs.common.settings import NatsSettings
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.fakes import Answer, FakeSink, definition, executor_env, final_row, publish_event
from tests.helpers.secured_nats import SecuredNats


async def test_events_dead_letters_and_dry_runs_under_authorization(
        secured_nats: SecuredNats, db: Any, database_url: str, service: Any) -> None:
    ok_sink = await FakeSink().start()
    bad_sink = await FakeSink(lambda _r, _n: Answer(404, "no_service")).start()
    tenant = await create_tenant(db)
    secrets_by_id: dict[Any, dict[str, Any]] = {}
    auth = await nats.connect(secured_nats.url_for("auth"), inbox_prefix=inbox_prefix("auth"))

    async def resolve(msg: Any) -> None:
        req = CredentialRequest.model_validate_json(msg.data)
        secret = secrets_by_id.get(req.credential_id)
        reply = (CredentialReply(ok=True, type="slack", secret=secret) if secret is not None
                 else CredentialReply(ok=False, error="not_found"))
        await msg.respond(reply.model_dump_json().encode())

    await auth.subscribe(RESOLVE_SUBJECT, queue="auth", cb=resolve)
    gateway = await Bus.connect(NatsSettings(NATS_URL=secured_nats.url_for("gateway")), name="gateway",
                                inbox_prefix=inbox_prefix("gateway"), connect_deadline_seconds=10)
    try:
        good, bad = secrets.token_hex(4), secrets.token_hex(4)
        c_ok, c_bad = uuid.uuid4(), uuid.uuid4()
        secrets_by_id[c_ok] = {"webhook_url": f"{ok_sink.url}/services/{good}"}
        secrets_by_id[c_bad] = {"webhook_url": f"{bad_sink.url}/services/{bad}"}
        w_ok = await create_workflow(db, tenant, definition("slack_message", {"text": "hi {{ payload.n }}"}, c_ok))
        w_bad = await create_workflow(db, tenant, definition("slack_message", {"text": "x"}, c_bad))
        service("services.executor", env=executor_env(secured_nats.url_for("executor"), database_url))

        e_ok = await publish_event(gateway, tenant, w_ok, {"n": 1})
        e_bad = await publish_event(gateway, tenant, w_bad, {})
        r_ok, r_bad = await final_row(db, e_ok.event_id), await final_row(db, e_bad.event_id)
        assert r_ok["status"] == "succeeded" and ok_sink.requests[0].json() == {"text": "hi 1"}
        assert r_bad["status"] == "dead"
        info = await gateway.js.stream_info("DLQ")
        assert info.state.messages == 1

        req = {"tenant_id": str(tenant), "workflow": definition("slack_message", {"text": "dry"}, c_ok), "payload": {}}
        reply = await gateway.nc.request("svc.executor.dry_run", json.dumps(req).encode(), timeout=10)
        assert json.loads(reply.data)["status"] == "succeeded"
    finally:
        await gateway.drain()
        await auth.close()
        await ok_sink.stop()
        await bad_sink.stop()
