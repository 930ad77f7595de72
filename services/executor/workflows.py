"""Workflow reads at execution time: the pinned version (cached, immutable) and the live state.

A version's definition never changes, so it is cached by (id, version).  The
workflow's state (active, deleted, owner) is re-read, batched, and trusted
for at most ``state_ttl`` seconds.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import asyncpg
from pydantic import ValidationError

from libs.common.models.workflows import WorkflowDefinition
from services.executor.batcher import Batcher

LOAD_SQL = """
SELECT k.ord, w.tenant_id, w.is_active, (w.deleted_at IS NOT NULL) AS deleted, v.definition
  FROM unnest($1::uuid[], $2::int[]) WITH ORDINALITY AS k(id, version, ord)
  LEFT JOIN workflows w ON w.id = k.id
  LEFT JOIN workflow_versions v ON v.workflow_id = k.id AND v.version = k.version
 ORDER BY k.ord
"""


@dataclass(frozen=True, slots=True)
class WorkflowState:
    tenant_id: uuid.UUID | None
    is_active: bool
    deleted: bool

    @property
    def exists(self) -> bool:
        return self.tenant_id is not None


@dataclass(frozen=True, slots=True)
class LoadedWorkflow:
    state: WorkflowState
    definition: WorkflowDefinition | None
    error: str | None = None  # the stored definition could not be read


_Row = tuple[WorkflowState, Any]


class WorkflowReader:
    def __init__(self, pool: asyncpg.Pool, *, state_ttl: float, cache_size: int, max_items: int,
                 linger: float) -> None:
        self._pool = pool
        self._ttl = state_ttl
        self._cache_size = cache_size
        self._versions: OrderedDict[tuple[uuid.UUID, int], LoadedWorkflow] = OrderedDict()
        self._states: dict[uuid.UUID, tuple[float, WorkflowState]] = {}
        self._batcher: Batcher[tuple[uuid.UUID, int], _Row] = Batcher(
            "workflow", self._load_batch, max_items=max_items, linger=linger)

    async def load(self, workflow_id: uuid.UUID, version: int) -> LoadedWorkflow:
        key = (workflow_id, version)
        now = time.monotonic()
        cached = self._versions.get(key)
        state_entry = self._states.get(workflow_id)
        if cached is not None and state_entry is not None and state_entry[0] > now:
            self._versions.move_to_end(key)
            return LoadedWorkflow(state_entry[1], cached.definition, cached.error)
        state, raw = await self._batcher.submit(key)
        if self._ttl > 0:
            if len(self._states) >= self._cache_size:
                self._states.clear()
            self._states[workflow_id] = (time.monotonic() + self._ttl, state)
        if cached is None:
            cached = self._parse(raw)
            if raw is not None:
                self._versions[key] = cached
                if len(self._versions) > self._cache_size:
                    self._versions.popitem(last=False)
        return LoadedWorkflow(state, cached.definition, cached.error)

    @staticmethod
    def _parse(raw: Any) -> LoadedWorkflow:
        empty = WorkflowState(None, False, False)
        if raw is None:
            return LoadedWorkflow(empty, None, "workflow version not found")
        try:
            return LoadedWorkflow(empty, WorkflowDefinition.model_validate(raw))
        except ValidationError:
            return LoadedWorkflow(empty, None, "stored workflow definition is invalid")

    async def close(self) -> None:
        await self._batcher.close()

    async def _load_batch(self, keys: list[tuple[uuid.UUID, int]]) -> list[_Row]:
        rows = await self._pool.fetch(LOAD_SQL, [k[0] for k in keys], [k[1] for k in keys])
        return [
            (WorkflowState(row["tenant_id"], bool(row["is_active"]), bool(row["deleted"])), row["definition"])
            for row in rows
        ]
