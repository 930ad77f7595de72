"""Request bodies at the edge: bounded in size and time, JSON, storable, validated."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from libs.common.http.envelope import parse_model, read_json
from libs.common.http.errors import ApiError, PayloadTooLarge, ValidationFailed

M = TypeVar("M", bound=BaseModel)


class RequestTimeout(ApiError):
    status, code = 408, "request_timeout"


def check_length(request: web.Request, limit: int) -> None:
    """Refuse by ``Content-Length`` before a single byte of the body is read."""
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"request body is over the limit of {limit} bytes", details={"limit": limit})


async def read_raw(request: web.Request, limit: int, timeout: float) -> bytes:
    check_length(request, limit)
    try:
        if request.content.is_eof():
            # The whole body is already buffered (the usual small webhook): no wait, so no timer.
            return await request.read()
        async with asyncio.timeout(timeout):
            return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge(f"request body is over the limit of {limit} bytes", details={"limit": limit}) from exc
    except TimeoutError as exc:
        raise RequestTimeout("request body was not received in time") from exc


def find_unstorable(value: Any) -> str | None:
    """The path of the first string Postgres cannot store (NUL, lone surrogates), if any.

    Iterative, so a deeply nested document cannot exhaust the stack.
    """
    stack: list[tuple[str, Any]] = [("body", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item or not _encodable(item):
                return path
        elif isinstance(item, dict):
            for key, sub in item.items():
                if isinstance(key, str) and ("\x00" in key or not _encodable(key)):
                    return path
                stack.append((f"{path}.{key}", sub))
        elif isinstance(item, list):
            stack.extend((f"{path}.{i}", sub) for i, sub in enumerate(item))
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def read_body(request: web.Request, model: type[M], *, limit: int, timeout: float) -> M:
    """Parse and validate a JSON body: 400 malformed, 408 slow, 413 large, 415 type, 422 invalid."""
    check_length(request, limit)
    try:
        async with asyncio.timeout(timeout):
            data = await read_json(request)
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge(f"request body is over the limit of {limit} bytes", details={"limit": limit}) from exc
    except TimeoutError as exc:
        raise RequestTimeout("request body was not received in time") from exc
    bad = find_unstorable(data)
    if bad is not None:
        raise ValidationFailed(
            "request body failed validation",
            details=[{"field": bad, "message": "NUL characters and lone surrogates are not allowed",
                      "type": "string_unstorable"}],
        )
    return parse_model(model, data)
