"""Query parameters of the gateway's lists (``limit``, ``cursor``, filters) and UUID path parameters.

The rules live in :mod:`libs.common.models.queries`, the models the OpenAPI
document is generated from: an invalid value is a 422 naming the parameter,
never read as an absent one.  The largest ``limit`` is
``IPAAS_GATEWAY_PAGE_MAX``; no ``limit`` means ``IPAAS_GATEWAY_PAGE_DEFAULT``.
"""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web

from libs.common.http.query import parse_query, path_id
from libs.common.models.queries import PAGE_MAX, LimitQuery
from services.gateway.keys import SETTINGS
from services.gateway.settings import GatewaySettings

__all__ = ["limit_of", "list_query", "path_id", "uuid_segment"]

Q = TypeVar("Q", bound=LimitQuery)
_UUID_RE = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


def uuid_segment(name: str) -> str:
    """A route segment that matches a UUID only: ``/api/workflows/dry-run`` is never ``{id}``."""
    return "{" + f"{name}:{_UUID_RE}" + "}"


def list_query(request: web.Request, model: type[Q]) -> Q:
    """The list's query parameters, ``limit`` bounded by the page maximum."""
    return parse_query(request, model, context={PAGE_MAX: request.app[SETTINGS].page_max})


def limit_of(query: LimitQuery, settings: GatewaySettings) -> int:
    return query.limit if query.limit is not None else settings.page_default
