"""Request bodies at the edge: bounded in size and time, JSON, carriable, validated."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel

from libs.common.http.envelope import parse_model, read_json
from libs.common.http.errors import ApiError, PayloadTooLarge

M = TypeVar("M", bound=BaseModel)


class RequestTimeout(ApiError):
    status, code = 408, "request_timeout"


def check_length(request: web.Request, limit: int) -> None:
    """Refuse by ``Content-Length`` before a single byte of the body is read."""
    length = request.content_length
    if length is not None and length > limit:
        raise _too_large(limit)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body is over the limit of {limit} bytes", details={"limit": limit})


@contextmanager
def _reading(request: web.Request, limit: int) -> Iterator[None]:
    """Refuse by ``Content-Length`` first; then a body read over ``limit`` is 413, one not received in time 408."""
    check_length(request, limit)
    try:
        yield
    except web.HTTPRequestEntityTooLarge as exc:
        raise _too_large(limit) from exc
    except TimeoutError as exc:
        raise RequestTimeout("request body was not received in time") from exc


async def read_raw(request: web.Request, limit: int, timeout: float) -> bytes:
    with _reading(request, limit):
        if request.content.is_eof():
            # The whole body is already buffered (the usual small webhook): no wait, so no timer.
            return await request.read()
        async with asyncio.timeout(timeout):
            return await request.read()


async def read_body(request: web.Request, model: type[M], *, limit: int, timeout: float) -> M:
    """Parse and validate a JSON body: 400 malformed, 408 slow, 413 large, 415 type, 422 invalid.

    422 covers values nothing downstream can carry (integers outside 64 bits, strings Postgres
    refuses), checked by :func:`libs.common.http.envelope.read_json` for every route at once.
    """
    with _reading(request, limit):
        async with asyncio.timeout(timeout):
            data = await read_json(request)
    return parse_model(model, data)
