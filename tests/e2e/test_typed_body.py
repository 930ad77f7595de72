"""Typed templates end to end: the target of an ``http_request`` gets numbers, booleans and lists as such."""

from __future__ import annotations

from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.fakes import definition, executor_env, final_row, publish_event


async def test_a_json_body_carries_typed_values_to_the_target(bus, db, nats_url, database_url, service, sink):
    tenant = await create_tenant(db)
    wf = await create_workflow(
        db,
        tenant,
        definition(
            "http_request",
            {
                "method": "POST",
                "url": f"{sink.url}/orders",
                "body": {
                    "amount": "{{ payload.amount }}",
                    "paid": "{{ payload.amount > 100 }}",
                    "skus": "{{ payload.lines | map(attribute='sku') | list }}",
                    "label": "order {{ payload.id }}",
                    "id": "{{ payload.id }}",
                    "day": "{{ payload.at | date('%Y-%m-%d') }}",
                },
            },
        ),
    )
    service("services.executor", env=executor_env(nats_url, database_url))
    event = await publish_event(
        bus,
        tenant,
        wf,
        {"amount": 142.5, "id": "A-17", "at": "2026-03-04T05:06:07Z", "lines": [{"sku": "S-1"}, {"sku": "S-2"}]},
    )
    row = await final_row(db, event.event_id)
    assert row["status"] == "succeeded", row["error"]
    assert sink.paths("/orders")[0].json() == {
        "amount": 142.5,
        "paid": True,
        "skus": ["S-1", "S-2"],
        "label": "order A-17",
        "id": "A-17",
        "day": "2026-03-04",
    }
