"""Opaque cursors over ``(timestamp, id)`` keys and over version numbers, and the ``limit`` query parameter."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

import orjson
from aiohttp import web

from libs.common.http.errors import NotFound, ValidationFailed
from services.gateway.settings import GatewaySettings


def encode_cursor(at: datetime, row_id: uuid.UUID) -> str:
    raw = orjson.dumps([at.isoformat(), str(row_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        if len(cursor) > 200:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, row_id = orjson.loads(raw)
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise ValueError("naive timestamp")
        return parsed, uuid.UUID(row_id)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise ValidationFailed(
            "invalid query", details=[{"field": "cursor", "message": "invalid cursor", "type": "cursor"}]
        ) from exc


MAX_VERSION = 2**31 - 1


def encode_version_cursor(version: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(["v", version])).decode().rstrip("=")


def version_cursor_param(request: web.Request) -> int:
    """The version a ``/versions`` page starts after (0: from the first); a bad cursor is a 422."""
    raw = request.query.get("cursor")
    if not raw:
        return 0
    try:
        if len(raw) > 64:
            raise ValueError("too long")
        tag, version = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if tag != "v" or type(version) is not int or not 1 <= version <= MAX_VERSION:
            raise ValueError("not a version cursor")
        return version
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise ValidationFailed(
            "invalid query", details=[{"field": "cursor", "message": "invalid cursor", "type": "cursor"}]
        ) from exc


def page_limit(request: web.Request, settings: GatewaySettings) -> int:
    raw = request.query.get("limit")
    if raw is None or raw == "":
        return settings.page_default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not 1 <= int(raw) <= settings.page_max:
        raise ValidationFailed(
            "invalid query",
            details=[{"field": "limit", "message": f"an integer from 1 to {settings.page_max}", "type": "range"}],
        )
    return int(raw)


def cursor_param(request: web.Request) -> tuple[datetime, uuid.UUID] | None:
    raw = request.query.get("cursor")
    return decode_cursor(raw) if raw else None


def uuid_param(request: web.Request, name: str) -> uuid.UUID | None:
    """An optional UUID query filter; a malformed one is a 422."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise ValidationFailed(
            "invalid query", details=[{"field": name, "message": "must be a UUID", "type": "uuid"}]
        ) from exc


def path_id(request: web.Request, name: str = "id") -> uuid.UUID:
    """A UUID path parameter; anything else is a 404, exactly like a missing row."""
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError as exc:
        raise NotFound("not found") from exc
