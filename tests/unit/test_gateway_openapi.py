"""The OpenAPI document: valid, generated from the models, and listing exactly the routes that are served."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
from aiohttp import web
from openapi_spec_validator import validate

from libs.common.models.queries import CURSOR_PATTERN, decode_cursor, encode_cursor
from services.auth.app import create_app as create_auth_app
from services.auth.keys import PASSWORDS
from services.gateway.app import create_app as create_gateway_app
from services.gateway.console.routes import CONSOLE_PREFIX
from services.gateway.openapi import build
from services.gateway.operations import AUTH_OPERATIONS, OPERATIONS
from services.gateway.routes.proxy import FORWARDED
from services.gateway.settings import GatewaySettings
from tests.helpers.auth_setup import auth_settings

# Auth routes that are not public: the revocation feed is for verifiers inside the cluster.
AUTH_INTERNAL = {("get", "/internal/token-revocations"), ("get", "/health/live"), ("get", "/health/ready")}


def served(app: web.Application) -> set[tuple[str, str]]:
    """``(method, path)`` of every route, as the document spells them (HEAD comes with GET)."""
    routes = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "OPTIONS") or route.resource is None:
            continue
        if route.resource.canonical.startswith(CONSOLE_PREFIX):  # the web console's pages: HTML, not the API
            continue
        routes.add((route.method.lower(), route.resource.canonical))
    return routes


@pytest.mark.slow
def test_the_document_is_valid_openapi_3_1():
    document = build(GatewaySettings())
    validate(document)
    assert document["openapi"] == "3.1.0"


def test_the_document_lists_exactly_the_gateways_routes():
    settings = GatewaySettings()
    app = create_gateway_app(settings)
    assert {(method, path) for path, item in build(settings)["paths"].items() for method in item} == served(app)
    assert {(op.method, op.path) for op in OPERATIONS} == served(app)


async def test_the_forwarded_operations_are_exactly_auths_public_routes():
    app = await create_auth_app(auth_settings("postgresql://unused/x", "nats://127.0.0.1:1"))
    app[PASSWORDS].close()  # the app is only read, never started
    auth_public = served(app) - AUTH_INTERNAL
    assert {(op.method, op.path) for op in AUTH_OPERATIONS} == auth_public
    assert {(method.lower(), path) for method, path in FORWARDED} == auth_public


def test_bodies_and_answers_reference_the_models_that_handle_them():
    document = build(GatewaySettings())
    create = document["paths"]["/api/workflows"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/WorkflowCreate")
    ok = create["responses"]["201"]["content"]["application/json"]["schema"]
    assert ok["properties"]["data"]["$ref"].endswith("/WorkflowOut")
    assert document["components"]["schemas"]["WorkflowCreate"]["additionalProperties"] is False
    for op in OPERATIONS:
        responses = document["paths"][op.path][op.method]["responses"]
        assert str(op.status) in responses
        assert {int(code) for code in responses} == {op.status, *op.errors}, op.path


def test_auth_bodies_state_the_rules_of_their_validators():
    schemas = build(GatewaySettings())["components"]["schemas"]
    secrets = {
        tuple(branch["properties"]["type"]["enum"]): branch["properties"]["secret"]["title"]
        for branch in schemas["CredentialCreate"]["oneOf"]
    }
    assert secrets == {
        ("slack",): "SlackSecret",
        ("discord",): "WebhookSecret",
        ("openweather",): "ApiKeySecret",
        ("http",): "HttpHeadersSecret",
    }
    password = schemas["Registration"]["properties"]["password"]
    assert (password["minLength"], password["maxLength"]) == (8, 1024)
    assert "pattern" in schemas["Registration"]["properties"]["email"]


def test_limits_follow_the_settings_and_query_rules_are_in_the_parameters():
    document = build(GatewaySettings(page_max=37))
    params = {p["name"]: p for p in document["paths"]["/api/dlq"]["get"]["parameters"]}
    assert params["limit"]["schema"]["maximum"] == 37
    assert params["include_replayed"]["schema"]["type"] == "boolean"
    assert params["cursor"]["schema"]["pattern"] == CURSOR_PATTERN
    credentials = {p["name"]: p for p in document["paths"]["/api/credentials"]["get"]["parameters"]}
    assert credentials["limit"]["schema"]["maximum"] == 100
    hook = {p["name"]: p for p in document["paths"]["/hooks/{workflow_id}"]["post"]["parameters"]}
    assert {n for n, p in hook.items() if p["in"] == "header" and p["required"]} == {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }


def test_every_value_rule_of_the_edge_is_stated():
    schemas = build(GatewaySettings())["components"]["schemas"]
    payload = schemas["RunRequest"]["properties"]["payload"]
    assert payload["$ref"].endswith("/JsonValue")
    rollback = schemas["RollbackRequest"]["properties"]["version"]
    assert rollback["maximum"] == 2**31 - 1
    name = schemas["WorkflowCreate"]["properties"]["name"]
    assert re.fullmatch(name["pattern"], "a\x00b") is None


@pytest.mark.parametrize(
    "at", [datetime(1970, 1, 1, tzinfo=UTC), datetime.now(UTC), datetime(2999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)]
)
def test_cursors_round_trip_and_match_the_documented_pattern(at: datetime):
    row_id = uuid.uuid4()
    cursor = encode_cursor(at, row_id)
    assert re.fullmatch(CURSOR_PATTERN, cursor)
    assert decode_cursor(cursor) == (at, row_id)
    # Every string the pattern allows decodes (no overflow), so the pattern is the whole rule.
    assert decode_cursor("9" * 17 + f".{row_id}")[0].year == 5138
