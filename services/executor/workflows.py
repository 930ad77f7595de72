"""The workflow definition pinned by an event, read at execution time and cached.

A version's definition never changes, so it is cached by ``(id, version)``.
Whether the workflow is active, deleted or whose it is, is read by the claim
statement itself (see :mod:`services.executor.store`), never from a cache.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import asyncpg
from pydantic import ValidationError

from libs.common.models.workflows import WorkflowDefinition
from services.executor.batcher import Batcher

LOAD_SQL = """
SELECT k.ord, v.definition
  FROM unnest($1::uuid[], $2::int[]) WITH ORDINALITY AS k(id, version, ord)
  LEFT JOIN workflow_versions v ON v.workflow_id = k.id AND v.version = k.version
 ORDER BY k.ord
"""


@dataclass(frozen=True, slots=True)
class LoadedWorkflow:
    definition: WorkflowDefinition | None
    error: str | None = None  # why there is no definition


class WorkflowReader:
    def __init__(self, pool: asyncpg.Pool, *, cache_size: int, max_items: int, linger: float) -> None:
        self._pool = pool
        self._cache_size = cache_size
        self._versions: OrderedDict[tuple[uuid.UUID, int], LoadedWorkflow] = OrderedDict()
        self._batcher: Batcher[tuple[uuid.UUID, int], Any] = Batcher(
            "workflow", self._load_batch, max_items=max_items, linger=linger
        )

    async def load(self, workflow_id: uuid.UUID, version: int) -> LoadedWorkflow:
        key = (workflow_id, version)
        cached = self._versions.get(key)
        if cached is not None:
            self._versions.move_to_end(key)
            return cached
        raw = await self._batcher.submit(key)
        if raw is None:
            return LoadedWorkflow(None, "workflow version not found")  # not cached: it may appear later
        try:
            loaded = LoadedWorkflow(WorkflowDefinition.model_validate(raw))
        except ValidationError:
            loaded = LoadedWorkflow(None, "stored workflow definition is invalid")
        self._versions[key] = loaded
        if len(self._versions) > self._cache_size:
            self._versions.popitem(last=False)
        return loaded

    async def close(self) -> None:
        await self._batcher.close()

    async def _load_batch(self, keys: list[tuple[uuid.UUID, int]]) -> list[Any]:
        rows = await self._pool.fetch(LOAD_SQL, [k[0] for k in keys], [k[1] for k in keys])
        return [row["definition"] for row in rows]
