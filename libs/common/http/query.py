"""Query strings at the edge: read into a model, or a 422 naming each bad parameter.

Only the parameters the model names are read; a parameter given more than
once is refused (which one would count is not obvious).  An empty value is a
value: ``limit=`` fails the ``limit`` rule instead of meaning "no limit".
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from libs.common.http.envelope import validation_details
from libs.common.http.errors import NotFound, ValidationFailed

Q = TypeVar("Q", bound=BaseModel)


def parse_query(request: web.Request, model: type[Q], *, context: dict[str, Any] | None = None) -> Q:
    query = request.query
    values: dict[str, str] = {}
    repeated: list[dict[str, Any]] = []
    for name in model.model_fields:
        given = query.getall(name, ())
        if len(given) > 1:
            repeated.append({"field": name, "message": "given more than once", "type": "duplicate_parameter"})
        elif given:
            values[name] = given[0]
    if repeated:
        raise ValidationFailed("invalid query", details=repeated)
    try:
        return model.model_validate(values, context=context)
    except ValidationError as exc:
        raise ValidationFailed("invalid query", details=validation_details(exc)) from exc


def path_id(request: web.Request, name: str = "id", missing: str = "not found") -> uuid.UUID:
    """A UUID path parameter: 404 (``missing``) if it is not one, as for a row that is not there."""
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError as exc:
        raise NotFound(missing) from exc
