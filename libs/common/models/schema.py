"""Edits of generated JSON Schemas, so the document says exactly what the validators accept."""

from __future__ import annotations

from typing import Any


def never_null(schema: dict[str, Any]) -> None:
    """Each optional property of ``schema`` is its one non-null kind: left out is how it is not given."""
    for prop in schema.get("properties", {}).values():
        kinds = prop.pop("anyOf", None)
        if kinds is not None:
            prop.update(next(k for k in kinds if k.get("type") != "null"))
        prop.pop("default", None)
