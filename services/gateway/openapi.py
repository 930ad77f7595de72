"""``/openapi.json``: an OpenAPI 3.1 document built from the pydantic models the handlers use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from libs.common.models import api
from libs.common.models.workflows import WorkflowCreate

REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    summary: str
    status: int = 200
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    many: bool = False
    public: bool = False
    enveloped: bool = True
    params: tuple[str, ...] = ()


_LIST = ("limit", "cursor")
OPERATIONS: tuple[Op, ...] = (
    Op("post", "/api/workflows", "Create a workflow (version 1)", 201, WorkflowCreate, api.WorkflowOut),
    Op("get", "/api/workflows", "List workflows", response=api.WorkflowOut, many=True, params=_LIST),
    Op("get", "/api/workflows/{id}", "Get a workflow", response=api.WorkflowOut),
    Op("put", "/api/workflows/{id}", "Replace a workflow (new version)", 200, WorkflowCreate, api.WorkflowOut),
    Op("patch", "/api/workflows/{id}", "Enable or disable", 200, api.WorkflowPatch, api.WorkflowOut),
    Op("delete", "/api/workflows/{id}", "Delete a workflow", response=api.DeletedOut),
    Op("get", "/api/workflows/{id}/versions", "Version history (oldest first)", response=api.WorkflowVersionOut,
       many=True, params=_LIST),
    Op("post", "/api/workflows/{id}/rollback", "Make an old version current (as a new version)", 200,
       api.RollbackRequest, api.WorkflowOut),
    Op("post", "/api/workflows/{id}/webhook-secret", "Rotate the webhook secret (24 h overlap)",
       response=api.SecretRotatedOut),
    Op("post", "/api/workflows/{id}/run", "Run now (manual trigger)", 202, api.RunRequest, api.AcceptedEvent),
    Op("post", "/api/workflows/dry-run", "Run an action for real, record nothing", 200, api.DryRunRequest,
       api.DryRunResult),
    Op("get", "/api/executions", "List executions", response=api.ExecutionOut, many=True,
       params=("workflow_id", "status", *_LIST)),
    Op("get", "/api/executions/{id}", "Get an execution (output masked)", response=api.ExecutionDetailOut),
    Op("get", "/api/dlq", "List dead letters", response=api.DeadLetterOut, many=True,
       params=("workflow_id", "include_replayed", *_LIST)),
    Op("post", "/api/dlq/{event_id}/replay", "Replay a dead letter", 202, response=api.ReplayAccepted),
    Op("post", "/hooks/{workflow_id}", "Webhook ingest (Standard Webhooks)", 202, response=api.AcceptedEvent,
       public=True),
    Op("post", "/api/auth/register", "Register (forwarded to auth)", 201, public=True),
    Op("post", "/api/auth/login", "Log in (forwarded to auth)", public=True),
    Op("post", "/api/auth/logout", "Log out: revoke this token (forwarded to auth)"),
    Op("post", "/api/auth/logout-all", "Revoke every token of the caller's user (forwarded to auth)"),
    *(Op(m, "/api/auth/{tail}", "Other auth routes (forwarded to auth)") for m in ("get", "post", "put", "delete")),
    *(Op(m, "/api/credentials", "Credentials (forwarded to auth)", 201 if m == "post" else 200)
      for m in ("get", "post")),
    *(Op(m, "/api/credentials/{tail}", "A credential (forwarded to auth)") for m in ("get", "put", "delete")),
    Op("get", "/.well-known/jwks.json", "Token verification keys (forwarded to auth)", public=True,
       enveloped=False),
    Op("get", "/openapi.json", "This document", public=True, enveloped=False),
    Op("get", "/health/live", "Liveness", public=True, enveloped=False),
    Op("get", "/health/ready", "Readiness (503 while draining)", public=True, enveloped=False),
)

_QUERY_SCHEMAS: dict[str, dict[str, Any]] = {
    "limit": {"type": "integer", "minimum": 1},
    "cursor": {"type": "string"},
    "workflow_id": {"type": "string", "format": "uuid"},
    "status": {"type": "string", "enum": ["running", "succeeded", "failed", "dead", "skipped"]},
    "include_replayed": {"type": "boolean"},
}
_ERRORS = {"400": "Malformed request", "401": "Missing or invalid token", "404": "Not found",
           "413": "Body too large", "422": "Validation failed", "429": "Rate limited",
           "503": "Unavailable, retry later"}


def _envelope(data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["success", "data"],
            "properties": {"success": {"const": True}, "data": data,
                           "meta": {"$ref": REF.format(model="PageMeta")}}}


def build() -> dict[str, Any]:
    models: set[type[BaseModel]] = {api.ErrorEnvelope, api.PageMeta}
    for op in OPERATIONS:
        models.update(m for m in (op.request, op.response) if m is not None)
    ordered = sorted(models, key=lambda m: m.__name__)
    refs, defs = models_json_schema(
        [(m, "validation" if m in {op.request for op in OPERATIONS} else "serialization") for m in ordered],
        ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "ipaas gateway", "version": "1.0.0",
                 "description": "Workflows, executions, dead letters, webhook ingest."},
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def _operation(op: Op) -> dict[str, Any]:
    params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
              for name in _path_params(op.path)]
    params += [{"name": n, "in": "query", "required": False, "schema": _QUERY_SCHEMAS[n]} for n in op.params]
    if op.response is None:
        data: dict[str, Any] = {}
    else:
        ref = {"$ref": REF.format(model=op.response.__name__)}
        data = {"type": "array", "items": ref} if op.many else ref
    content = {"application/json": {"schema": _envelope(data) if op.enveloped else {}}}
    responses: dict[str, Any] = {str(op.status): {"description": "Success", "content": content}}
    error = {"application/json": {"schema": {"$ref": REF.format(model="ErrorEnvelope")}}}
    for code, text in _ERRORS.items():
        responses[code] = {"description": text, "content": error}
    out: dict[str, Any] = {"summary": op.summary, "operationId": _operation_id(op), "responses": responses}
    if params:
        out["parameters"] = params
    if op.request is not None:
        out["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": {"$ref": REF.format(model=op.request.__name__)}}}}
    if not op.public:
        out["security"] = [{"bearer": []}]
    return out


def _path_params(path: str) -> list[str]:
    return [seg[1:-1] for seg in path.split("/") if seg.startswith("{") and seg.endswith("}")]


def _operation_id(op: Op) -> str:
    cleaned = op.path.strip("/").replace("{", "").replace("}", "").replace(".", "_").replace("-", "_")
    return f"{op.method}_{cleaned.replace('/', '_')}"


async def openapi_handler(request: web.Request) -> web.Response:
    return web.json_response(request.app[DOCUMENT])


DOCUMENT = web.AppKey("openapi_document", dict[str, Any])


def add_routes(app: web.Application) -> None:
    app[DOCUMENT] = build()
    app.router.add_get("/openapi.json", openapi_handler)
