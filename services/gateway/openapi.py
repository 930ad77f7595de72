"""``/openapi.json``: an OpenAPI 3.1 document generated from :data:`services.gateway.operations.OPERATIONS`.

Schemas come from the pydantic models that validate the requests and build
the answers (``models_json_schema``, refs into ``components/schemas``):
request bodies in validation mode, answers in serialization mode; query and
header models become parameters.  Three rules the edge applies to every JSON
value it carries (:mod:`libs.common.http.json_values`) are stated on every
schema: integers within 64 bits, no NUL in strings or keys, and ``Any`` is a
:data:`JSON_VALUE` of those.  The largest ``limit`` of the gateway's lists is
its ``IPAAS_GATEWAY_PAGE_MAX``, so the document is built once per app, from
its settings.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from libs.common.http.json_values import INT64_MAX, INT64_MIN
from libs.common.models import api
from services.gateway.keys import SETTINGS
from services.gateway.operations import OPERATIONS, Op
from services.gateway.settings import GatewaySettings

REF = "#/components/schemas/{model}"
NO_NUL = r"^[^\x00]*$"
JSON_VALUE: dict[str, Any] = {
    "description": "Any JSON value the platform can carry: numbers within 64 bits, no NUL in strings or keys.",
    "anyOf": [
        {"type": "null"},
        {"type": "boolean"},
        {"type": "number", "minimum": INT64_MIN, "maximum": INT64_MAX},
        {"type": "string", "pattern": NO_NUL},
        {"type": "array", "items": {"$ref": REF.format(model="JsonValue")}},
        {
            "type": "object",
            "additionalProperties": {"$ref": REF.format(model="JsonValue")},
            "propertyNames": {"pattern": NO_NUL},
        },
    ],
}
_ANY_KEYS = frozenset({"title", "description", "default"})
_NESTED_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_NESTED_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "propertyNames")
HEADERS: dict[str, Any] = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "X-Request-Id": {
        "description": "The request's id (the caller's X-Request-Id when usable), also in the logs.",
        "required": True,
        "schema": {"type": "string"},
    },
    "traceparent": {"description": "The trace the event travels in (W3C Trace Context).", "schema": {"type": "string"}},
}
_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    400: "Malformed request",
    401: "Missing or invalid credentials",
    403: "Forbidden",
    404: "Not found",
    408: "Body not received in time",
    409: "Conflict with the current state",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Validation failed (details name each field)",
    429: "Rate limited",
    503: "Unavailable; retry after Retry-After",
}


def build(settings: GatewaySettings) -> dict[str, Any]:
    bodies: set[type[BaseModel]] = {op.body for op in OPERATIONS if op.body is not None}
    inputs = bodies | {m for op in OPERATIONS for m in (op.query, op.headers) if m is not None}
    outputs: set[type[BaseModel]] = {api.ErrorEnvelope, *(op.meta for op in OPERATIONS if op.page)}
    outputs.update(m for op in OPERATIONS for m in (op.data, op.error_model) if m is not None)
    pairs: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((m, "validation") for m in sorted(inputs, key=_name)),
        *((m, "serialization") for m in sorted(outputs, key=_name)),
    ]
    _, defs = models_json_schema(pairs, ref_template=REF)
    schemas: dict[str, Any] = defs.get("$defs", {})
    parameter_models = inputs - bodies
    params = {m: _model_parameters(schemas[_name(m)]) for m in parameter_models}
    for model in parameter_models:
        del schemas[_name(model)]
    schemas = {name: _carriable(schema) for name, schema in sorted(schemas.items())}
    schemas["JsonValue"] = JSON_VALUE
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, params, settings)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ipaas gateway",
            "version": "1.0.0",
            "description": "Workflows, executions, dead letters, webhook ingest, and auth's routes forwarded.",
        },
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "schemas": schemas,
            "headers": HEADERS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def _name(model: type[BaseModel]) -> str:
    return model.__name__


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=_name(model))}


def _model_parameters(schema: dict[str, Any]) -> list[tuple[str, bool, dict[str, Any]]]:
    """``(name, required, schema)`` of each property of a query or header model."""
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema.get("properties", {}).items():
        prop = {k: v for k, v in prop.items() if k != "title" and not (k == "default" and v is None)}
        branches = [b for b in prop.pop("anyOf", ()) if b != {"type": "null"}]
        if len(branches) == 1:  # X | None: the parameter is X, or absent
            prop = {**branches[0], **prop}
        out.append((name, name in required, _carriable(prop)))
    return out


def _carriable(schema: Any) -> Any:
    """``schema`` with the edge's value rules: 64-bit integers, no NUL, ``Any`` as ``JsonValue``."""
    if not isinstance(schema, dict):
        return schema
    if schema and set(schema) <= _ANY_KEYS:
        return {"$ref": REF.format(model="JsonValue"), **schema}
    out = dict(schema)
    kind = out.get("type")
    if kind == "string" and not {"enum", "const", "format"} & set(out):
        if "pattern" not in out:
            out["pattern"] = NO_NUL
        elif r"\x00" not in out["pattern"]:  # a pattern of its own that does not say it: both apply
            out["allOf"] = [*out.get("allOf", ()), {"pattern": NO_NUL}]
    elif kind == "integer":
        out.setdefault("minimum", INT64_MIN)
        out.setdefault("maximum", INT64_MAX)
    elif kind == "object" and isinstance(out.get("additionalProperties"), dict):
        out.setdefault("propertyNames", {"pattern": NO_NUL})
    if "properties" in out:
        out["properties"] = {k: _carriable(v) for k, v in out["properties"].items()}
    for key in _NESTED_LISTS:
        if key in out:
            out[key] = [_carriable(v) for v in out[key]]
    for key in _NESTED_ONE:
        if key in out:
            out[key] = _carriable(out[key])
    return out


def _operation(
    op: Op, params: dict[type[BaseModel], list[tuple[str, bool, dict[str, Any]]]], settings: GatewaySettings
) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": op.summary, "operationId": _operation_id(op), "tags": [_tag(op)]}
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
        for name in _path_params(op.path)
    ]
    if op.query is not None:
        page_max = op.page_max or settings.page_max
        for name, required, schema in params[op.query]:
            if name == "limit":
                schema = {**schema, "maximum": page_max, "description": f"Page size, 1 to {page_max}."}
            parameters.append({"name": name, "in": "query", "required": required, "schema": schema})
    if op.headers is not None:
        parameters += [{"name": n, "in": "header", "required": r, "schema": s} for n, r, s in params[op.headers]]
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        out["requestBody"] = {
            "required": not op.body_optional,
            "content": {"application/json": {"schema": _ref(op.body)}},
        }
    elif op.raw_body:
        out["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": {}}, "text/plain": {"schema": {"type": "string"}}},
        }
    if op.public:
        out["security"] = []
    out["responses"] = _responses(op)
    return out


def _responses(op: Op) -> dict[str, Any]:
    responses = {str(op.status): _response(op.status, _success_schema(op))}
    for status in op.errors:
        responses[str(status)] = _response(status, _ref(op.error_model))
        if status in (429, 503) and op.error_model is api.ErrorEnvelope:
            responses[str(status)]["headers"]["Retry-After"] = _header("Retry-After")
    if op.raw_body:
        responses[str(op.status)]["headers"]["traceparent"] = _header("traceparent")
    return responses


def _header(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _response(status: int, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": _STATUS_TEXT[status],
        "headers": {"X-Request-Id": _header("X-Request-Id")},
        "content": {"application/json": {"schema": schema}},
    }


def _success_schema(op: Op) -> dict[str, Any]:
    if op.data is None:
        return {"type": "object"}
    data: dict[str, Any] = {"type": "array", "items": _ref(op.data)} if op.many else _ref(op.data)
    if not op.envelope:
        return data
    properties: dict[str, Any] = {"success": {"const": True}, "data": data}
    required = ["data", "success"]
    if op.page:
        properties["meta"] = _ref(op.meta)
        if op.last_page_meta:
            required.append("meta")
    return {"type": "object", "required": sorted(required), "properties": properties, "additionalProperties": False}


def _tag(op: Op) -> str:
    if op.forwarded:
        return "auth (forwarded)"
    parts = op.path.strip("/").split("/")
    return parts[1] if parts[0] == "api" else parts[0]


def _path_params(path: str) -> list[str]:
    return [seg[1:-1] for seg in path.split("/") if seg.startswith("{") and seg.endswith("}")]


def _operation_id(op: Op) -> str:
    cleaned = op.path.strip("/").replace("{", "").replace("}", "").replace(".", "_").replace("-", "_")
    return f"{op.method}_{cleaned.replace('/', '_')}"


DOCUMENT = web.AppKey("openapi_document", dict[str, Any])


async def openapi_handler(request: web.Request) -> web.Response:
    return web.json_response(request.app[DOCUMENT])


def add_routes(app: web.Application) -> None:
    app[DOCUMENT] = build(app[SETTINGS])
    app.router.add_get("/openapi.json", openapi_handler)
