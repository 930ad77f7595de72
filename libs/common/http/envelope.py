"""The response envelope of every ``/api/*`` route, and JSON body parsing at the edge."""

from __future__ import annotations

import json
import uuid
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from libs.common.http.errors import BadRequest, UnsupportedMediaType, ValidationFailed
from libs.common.http.json_values import uncarriable_values

M = TypeVar("M", bound=BaseModel)


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=_default).decode()


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, uuid.UUID):  # asyncpg's UUID subclass, which orjson does not take natively
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def ok(
    data: Any, *, status: int = 200, meta: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    body: dict[str, Any] = {"success": True, "data": data}
    if meta:
        body["meta"] = meta
    return web.json_response(body, status=status, dumps=_dumps, headers=headers)


def error_response(
    status: int, code: str, message: str, *, details: Any = None, headers: dict[str, str] | None = None
) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return web.json_response({"success": False, "error": error}, status=status, dumps=_dumps, headers=headers)


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic errors as ``[{"field", "message", "type"}]``, without echoing input values."""
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


async def read_json(request: web.Request) -> Any:
    """Parse a JSON body; malformed JSON and non-UTF-8 give 400, never 500.

    A value nothing downstream can carry (an integer outside 64 bits, a
    non-finite number, a string with NUL or a lone surrogate) gives 422 naming
    its field: see :mod:`libs.common.http.json_values`.
    """
    ctype = request.content_type
    if request.body_exists and ctype not in ("application/json", "") and not ctype.endswith("+json"):
        raise UnsupportedMediaType("request body must be application/json")
    raw = await request.read()
    if not raw:
        raise BadRequest("request body is empty", code="empty_body")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadRequest("request body is not valid UTF-8", code="invalid_encoding") from exc
    except (json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise BadRequest("request body is not valid JSON", code="invalid_json") from exc
    problems = uncarriable_values(data)
    if problems:
        raise ValidationFailed("request body failed validation", details=problems)
    return data


def parse_model(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed("request body failed validation", details=validation_details(exc)) from exc


async def read_model(request: web.Request, model: type[M]) -> M:
    return parse_model(model, await read_json(request))
